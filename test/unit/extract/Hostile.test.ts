// Hostile layers: each test checks the error code and that nothing outside diff changed.
// The staging dir sits in a sandbox with sentinel files (outside.txt, etc/passwd, secret/).
// Attacks aimed at the host's /etc use a fresh canary name, never a real file.
import { describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import * as path from "node:path"
import type { LayerRejectedCode } from "../../../src/extract/errors.ts"
import { layerBlob, rawTar, type RawEntry } from "../../lib/tars.ts"
import { walkTree } from "../../lib/tree.ts"
import { failure, ingest, ok, type Sandbox, sys, withSandbox } from "./harness.ts"

const canary = `als-canary-${process.pid}-${Date.now().toString(36)}`

const expectRefused = async (entries: ReadonlyArray<RawEntry>, code: LayerRejectedCode, entry?: string) =>
  withSandbox(async (box) => {
    try {
      const e = failure(await ingest(layerBlob(rawTar(entries), "gzip"), box))
      expect(e).toMatchObject({ _tag: "LayerRejected", code })
      if (entry !== undefined) expect(e).toMatchObject({ entry })
      expect(e.message).toContain("layer sha256:")
      box.assertUntouched()
      expect(fs.existsSync(`/etc/${canary}`)).toBe(false)
      expect(fs.existsSync(path.join(box.root, "secret", "x"))).toBe(false)
      return e
    } finally {
      fs.rmSync(`/etc/${canary}`, { force: true })
    }
  })

const expectAccepted = async (entries: ReadonlyArray<RawEntry>, check: (box: Sandbox) => void) =>
  withSandbox(async (box) => {
    ok(await ingest(layerBlob(rawTar(entries), "gzip"), box))
    box.assertUntouched()
    check(box)
  })

describe("names that climb out", () => {
  test("../x", () => expectRefused([{ name: "../x", content: "pwn" }], "UnsafeEntry", "../x"))
  test("a/../../x", () => expectRefused([{ name: "a/../../x", content: "pwn" }], "UnsafeEntry", "a/../../x"))
  test("../secret/x as a directory", () => expectRefused([{ name: "../secret/x/", type: "dir" }], "UnsafeEntry"))
  test("/abs/path is made relative and stays inside", () =>
    expectAccepted([{ name: "/abs/path", content: "in" }], (box) => {
      expect(fs.readFileSync(path.join(box.diffDir, "abs/path"), "utf8")).toBe("in")
    }))
  test("/../x (.. above an absolute root) is refused too", () => expectRefused([{ name: "/../x", content: "pwn" }], "UnsafeEntry"))
})

describe("writing through symlinks", () => {
  test("s -> /etc, then s/<file>", () =>
    expectRefused([{ name: "s", type: "symlink", linkname: "/etc" }, { name: `s/${canary}`, content: "pwn" }], "UnsafeEntry"))
  test("a symlink loop (a -> b, b -> a), then a/x", () =>
    expectRefused([
      { name: "a", type: "symlink", linkname: "b" },
      { name: "b", type: "symlink", linkname: "a" },
      { name: "a/x", content: "pwn" },
    ], "UnsafeEntry"))
  test("a self-referencing symlink (l -> l), then l/x", () =>
    expectRefused([{ name: "l", type: "symlink", linkname: "l" }, { name: "l/x", content: "pwn" }], "UnsafeEntry"))
  test("s -> ../.., then s/x", () =>
    expectRefused([{ name: "s", type: "symlink", linkname: "../.." }, { name: "s/x", content: "pwn" }], "UnsafeEntry"))
  test("s -> ../../secret, then s/x (would land in the sandbox)", () =>
    expectRefused([{ name: "s", type: "symlink", linkname: "../../secret" }, { name: "s/x", content: "pwn" }], "UnsafeEntry"))
  test("s -> ../../secret, then a directory s/d/ and s/d/x", () =>
    expectRefused(
      [{ name: "s", type: "symlink", linkname: "../../secret" }, { name: "s/d/", type: "dir" }, { name: "s/d/x", content: "pwn" }],
      "UnsafeEntry",
    ))
  test("a directory replaced by a symlink, then written into", () =>
    expectRefused(
      [{ name: "d/", type: "dir" }, { name: "d/a", content: "ok" }, { name: "d", type: "symlink", linkname: "/etc" }, {
        name: `d/${canary}`,
        content: "pwn",
      }],
      "UnsafeEntry",
    ))
  test("a whiteout through a symlink", () =>
    expectRefused([{ name: "s", type: "symlink", linkname: "/etc" }, { name: `s/.wh.${canary}` }], "UnsafeEntry"))
  test("an opaque marker through a symlink", () =>
    expectRefused([{ name: "s", type: "symlink", linkname: "../../secret" }, { name: "s/.wh..wh..opq" }], "UnsafeEntry"))
  test("a hardlink to a symlink, then written through", () =>
    expectRefused(
      [{ name: "s", type: "symlink", linkname: "../../secret" }, { name: "h", type: "link", linkname: "s" }, {
        name: "h/x",
        content: "pwn",
      }],
      "UnsafeEntry",
    ))
  test("devices and fifos through a symlink", () =>
    expectRefused(
      [{ name: "s", type: "symlink", linkname: "../../secret" }, { name: "s/x", type: "fifo" }],
      "UnsafeEntry",
    ))
  test("symlink targets are stored as written, climbing or absolute (they resolve in the container)", () =>
    expectAccepted(
      [{ name: "up", type: "symlink", linkname: "../../../../etc/passwd" }, { name: "abs", type: "symlink", linkname: "/etc" }],
      (box) => {
        expect(fs.readlinkSync(path.join(box.diffDir, "up"))).toBe("../../../../etc/passwd")
        expect(fs.readlinkSync(path.join(box.diffDir, "abs"))).toBe("/etc")
      },
    ))
})

describe("hardlinks", () => {
  test("to ../../etc/passwd", () =>
    expectRefused([{ name: "h", type: "link", linkname: "../../etc/passwd" }], "UnsafeEntry", "h"))
  test("to a path that is not in this layer", () =>
    expectRefused([{ name: "h", type: "link", linkname: "etc/passwd" }], "UnsafeEntry"))
  test("to an absolute path not in this layer", () =>
    expectRefused([{ name: "h", type: "link", linkname: "/etc/passwd" }], "UnsafeEntry"))
  test("to a directory", () => expectRefused([{ name: "d/", type: "dir" }, { name: "h", type: "link", linkname: "d" }], "UnsafeEntry"))
  test("to a file under a symlink", () =>
    expectRefused([{ name: "s", type: "symlink", linkname: "/etc" }, { name: "h", type: "link", linkname: "s/passwd" }], "UnsafeEntry"))
  test("to a file whose directory was replaced since", () =>
    expectRefused(
      [{ name: "a/b", content: "x" }, { name: "a", type: "symlink", linkname: "../../secret" }, { name: "h", type: "link", linkname: "a/b" }],
      "UnsafeEntry",
    ))
  test("to itself", () => expectRefused([{ name: "f", content: "x" }, { name: "f", type: "link", linkname: "./f" }], "UnsupportedEntry"))
  test("an absolute target naming an earlier file of this layer is fine", () =>
    expectAccepted([{ name: "usr/f", content: "x" }, { name: "h", type: "link", linkname: "/usr/f" }], (box) => {
      expect(fs.statSync(path.join(box.diffDir, "h")).ino).toBe(fs.statSync(path.join(box.diffDir, "usr/f")).ino)
    }))
})

describe("whiteouts", () => {
  test(".wh.. (would hide the parent)", () => expectRefused([{ name: "a/.wh.." }], "InvalidWhiteout"))
  test(".wh.... (would hide the grandparent)", () => expectRefused([{ name: "a/.wh..." }], "InvalidWhiteout"))
  test(".wh. (empty name)", () => expectRefused([{ name: ".wh." }], "InvalidWhiteout"))
  test(".wh. with slash tricks: a whiteout used as a directory", () => expectRefused([{ name: ".wh.a/b" }], "InvalidWhiteout"))
  test(".wh. with slash tricks: trailing and doubled slashes", () => expectRefused([{ name: "a//.wh.//" }], "InvalidWhiteout"))
  test(".wh. with slash tricks: .wh.../x", () => expectRefused([{ name: ".wh.../x" }], "InvalidWhiteout"))
  test(".wh. with slash tricks: climbing out", () => expectRefused([{ name: "a/.wh.b/../../../x" }], "UnsafeEntry"))
})

describe("odd entries", () => {
  test("an entry normalizing to '.' as a directory is skipped (root metadata untouched)", () =>
    withSandbox(async (box) => {
      const before = fs.statSync(box.diffDir)
      ok(await ingest(layerBlob(rawTar([{ name: "a/..", type: "dir", mode: 0o700, uid: 99 }, { name: "f", content: "x" }]), "none"), box))
      const after = fs.statSync(box.diffDir)
      expect(after.mode).toBe(before.mode)
      expect(after.uid).toBe(before.uid)
      box.assertUntouched()
    }))
  test("an entry normalizing to '.' as a file or symlink", async () => {
    await expectRefused([{ name: ".", content: "x" }], "UnsafeEntry")
    await expectRefused([{ name: "a/..", type: "symlink", linkname: "/etc" }], "UnsafeEntry")
  })
  test("trusted.overlay.* and user.overlay.* in PAX are dropped", () =>
    expectAccepted(
      [
        {
          name: "d/",
          type: "dir",
          xattrs: {
            "trusted.overlay.opaque": "y",
            "trusted.overlay.redirect": "/etc",
            "user.overlay.opaque": "y",
            "user.keep": "1",
          },
        },
        { name: "w", xattrs: { "trusted.overlay.metacopy": "" } },
      ],
      (box) => {
        const t = new Map(walkTree(box.diffDir, sys).map((e) => [e.path, e]))
        expect(t.get("d")?.xattrs).toEqual({ "user.keep": "1" })
        expect(t.get("w")?.xattrs).toEqual({})
      },
    ))
  test("a file where a directory is needed → UnsupportedEntry", () =>
    expectRefused([{ name: "etc", content: "a file" }, { name: "etc/passwd", content: "x" }], "UnsupportedEntry"))
  test("duplicate entries: the later wins, and a duplicate cannot smuggle a write outside", () =>
    expectAccepted(
      [
        { name: "x", content: "one" },
        { name: "x", type: "symlink", linkname: "../../outside.txt" },
        { name: "x", content: "two" },
      ],
      (box) => {
        expect(fs.lstatSync(path.join(box.diffDir, "x")).isFile()).toBe(true)
        expect(fs.readFileSync(path.join(box.diffDir, "x"), "utf8")).toBe("two")
      },
    ))
  test("a name that is not UTF-8 → UnsupportedEntry", () =>
    expectRefused([{ name: new Uint8Array([0x61, 0xff, 0xfe, 0x62]), content: "x" }], "UnsupportedEntry"))
  test("unsupported entry types → UnsupportedEntry", async () => {
    for (const type of ["7", "S", "V", "D"]) await expectRefused([{ name: "odd", type, content: "x" }], "UnsupportedEntry")
    await expectRefused([{ name: "sparse", content: "x", pax: { "GNU.sparse.major": "1" } }], "UnsupportedEntry")
  })
  test("a header with a bad checksum → CorruptData", () =>
    expectRefused([{ name: "a", content: "x" }, { name: "b", content: "y", badChecksum: true }], "CorruptData"))
  test("a NUL byte in a PAX path → CorruptData (Go refuses it too)", () =>
    expectRefused([{ name: "f", content: "x", pax: { path: new Uint8Array([0x61, 0, 0x62]) } }], "CorruptData"))
  test("xattrs the kernel refuses (name too long, value too big) → UnsupportedEntry", async () => {
    await expectRefused([{ name: "f", xattrs: { [`user.${"n".repeat(300)}`]: "v" } }], "UnsupportedEntry")
    await expectRefused([{ name: "f", xattrs: { "user.big": new Uint8Array(70000) } }], "UnsupportedEntry")
  })
  test("an oversized PAX header → CorruptData", () =>
    expectRefused([{ name: "a", content: "x", pax: { "comment": "c".repeat(1100000) } }], "CorruptData"))
})
