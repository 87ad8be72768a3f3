// The streaming tar reader on its own: the same entries whatever the chunking, and the corners
// of the formats Go's archive/tar reads.
import { describe, expect, test } from "bun:test"
import { TarFormatError, type TarEntry, TarParser } from "../../../src/extract/TarParser.ts"
import { paxRecord, rawEntry, rawTar, TAR_END } from "../../lib/tars.ts"

interface Seen {
  readonly entry: TarEntry
  readonly data: string
}

const parse = (tar: Uint8Array, chunk = tar.length): Array<Seen> => {
  const out: Array<Seen> = []
  let cur: { entry: TarEntry; parts: Array<Uint8Array> } | undefined
  const p = new TarParser({
    entry: (e) => (cur = { entry: e, parts: [] }),
    data: (c) => cur!.parts.push(c.slice()),
    end: () => out.push({ entry: cur!.entry, data: Buffer.concat(cur!.parts).toString("latin1") }),
  })
  for (let i = 0; i < tar.length; i += chunk) p.push(tar.subarray(i, i + chunk))
  p.finish()
  return out
}

const v7Header = (name: string, content: string, flag = "\0") => {
  const raw = rawEntry({ name, content, type: flag === "\0" ? "file" : flag })
  const h = raw.slice(0, 512)
  h.fill(0, 257, 265) // no magic, no version: V7
  h[156] = flag.charCodeAt(0)
  h.fill(32, 148, 156)
  let sum = 0
  for (const c of h) sum += c
  h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148)
  return Buffer.concat([h, raw.subarray(512)])
}

describe("TarParser", () => {
  const tar = rawTar([
    { name: "dir/", type: "dir", mode: 0o2755 },
    { name: "dir/a", content: "x".repeat(1000) },
    { name: "dir/exact", content: "y".repeat(512) },
    { name: "dir/l", type: "symlink", linkname: "a" },
    { name: `long/${"p".repeat(200)}`, content: "pax path" },
    { name: `gnu/${"g".repeat(200)}`, linkname: `t/${"q".repeat(150)}`, type: "symlink", format: "gnu" },
    { name: "pax-times", content: "t", pax: { mtime: "1700000000.5", atime: "1700000100.25", uid: "4000000000" } },
    { name: "cap", xattrs: { "security.capability": new Uint8Array([0xff, 0x00, 0x80, 0x0a]) } },
  ])

  test("the same entries and data at any chunking (1, 7, 512, 513 bytes, whole)", () => {
    const whole = parse(tar)
    expect(whole.map((s) => s.entry.name)).toEqual([
      "dir/",
      "dir/a",
      "dir/exact",
      "dir/l",
      `long/${"p".repeat(200)}`,
      `gnu/${"g".repeat(200)}`,
      "pax-times",
      "cap",
    ])
    for (const c of [1, 7, 512, 513]) expect(parse(tar, c)).toEqual(whole)
  })

  test("fields: kinds, modes with setgid, link names, PAX times and ids, binary xattrs", () => {
    const [dir, a, exact, l, long, gnu, times, cap] = parse(tar)
    expect(dir.entry).toMatchObject({ kind: "dir", mode: 0o2755, size: 0 })
    expect(a).toMatchObject({ entry: { kind: "file", size: 1000 }, data: "x".repeat(1000) })
    expect(exact.data.length).toBe(512)
    expect(l.entry).toMatchObject({ kind: "symlink", linkname: "a" })
    expect(long.data).toBe("pax path")
    expect(gnu.entry.linkname).toBe(`t/${"q".repeat(150)}`)
    expect(times.entry).toMatchObject({ mtime: 1700000000.5, atime: 1700000100.25, uid: 4000000000 })
    expect(cap.entry.xattrs).toEqual([["security.capability", new Uint8Array([0xff, 0x00, 0x80, 0x0a])]])
  })

  test("V7 headers, and a '\\0' type with a trailing slash is a directory", () => {
    const t = Buffer.concat([v7Header("old/", "", "\0"), v7Header("old/file", "v7 data"), TAR_END])
    const [d, f] = parse(t)
    expect(d.entry.kind).toBe("dir")
    expect(f).toMatchObject({ entry: { kind: "file" }, data: "v7 data" })
  })

  test("global PAX headers are skipped, not applied (like Go)", () => {
    const g = rawEntry({ name: "pax_global_header", type: "g", content: paxRecord("uid", "77") })
    const t = Buffer.concat([g, rawEntry({ name: "f", content: "x", uid: 5 }), TAR_END])
    const seen = parse(t)
    expect(seen.map((s) => s.entry.name)).toEqual(["f"])
    expect(seen[0].entry.uid).toBe(5)
  })

  test("a second PAX header before an entry replaces the first (like Go): consecutive headers never pile up", () => {
    const big = (i: number) => rawEntry({ name: "PaxHeader", type: "x", content: paxRecord(`SCHILY.xattr.user.k${i}`, "A".repeat((1 << 20) - 64)) })
    const headers = Array.from({ length: 40 }, (_, i) => big(i))
    const t = Buffer.concat([...headers, rawEntry({ name: "PaxHeader", type: "x", content: paxRecord("uid", "42") }), rawEntry({ name: "f", content: "x" }), TAR_END])
    const seen = parse(t, 64 * 1024)
    expect(seen.map((s) => s.entry.name)).toEqual(["f"])
    // only the last header's records: no xattr of the 40 before it, its uid
    expect(seen[0].entry.uid).toBe(42)
    expect(seen[0].entry.xattrs).toBeUndefined()
    const lastWins = Buffer.concat([big(1), big(2), rawEntry({ name: "f", content: "x" }), TAR_END])
    expect(parse(lastWins)[0].entry.xattrs?.map(([k]) => k)).toEqual(["user.k2"])
  })

  test("header-only types carry no data, whatever their size field says (like Go)", () => {
    // the symlink's "size" is ignored, so the next header is read right after it
    const bytes = Buffer.concat([rawEntry({ name: "l", type: "symlink", linkname: "x", size: 5 }).subarray(0, 512), rawEntry({ name: "f", content: "after" }), TAR_END])
    expect(parse(bytes).map((s) => [s.entry.name, s.data])).toEqual([["l", ""], ["f", "after"]])
  })

  test("bytes after the end-of-archive marker are ignored", () => {
    const t = Buffer.concat([rawTar([{ name: "f", content: "x" }]), Buffer.from("trailing garbage, not a header".repeat(40))])
    expect(parse(t, 100).map((s) => s.entry.name)).toEqual(["f"])
  })

  test("errors: bad checksum, bad octal, malformed PAX, truncation", () => {
    expect(() => parse(rawTar([{ name: "f", content: "x", badChecksum: true }]))).toThrow(TarFormatError)
    const badOctal = Buffer.from(rawTar([{ name: "f", content: "x" }]))
    badOctal.write("9", 100) // mode field
    expect(() => parse(badOctal)).toThrow(/checksum|octal/)
    const badPax = rawTar([{ name: "f", content: "x", pax: { k: "v" } }])
    badPax[512] = 0x39 // the record length no longer matches
    expect(() => parse(badPax)).toThrow(TarFormatError)
    expect(() => parse(tar.subarray(0, 512 + 600))).toThrow(/truncated/)
    expect(() => parse(tar.subarray(0, 300))).toThrow(/truncated/)
  })
})
