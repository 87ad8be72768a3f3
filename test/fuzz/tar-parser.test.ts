// Property tests of the streaming tar reader (src/extract/TarParser.ts), the first parser a
// layer's bytes meet. Properties: any bytes end in entries or a TarFormatError/TarNameError
// (never a TypeError, RangeError or a huge allocation); every entry it hands on is typed
// (ids that chown accepts, finite times, sizes that are safe integers); the chunking of the
// input changes nothing; and what our encoder writes reads back as written.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import { type TarEntry, TarFormatError, TarNameError, TarParser } from "../../src/extract/TarParser.ts"
import { paxRecord, type RawEntry, rawTar, TAR_END } from "../lib/tars.ts"
import { chunked, FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

interface Seen {
  readonly entry: TarEntry
  data: Array<Uint8Array>
  ended: boolean
}

interface Outcome {
  readonly seen: Array<Seen>
  /** the typed error the parser ended with, as `Class: message` */
  readonly error: string | undefined
}

/** Parses `pieces` in order; rethrows anything that is not one of the parser's typed errors. */
const parse = (pieces: ReadonlyArray<Uint8Array>): Outcome => {
  const seen: Array<Seen> = []
  const sink = {
    entry: (e: TarEntry) => {
      const last = seen.at(-1)
      if (last !== undefined && !last.ended) throw new Error(`entry ${JSON.stringify(e.name)} before the end of the previous one`)
      seen.push({ entry: e, data: [], ended: false })
    },
    data: (c: Uint8Array) => {
      const cur = seen.at(-1)
      if (cur === undefined || cur.ended) throw new Error("data outside an entry")
      cur.data.push(c.slice())
    },
    end: () => {
      const cur = seen.at(-1)
      if (cur === undefined || cur.ended) throw new Error("end outside an entry")
      cur.ended = true
    },
  }
  const p = new TarParser(sink)
  try {
    for (const piece of pieces) p.push(piece)
    p.finish()
    return { seen, error: undefined }
  } catch (e) {
    if (e instanceof TarFormatError || e instanceof TarNameError) return { seen, error: `${e.constructor.name}: ${e.message}` }
    throw e
  }
}

const dataLength = (s: Seen): number => s.data.reduce((n, c) => n + c.length, 0)

/** What a consumer (OverlayWriter, the chown/utimes/mknod calls) relies on for every entry. */
const assertTyped = (o: Outcome): void => {
  for (const s of o.seen) {
    const e = s.entry
    expect(typeof e.name).toBe("string")
    expect(typeof e.linkname).toBe("string")
    expect(e.mode).toBeGreaterThanOrEqual(0)
    expect(e.mode).toBeLessThanOrEqual(0o7777)
    expect(Number.isSafeInteger(e.size) && e.size >= 0).toBe(true)
    expect(Number.isFinite(e.mtime)).toBe(true)
    if (e.atime !== undefined) expect(Number.isFinite(e.atime)).toBe(true)
    if (e.kind !== "unsupported") {
      // chown(2) takes 32-bit ids and 0xffffffff means "leave unchanged"; mknod a 32-bit major/minor
      for (const id of [e.uid, e.gid]) expect(Number.isInteger(id) && id >= 0 && id < 0xffffffff).toBe(true)
      for (const d of [e.devmajor, e.devminor]) expect(Number.isInteger(d) && d >= 0 && d <= 0xffffffff).toBe(true)
    }
    if (e.kind !== "file" && e.kind !== "unsupported") expect(e.size).toBe(0)
    // an entry that ended got exactly its size in data
    if (s.ended) expect(dataLength(s)).toBe(e.size)
  }
  if (o.error === undefined) for (const s of o.seen) expect(s.ended).toBe(true)
}

/** A comparable summary: entries with their data concatenated, and the error. */
const summary = (o: Outcome) => ({
  entries: o.seen.map((s) => ({ ...s.entry, data: Buffer.concat(s.data).toString("hex"), ended: s.ended })),
  error: o.error,
})

// ---- generators ------------------------------------------------------------------------

const enc = new TextEncoder()

const base256 = (v: bigint, len: number): Uint8Array => {
  const b = new Uint8Array(len)
  b[0] = 0x80
  for (let i = len - 1; i > 0; i--, v >>= 8n) b[i] = Number(v & 0xffn)
  return b
}

/** Writes `v` as a tar numeric field: octal, base-256, or garbage. */
const numericField = (len: number): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    // plain octal, NUL-terminated, possibly with leading spaces
    fc.bigInt({ min: 0n, max: 8n ** BigInt(len - 1) - 1n }).map((v) => {
      const b = new Uint8Array(len)
      b.set(enc.encode(v.toString(8).padStart(len - 1, "0")))
      return b
    }),
    // base-256, any magnitude (2^60 included), positive or negative
    fc.tuple(fc.constantFrom(0x80, 0xff, 0x81, 0xbf), fc.uint8Array({ minLength: len - 1, maxLength: len - 1 })).map(
      ([first, rest]) => Uint8Array.from([first, ...rest]),
    ),
    // 2^60 where it fits (size, mtime), 2^53 and 2^32 elsewhere: must never be allocated or truncated
    fc.constantFrom(...(len === 12 ? [2n ** 60n, 2n ** 32n] : [2n ** 53n, 2n ** 32n, 2n ** 32n - 1n])).map((v) => base256(v, len)),
    fc.uint8Array({ minLength: len, maxLength: len }),
    fc.constantFrom(new Uint8Array(len), new Uint8Array(len).fill(0x20), enc.encode("7".repeat(len))),
  )

