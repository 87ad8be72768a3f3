// Property: whatever a layer holds, extracting it through the real ingest (TarParser →
// EntryPath → OverlayWriter, real syscalls, as root) writes nothing outside its staging
// directory and fails, if it fails, with a typed LayerRejected / LayerIoError, never a defect.
//
// The layers are generated from a small alphabet of names, so that entries collide, climb
// (`..`), go through symlinks and hardlinks made by earlier entries, and whiteout each other.
// Symlink targets that point outside are absolute paths into the sandbox (never the host's
// /etc): a broken guard then shows up as a changed sentinel, not as a damaged machine.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { layerBlob, type RawEntry, rawTar, type TestCompression } from "../lib/tars.ts"
import { walkTree } from "../lib/tree.ts"
import { failure, ingest, type Outcome, sys } from "../unit/extract/harness.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

/**
 * parent/
 *   sentinel.txt, etc/passwd, secret/, link-me (hardlink target bait)     must never change
 *   box/stage/{blob,diff/}                                                 what the ingest writes
 */
interface Box {
  readonly parent: string
  readonly stage: string
  readonly diffDir: string
  readonly blobPath: string
}

const makeBox = (): Box => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), "als-fuzz-ingest-"))
  fs.writeFileSync(path.join(parent, "sentinel.txt"), "sentinel\n", { mode: 0o644 })
  fs.mkdirSync(path.join(parent, "etc"))
  fs.writeFileSync(path.join(parent, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n")
  fs.mkdirSync(path.join(parent, "secret"))
  fs.writeFileSync(path.join(parent, "link-me"), "bait\n")
  const stage = path.join(parent, "box", "stage")
  fs.mkdirSync(path.join(stage, "diff"), { recursive: true })
  return { parent, stage, diffDir: path.join(stage, "diff"), blobPath: path.join(stage, "blob") }
}

/** Everything outside the staging dir, with metadata, contents and link counts. */
const snapshot = (box: Box): string =>
  JSON.stringify({
    tree: walkTree(box.parent, sys).filter((e) => e.path !== "box" && !e.path.startsWith("box/")),
    links: ["sentinel.txt", "etc/passwd", "link-me"].map((p) => fs.lstatSync(path.join(box.parent, p)).nlink),
    box: fs.readdirSync(path.join(box.parent, "box")),
  })

// ---- generators ------------------------------------------------------------------------

// few names, so that entries meet: a later entry writes through, over or under an earlier one
const component = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("a", "s") },
  { weight: 2, arbitrary: fc.constantFrom("..", ".", "") },
  { weight: 1, arbitrary: fc.constantFrom(".wh.a", ".wh.s", ".wh..wh..opq", ".wh..wh.plnk", "etc", "secret") },
)
const anyName = fc
  .tuple(
    fc.constantFrom("", "", "", "/", "./", "../"),
    fc.array(component, { minLength: 1, maxLength: 3 }),
    fc.boolean(),
  )
  .map(([lead, comps, slash]) => `${lead}${comps.join("/")}${slash ? "/" : ""}`)
const name = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("s", "a", "s/a", "s/s", "a/s", "a/a", "s/", "a/", "s/a/b", "a/s/a", "s/.wh.a", "s/.wh..wh..opq") },
  { weight: 2, arbitrary: anyName },
)

/** Symlink and hardlink targets: in-layer names, climbing ones, and absolute paths placed by the box. */
const target = fc.oneof(
  { weight: 1, arbitrary: name },
  {
    weight: 3,
    arbitrary: fc.constantFrom("..", "../..", "../../..", "../../../secret", "../../../../etc", "@PARENT", "@PARENT/secret",
      "@PARENT/etc", "@PARENT/etc/passwd", "@PARENT/link-me", "@PARENT/sentinel.txt", "", "s/link-me", "s/passwd",
      "s/etc/passwd", "a/s/link-me"),
  },
)

