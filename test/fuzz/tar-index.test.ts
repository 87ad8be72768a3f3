// Property tests of the tar indexer (src/sources/TarIndex.ts), which reads `docker-archive:`
// and `oci-archive:` files a user hands in, by positional reads. Properties: any file gives
// an index or a TarIndexError, never another throw; every member it lists is typed (a clean
// name, a safe non-negative size and offset, data inside the file); a valid archive's
// members read back as written; following links inside an index always ends.
import { afterAll, describe, expect, test } from "bun:test"
import fc from "fast-check"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { indexTar, resolveMember, TarIndexError, type TarMember } from "../../src/sources/TarIndex.ts"
import { type RawEntry, rawEntry, rawTar, TAR_END } from "../lib/tars.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-fuzz-tarindex-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const file = path.join(dir, "archive.tar")

/** The index of `bytes` as a file, or the TarIndexError; anything else thrown fails the property. */
const index = (bytes: Uint8Array): Map<string, TarMember> | TarIndexError => {
  fs.writeFileSync(file, bytes)
  try {
    return indexTar(file)
  } catch (e) {
    if (e instanceof TarIndexError) return e
    throw e
  }
}

const assertTyped = (members: Map<string, TarMember>, fileSize: number): void => {
  for (const [key, m] of members) {
    expect(m.name).toBe(key)
    expect(m.name.length).toBeGreaterThan(0)
    expect(m.name.split("/").every((c) => c !== "" && c !== "." && c !== "..")).toBe(true)
    expect(Number.isSafeInteger(m.offset) && m.offset >= 0).toBe(true)
    expect(Number.isSafeInteger(m.size) && m.size >= 0).toBe(true)
    if (m.type === "file") expect(m.offset + m.size).toBeLessThanOrEqual(fileSize)
    else expect(m.size).toBe(0)
  }
}

const enc = new TextEncoder()

const setChecksum = (b: Uint8Array): void => {
  b.fill(0x20, 148, 156)
  let u = 0
  for (const c of b) u += c
  b.set(enc.encode(u.toString(8).padStart(6, "0")), 148)
  b[154] = 0
}

/** A header whose size field holds garbage, base-256, or a sign, with a valid checksum. */
const oddSizeHeader = fc
  .tuple(
    fc.constantFrom("0", "x", "L", "K", "g", "5", "2", "1", "7"),
    fc.oneof(
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.constantFrom("-1", "1e5", "8", "zz", " 12 ", "0x10", "77777777777", "-0", "+1").map((s) => enc.encode(s.padEnd(11, "\0"))),
      fc.tuple(fc.constantFrom(0x80, 0xff), fc.uint8Array({ minLength: 11, maxLength: 11 })).map(([f, r]) => Uint8Array.from([f, ...r])),
    ),
    fc.uint8Array({ maxLength: 1500 }),
  )
  .map(([flag, size, data]) => {
    const h = rawEntry({ name: "m", content: "" }).slice(0, 512)
    h[156] = flag.charCodeAt(0)
    h.fill(0, 124, 136)
    h.set(size.subarray(0, 12), 124)
    setChecksum(h)
    return Buffer.concat([h, data])
  })