/** Names an attacker likes: climbing, absolute, whiteouts, NULs, invalid UTF-8, very long. */
const hostileName: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom("..", "../x", "a/../../x", "/", "/etc/passwd", ".", "./", ".wh..wh..opq", ".wh.x", "a/.wh.b/c", "a//b/", "\u00e9t\u00e9")
    .map((s) => enc.encode(s)),
  fc.uint8Array({ maxLength: 100 }),
  fc.stringMatching(/^[a-z./]{1,100}$/).map((s) => enc.encode(s)),
  fc.constant(Uint8Array.from([0x61, 0xff, 0xfe])),
)

const typeflag = fc.constantFrom(..."0123456789xLKgSVDAMNIXZ\0 ".split("").map((c) => c.charCodeAt(0)))

const setChecksum = (b: Uint8Array, mode: "right" | "signed" | "wrong"): void => {
  b.fill(0x20, 148, 156)
  let u = 0
  let s = 0
  for (const c of b) {
    u += c
    s += c < 128 ? c : c - 256
  }
  const v = mode === "signed" ? s : mode === "wrong" ? u + 1 : u
  if (v < 0) return // a signed sum below zero cannot be written: leave the field as spaces
  b.set(enc.encode(v.toString(8).padStart(6, "0")), 148)
  b[154] = 0
}

/** One header block built from hostile fields, mostly with a valid checksum so parsing goes deep. */
const hostileHeader: fc.Arbitrary<Uint8Array> = fc
  .record({
    name: hostileName,
    mode: numericField(8),
    uid: numericField(8),
    gid: numericField(8),
    size: numericField(12),
    mtime: numericField(12),
    flag: typeflag,
    linkname: hostileName,
    magic: fc.constantFrom("ustar\u000000", "ustar  \u0000", "", "ustar\u0000xx"),
    devmajor: numericField(8),
    devminor: numericField(8),
    prefix: fc.oneof(fc.constant(new Uint8Array(0)), hostileName),
    star: fc.boolean(),
    checksum: fc.constantFrom<"right" | "signed" | "wrong">("right", "right", "right", "signed", "wrong"),
  })
  .map((f) => {
    const b = new Uint8Array(512)
    b.set(f.name.subarray(0, 100), 0)
    b.set(f.mode, 100)
    b.set(f.uid, 108)
    b.set(f.gid, 116)
    b.set(f.size, 124)
    b.set(f.mtime, 136)
    b[156] = f.flag
    b.set(f.linkname.subarray(0, 100), 157)
    b.set(enc.encode(f.magic), 257)
    b.set(f.devmajor, 329)
    b.set(f.devminor, 337)
    b.set(f.prefix.subarray(0, f.star ? 131 : 155), 345)
    if (f.star) b.set(enc.encode("tar\u0000"), 508)
    setChecksum(b, f.checksum)
    return b
  })