const entry: fc.Arbitrary<RawEntry> = fc
  .record({
    name,
    type: fc.oneof(
      { weight: 19, arbitrary: fc.constantFrom("file", "file", "dir", "symlink", "symlink", "link", "link", "fifo", "char") },
      { weight: 1, arbitrary: fc.constant("7") },
    ),
    content: fc.uint8Array({ maxLength: 40 }),
    target,
    mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o000, 0o7777),
    // out-of-range owners refuse the whole layer at once: rare, so that most layers get deep
    owner: fc.oneof({ weight: 18, arbitrary: fc.constantFrom(0, 0, 1000) }, { weight: 1, arbitrary: fc.constantFrom(2 ** 32, 2 ** 40) }),
    mtime: fc.constantFrom(1700000000, 0, 2 ** 33),
    // one entry in ten carries an xattr (some the kernel refuses, which refuses the layer)
    xattr: fc.oneof(
      { weight: 9, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom("user.x", "user.x", "trusted.overlay.opaque", "security.capability", "") },
    ),
  })
  .map((e): RawEntry => ({
    name: e.type === "dir" && !e.name.endsWith("/") ? `${e.name}/` : e.name,
    type: e.type,
    content: e.type === "file" || e.type === "7" ? e.content : undefined,
    linkname: e.type === "symlink" || e.type === "link" ? e.target : undefined,
    mode: e.mode,
    uid: e.owner,
    gid: e.owner === 1000 ? 0 : e.owner,
    mtime: e.mtime,
    devmajor: e.type === "char" ? 1 : 0,
    devminor: e.type === "char" ? 3 : 0,
    xattrs: e.xattr === undefined ? undefined : { [e.xattr]: "y" },
  }))

const outside = fc.constantFrom("..", "../..", "../../..", "../../../secret", "../../../etc", "@PARENT", "@PARENT/secret", "@PARENT/etc")

/**
 * Two-step escapes, which random entries rarely line up: a symlink pointing out, then an entry
 * written through it, or a hardlink whose target goes through it.
 */
const throughSymlink: fc.Arbitrary<Array<RawEntry>> = fc
  .record({
    via: fc.constantFrom("s", "a/s", "s/"),
    out: outside,
    then: fc.constantFrom("file", "dir", "symlink", "link", "fifo", "hardlink-to"),
    leaf: fc.constantFrom("x", "link-me", "passwd", "etc/passwd", "sentinel.txt", ".wh.link-me", ".wh..wh..opq", "d/x"),
  })
  .map(({ via, out, then, leaf }): Array<RawEntry> => {
    const link: RawEntry = { name: via, type: "symlink", linkname: out }
    const through = `${via.replace(/\/$/, "")}/${leaf}`
    switch (then) {
      case "hardlink-to":
        return [link, { name: "h", type: "link", linkname: through }]
      case "link":
      case "symlink":
        return [link, { name: through, type: then, linkname: "x" }]
      case "dir":
        return [link, { name: `${through}/`, type: "dir" }]
      default:
        return [link, { name: through, type: then, content: then === "file" ? "pwn" : undefined }]
    }
  })

/** A symlink to the sandbox's parent, then a hardlink to a file there through it: would share the file's inode. */
const hardlinkThroughSymlink: fc.Arbitrary<Array<RawEntry>> = fc
  .record({
    via: fc.constantFrom("s", "s/"),
    out: fc.constantFrom("../../..", "@PARENT", "@PARENT/etc", "../../../etc"),
    leaf: fc.constantFrom("link-me", "sentinel.txt", "etc/passwd", "passwd"),
  })
  .map(({ via, out, leaf }): Array<RawEntry> => [
    { name: via, type: "symlink", linkname: out },
    { name: "h", type: "link", linkname: `s/${leaf}` },
  ])

const layer = fc.record({
  // half the layers carry two-step escapes among their entries, half are entries alone (more
  // of which get through, so that what is accepted is checked too)
  entries: fc.oneof(
    fc.array(
      fc.oneof(
        { weight: 6, arbitrary: entry.map((e) => [e]) },
        { weight: 3, arbitrary: throughSymlink },
        { weight: 1, arbitrary: hardlinkThroughSymlink },
      ),
      { minLength: 1, maxLength: 6 },
    )
      .map((groups) => groups.flat()),
    fc.array(entry, { minLength: 1, maxLength: 6 }),
  ),
  compression: fc.constantFrom<TestCompression>("none", "none", "gzip", "zstd"),
})