const mutated = fc
  .tuple(
    fc.array(fc.record({ name: fc.stringMatching(/^[a-z]{1,6}(\/[a-z.]{1,6}){0,2}$/), content: fc.uint8Array({ maxLength: 900 }), long: fc.boolean() }), {
      minLength: 1,
      maxLength: 3,
    }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([entries, flips, cut]) => {
    const t = Buffer.from(rawTar(entries.map((e) => ({ name: e.long ? `${e.name}/${"q".repeat(120)}` : e.name, content: e.content }))))
    for (const [at, x] of flips) t[at % t.length] ^= x
    return cut === undefined ? t : t.subarray(0, cut % (t.length + 1))
  })

describe("tar index, fuzzed", () => {
  test("any file: an index of typed members or a TarIndexError", () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 2048 }),
      mutated,
      fc.array(oddSizeHeader, { minLength: 1, maxLength: 3 }).map((hs) => Buffer.concat([...hs, TAR_END])),
    )
    fc.assert(
      fc.property(input, (bytes) => {
        const r = index(bytes)
        if (!(r instanceof TarIndexError)) assertTyped(r, bytes.length)
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)

  test("round trip: every member of a valid archive reads back as written", () => {
    const entry = fc.record({
      name: fc.stringMatching(/^[a-z0-9]{1,8}(\/[a-z0-9._-]{1,8}){0,3}$/).filter((n) => !n.split("/").some((c) => c === "." || c === "..")),
      kind: fc.constantFrom<"file" | "dir" | "symlink">("file", "file", "dir", "symlink"),
      content: fc.uint8Array({ maxLength: 1200 }),
      long: fc.boolean(),
      gnu: fc.boolean(),
    })
    fc.assert(
      fc.property(fc.uniqueArray(entry, { minLength: 1, maxLength: 5, selector: (e) => (e.long ? `${e.name}/${"l".repeat(110)}` : e.name) }), (entries) => {
        const raw: Array<RawEntry> = entries.map((e) => ({
          name: e.long ? `${e.name}/${"l".repeat(110)}` : e.name,
          type: e.kind,
          content: e.kind === "file" ? e.content : undefined,
          linkname: e.kind === "symlink" ? "target" : undefined,
          format: e.gnu ? "gnu" : "ustar",
        }))
        const bytes = rawTar(raw)
        const r = index(bytes)
        expect(r).not.toBeInstanceOf(TarIndexError)
        const members = r as Map<string, TarMember>
        assertTyped(members, bytes.length)
        // a later entry whose name is a parent of an earlier one replaces nothing in the map
        for (const [i, e] of entries.entries()) {
          const name = raw[i].name as string
          const m = members.get(name)
          expect(m).toBeDefined()
          if (e.kind === "file") {
            expect(Buffer.from(bytes.subarray(m!.offset, m!.offset + m!.size)).toString("hex")).toBe(Buffer.from(e.content).toString("hex"))
          } else if (e.kind === "symlink") expect(m!.linkname).toBe("target")
        }
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)

  test("resolving names through links always ends, at a file or nowhere", () => {
    const names = fc.constantFrom("a", "b", "c/d", "c", "../a", "/a", "./b", "c/../a")
    const member = fc.record({
      name: fc.constantFrom("a", "b", "c/d", "c"),
      type: fc.constantFrom<TarMember["type"]>("file", "dir", "symlink", "hardlink", "other"),
      linkname: names,
    })
    fc.assert(
      fc.property(fc.array(member, { maxLength: 6 }), names, (ms, name) => {
        const map = new Map<string, TarMember>(ms.map((m) => [m.name, { name: m.name, type: m.type, offset: 512, size: 0, linkname: m.linkname }]))
        const got = resolveMember(map, name)
        if (got !== undefined) expect(got.type).toBe("file")
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)
})

// Counterexamples found by the properties above, pinned.
describe("tar index regressions found by fuzzing", () => {
  const withSize = (size: string | Uint8Array, flag = "0"): Uint8Array => {
    const h = rawEntry({ name: "m", content: "" }).slice(0, 512)
    h[156] = flag.charCodeAt(0)
    h.fill(0, 124, 136)
    h.set(typeof size === "string" ? enc.encode(size) : size, 124)
    setChecksum(h)
    return Buffer.concat([h, new Uint8Array(1024), TAR_END])
  }

  test("a size field of '-1' is a TarIndexError (was a member of size -1)", () => {
    expect(index(withSize("-1"))).toBeInstanceOf(TarIndexError)
  })

  test("a size field of 'zz' is a TarIndexError (was a member of size NaN)", () => {
    expect(index(withSize("zz"))).toBeInstanceOf(TarIndexError)
  })

  test("'1e5' in a size field is not read as octal 1", () => {
    expect(index(withSize("1e5"))).toBeInstanceOf(TarIndexError)
  })

  test("a negative base-256 size (0xff…) is a TarIndexError", () => {
    expect(index(withSize(Uint8Array.from([0xff, ...new Uint8Array(10).fill(0xff), 0xfe])))).toBeInstanceOf(TarIndexError)
  })

  test("a PAX size beyond 2^53 is a TarIndexError, not a silently ignored record", () => {
    const tar = rawTar([{ name: "m", content: "x", pax: { size: "99999999999999999999999" } }])
    expect(index(tar)).toBeInstanceOf(TarIndexError)
  })

  test("a directory whose size field says 1024 hides no member behind it (Go reads no data for it)", () => {
    const dirHeader = rawEntry({ name: "d/", type: "dir" }).slice(0, 512)
    dirHeader.set(enc.encode("00000002000\0"), 124)
    setChecksum(dirHeader)
    const r = index(Buffer.concat([dirHeader, rawTar([{ name: "d/hidden", content: "seen" }])]))
    expect(r).not.toBeInstanceOf(TarIndexError)
    expect((r as Map<string, TarMember>).has("d/hidden")).toBe(true)
  })
})