/** PAX records, some with lengths that lie (too short, too long, not digits). */
const paxBody: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.record({
      key: fc.oneof(
        fc.constantFrom("path", "linkpath", "size", "uid", "gid", "mtime", "atime", "SCHILY.xattr.user.x", "GNU.sparse.map", "comment", ""),
        fc.string({ maxLength: 20 }),
      ),
      value: fc.oneof(
        fc.string({ maxLength: 40 }).map((s) => enc.encode(s)),
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom("-1", "1e9", "9".repeat(400), "-" + "9".repeat(400), "1.5", "00", "18446744073709551616", " 1", "")
          .map((s) => enc.encode(s)),
      ),
      lie: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -5, max: 5 })),
      junkLength: fc.option(fc.constantFrom("x", "", "99999999999999999999", "0", "-3"), { nil: undefined, freq: 8 }),
    }),
    { maxLength: 6 },
  )
  .map((recs) =>
    Buffer.concat(recs.map((r) => {
      const good = paxRecord(r.key, r.value)
      if (r.junkLength !== undefined) return Buffer.concat([enc.encode(`${r.junkLength} `), good.subarray(good.indexOf(0x20) + 1)])
      if (r.lie === 0) return Buffer.from(good)
      const body = good.subarray(good.indexOf(0x20))
      return Buffer.concat([enc.encode(String(Math.max(0, good.length + r.lie))), body])
    }))
  )

const pad = (b: Uint8Array): Uint8Array => Buffer.concat([b, new Uint8Array((512 - (b.length % 512)) % 512)])

/** A header of the given type and size, valid otherwise. */
const plainHeader = (flag: string, size: number, name = "x"): Uint8Array => {
  const b = new Uint8Array(512)
  b.set(enc.encode(name))
  b.set(enc.encode("0000644\u0000"), 100)
  b.set(enc.encode(size.toString(8).padStart(11, "0")), 124)
  b.set(enc.encode("00000000000\u0000"), 136)
  b[156] = flag.charCodeAt(0)
  b.set(enc.encode("ustar\u000000"), 257)
  setChecksum(b, "right")
  return b
}

/** Archives: hostile headers with data, PAX headers with odd records, valid entries, the end. */
const hostileArchive: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      fc.tuple(hostileHeader, fc.uint8Array({ maxLength: 1100 })).map(([h, d]) => Buffer.concat([h, d])),
      paxBody.map((body) => Buffer.concat([plainHeader("x", body.length), pad(body)])),
      fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.constantFrom("L", "K")).map(([body, f]) =>
        Buffer.concat([plainHeader(f, body.length, "././@LongLink"), pad(body)])
      ),
      fc.constant(rawTar([{ name: "ok", content: "fine" }], { end: false })),
      fc.constant(new Uint8Array(512)),
    ),
    { maxLength: 5 },
  )
  .chain((parts) => fc.boolean().map((end) => Buffer.concat([...parts, ...(end ? [TAR_END] : [])])))

/** Valid archives from our encoder, then damaged: bytes flipped, cut, or inserted. */
const mutatedArchive: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.array(
      fc.record({
        name: fc.stringMatching(/^[a-z]{1,8}(\/[a-z]{1,8}){0,2}$/),
        content: fc.uint8Array({ maxLength: 700 }),
        long: fc.boolean(),
        gnu: fc.boolean(),
      }),
      { minLength: 1, maxLength: 3 },
    ),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([entries, flips, cut]) => {
    const tar = Buffer.from(rawTar(entries.map((e): RawEntry => ({
      name: e.long ? `${e.name}/${"n".repeat(120)}` : e.name,
      content: e.content,
      format: e.gnu ? "gnu" : "ustar",
    }))))
    for (const [at, x] of flips) tar[at % tar.length] ^= x
    return cut === undefined ? tar : tar.subarray(0, cut % (tar.length + 1))
  })