const placeParent = (entries: ReadonlyArray<RawEntry>, parent: string): Array<RawEntry> =>
  entries.map((e) =>
    typeof e.linkname === "string" && e.linkname.startsWith("@PARENT") ? { ...e, linkname: parent + e.linkname.slice(7) } : e
  )

const isTyped = (o: Outcome): boolean => o._tag === "Right" || o.left._tag === "LayerRejected" || o.left._tag === "LayerIoError"

const run = async (entries: ReadonlyArray<RawEntry>, compression: TestCompression): Promise<{ outcome: Outcome; box: Box }> => {
  const box = makeBox()
  const before = snapshot(box)
  // ingest rejects (a defect: an untyped throw) rather than resolving to an Either: that fails the property
  const outcome = await ingest(layerBlob(rawTar(placeParent(entries, box.parent)), compression), {
    root: box.parent,
    diffDir: box.diffDir,
    blobPath: box.blobPath,
    assertUntouched: () => {},
    cleanup: () => {},
  }).catch((e) => {
    fs.rmSync(box.parent, { recursive: true, force: true })
    throw e
  })
  try {
    expect(isTyped(outcome)).toBe(true)
    expect(snapshot(box)).toBe(before)
    expect(fs.readdirSync(box.stage).filter((n) => n !== "diff" && n !== "blob")).toEqual([])
  } finally {
    fs.rmSync(box.parent, { recursive: true, force: true })
  }
  return { outcome, box }
}

describe("layer ingest, fuzzed", () => {
  test("hostile layers write nothing outside staging and fail only with typed errors", async () => {
    await fc.assert(
      fc.asyncProperty(layer, async ({ entries, compression }) => {
        await run(entries, compression)
      }),
      fuzzParams(0.5),
    )
  }, FUZZ_TIMEOUT_MS)
})

// Counterexamples found by the property above (and by the tar reader's), pinned.
describe("layer ingest regressions found by fuzzing", () => {
  const refusedAs = async (entries: ReadonlyArray<RawEntry>) => {
    const { outcome } = await run(entries, "none")
    return failure(outcome)
  }

  test("a file owned by uid 2^40 is an UnsupportedEntry (was a RangeError from chown: a defect)", async () => {
    expect(await refusedAs([{ name: "a", content: "x", uid: 2 ** 40 }])).toMatchObject({ _tag: "LayerRejected", code: "UnsupportedEntry", entry: "a" })
  })

  test("a fifo owned by uid 2^32 is an UnsupportedEntry (was a RangeError from chown)", async () => {
    expect(await refusedAs([{ name: "p", type: "fifo", uid: 2 ** 32 }])).toMatchObject({ code: "UnsupportedEntry" })
  })

  test("a directory owned by gid 2^32 is an UnsupportedEntry", async () => {
    expect(await refusedAs([{ name: "d/", type: "dir", gid: 2 ** 32 }])).toMatchObject({ code: "UnsupportedEntry" })
  })

  test("a PAX mtime of 400 nines is CorruptData (was a TypeError from futimes: a defect)", async () => {
    expect(await refusedAs([{ name: "a", content: "x", pax: { mtime: "9".repeat(400) } }])).toMatchObject({ code: "CorruptData" })
  })

  test("a PAX atime of minus 400 nines is CorruptData", async () => {
    expect(await refusedAs([{ name: "a", content: "x", pax: { atime: `-${"9".repeat(400)}` } }])).toMatchObject({ code: "CorruptData" })
  })

  test("a char device 4294967297:3 is an UnsupportedEntry (was made as device 1:3)", async () => {
    expect(await refusedAs([{ name: "c", type: "char", devmajor: 2 ** 32 + 1, devminor: 3 }])).toMatchObject({
      code: "UnsupportedEntry",
    })
  })
})