const cuts = fc.array(fc.nat(), { maxLength: 6 })

const assertChunkingInvariant = (bytes: Uint8Array, at: ReadonlyArray<number>): void => {
  const whole = parse([bytes])
  assertTyped(whole)
  const pieces = parse(chunked(bytes, at))
  assertTyped(pieces)
  expect(summary(pieces)).toEqual(summary(whole))
}

// ---- properties ------------------------------------------------------------------------

describe("TarParser, fuzzed", () => {
  test("arbitrary bytes: typed entries or a typed error, whatever the chunking", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), cuts, assertChunkingInvariant), fuzzParams())
  }, FUZZ_TIMEOUT_MS)

  test("hostile headers and PAX records: typed entries or a typed error, whatever the chunking", () => {
    fc.assert(fc.property(hostileArchive, cuts, assertChunkingInvariant), fuzzParams(2))
  }, FUZZ_TIMEOUT_MS)

  test("damaged valid archives: typed entries or a typed error, whatever the chunking", () => {
    fc.assert(fc.property(mutatedArchive, cuts, assertChunkingInvariant), fuzzParams())
  }, FUZZ_TIMEOUT_MS)

  test("round trip: what our encoder writes reads back as written", () => {
    const entryArb = fc.record({
      name: fc.stringMatching(/^[a-zA-Z0-9_-]{1,20}(\/[a-zA-Z0-9._-]{1,20}){0,8}$/).filter((s) => !s.split("/").includes("..")),
      kind: fc.constantFrom<"file" | "dir" | "symlink" | "link" | "fifo" | "char">("file", "dir", "symlink", "link", "fifo", "char"),
      content: fc.uint8Array({ maxLength: 1500 }),
      mode: fc.integer({ min: 0, max: 0o7777 }),
      uid: fc.integer({ min: 0, max: 0xfffffffe }),
      gid: fc.integer({ min: 0, max: 0xfffffffe }),
      mtime: fc.integer({ min: 0, max: 2 ** 40 }),
      linkname: fc.stringMatching(/^[^\u0000]{1,150}$/),
      dev: fc.tuple(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 2 ** 20 - 1 })),
      xattr: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }),
      gnu: fc.boolean(),
    })
    fc.assert(
      fc.property(fc.array(entryArb, { minLength: 1, maxLength: 6 }), cuts, (entries, at) => {
        const raw: Array<RawEntry> = entries.map((e) => ({
          name: e.kind === "dir" ? `${e.name}/` : e.name,
          type: e.kind,
          content: e.kind === "file" ? e.content : undefined,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          mtime: e.mtime,
          linkname: e.kind === "symlink" || e.kind === "link" ? e.linkname : undefined,
          devmajor: e.dev[0],
          devminor: e.dev[1],
          xattrs: e.xattr === undefined ? undefined : { "user.fuzz": e.xattr },
          format: e.gnu ? "gnu" : "ustar",
        }))
        const out = parse(chunked(rawTar(raw), at))
        expect(out.error).toBeUndefined()
        assertTyped(out)
        expect(out.seen.map((s) => ({
          name: s.entry.name,
          kind: s.entry.kind,
          data: Buffer.concat(s.data).toString("hex"),
          mode: s.entry.mode,
          uid: s.entry.uid,
          gid: s.entry.gid,
          mtime: s.entry.mtime,
          linkname: s.entry.linkname,
          dev: [s.entry.devmajor, s.entry.devminor],
          xattrs: s.entry.xattrs?.map(([k, v]) => [k, Buffer.from(v).toString("hex")]),
        }))).toEqual(entries.map((e) => ({
          name: e.kind === "dir" ? `${e.name}/` : e.name,
          kind: e.kind,
          data: e.kind === "file" ? Buffer.from(e.content).toString("hex") : "",
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          mtime: e.mtime,
          linkname: e.kind === "symlink" || e.kind === "link" ? e.linkname : "",
          dev: e.kind === "char" ? e.dev : [0, 0],
          xattrs: e.xattr === undefined ? undefined : [["user.fuzz", Buffer.from(e.xattr).toString("hex")]],
        })))
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)
})

// Counterexamples the properties above found, pinned with their concrete inputs.
describe("TarParser regressions found by fuzzing", () => {
  const fileHeader = (patch: (b: Uint8Array) => void): Uint8Array => {
    const h = plainHeader("0", 0, "f")
    patch(h)
    setChecksum(h, "right")
    return h
  }
  const setBase256 = (b: Uint8Array, at: number, len: number, v: bigint) => b.set(base256(v, len), at)

  test("a bad header's error names its first byte whether it came whole or in pieces (was: byte 512 when split)", () => {
    const bad = new Uint8Array(1024)
    bad[0] = 0x61 // not a zero block, checksum field empty: invalid
    const whole = parse([bad])
    const split = parse([bad.subarray(0, 100), bad.subarray(100)])
    expect(whole.error).toContain("at byte 0 ")
    expect(split.error).toBe(whole.error)
  })

  test("uid 2^32 in a base-256 field is an unsupported entry, not a RangeError from chown", () => {
    const out = parse([fileHeader((h) => setBase256(h, 108, 8, 2n ** 32n)), TAR_END])
    expect(out.error).toBeUndefined()
    expect(out.seen[0].entry.kind).toBe("unsupported")
    expect(out.seen[0].entry.unsupported).toContain("4294967296:0 is out of range")
  })

  test("gid 0xffffffff ((gid_t)-1, which chown reads as 'leave unchanged') is an unsupported entry", () => {
    const out = parse([fileHeader((h) => setBase256(h, 116, 8, 0xffffffffn)), TAR_END])
    expect(out.seen[0].entry.kind).toBe("unsupported")
  })

  test("PAX uid 18446744073709551616 is refused as an invalid number", () => {
    const body = paxRecord("uid", "18446744073709551616")
    const out = parse([plainHeader("x", body.length), pad(body), fileHeader(() => {}), TAR_END])
    expect(out.error).toMatch(/^TarFormatError: invalid PAX uid/)
  })

  test("a device 4294967297:1 (2^32+1, which mknod would cut to 1:1) is an unsupported entry", () => {
    const h = plainHeader("3", 0, "dev")
    setBase256(h, 329, 8, 2n ** 32n + 1n)
    h.set(enc.encode("0000001\u0000"), 337)
    setChecksum(h, "right")
    const out = parse([h, TAR_END])
    expect(out.seen[0].entry.kind).toBe("unsupported")
    expect(out.seen[0].entry.unsupported).toContain("4294967297:1")
  })

  test("PAX mtime of 400 nines is a TarFormatError, not Infinity (which futimes throws a TypeError on)", () => {
    for (const v of ["9".repeat(400), `-${"9".repeat(400)}`, "9223372036854775808"]) {
      const body = paxRecord("mtime", v)
      const out = parse([plainHeader("x", body.length), pad(body), fileHeader(() => {}), TAR_END])
      expect(out.error).toMatch(/^TarFormatError: invalid PAX mtime/)
    }
  })

  test("a size field of 2^60, or of 2^40 on a PAX header, is refused before anything is allocated", () => {
    const h = plainHeader("x", 0)
    setBase256(h, 124, 12, 2n ** 60n)
    setChecksum(h, "right")
    expect(parse([h]).error).toContain("number too large in the tar header's size field")
    setBase256(h, 124, 12, 2n ** 40n)
    setChecksum(h, "right")
    expect(parse([h]).error).toContain("exceeds 1048576")
  })

  test("a file entry of 2^52 bytes is streamed, not buffered: the archive is merely truncated", () => {
    const out = parse([fileHeader((h) => setBase256(h, 124, 12, 2n ** 52n)), new Uint8Array(4096)])
    expect(out.seen[0].entry.size).toBe(2 ** 52)
    expect(out.error).toContain("truncated")
  })
})
