/**
 * Tar archives and layer blobs for tests.
 * - `packTar`: tar-stream's `pack()` (an independent producer, textual PAX records).
 * - `rawTar` / `rawEntry`: our own header encoder, for what pack() cannot write: binary PAX
 *   values (security.capability), arbitrary type flags, hostile names, bad checksums.
 * - `layerBlob`: compress a tar (none/gzip/zstd) and return blob, digests and sizes.
 * - `estargzBlob` / `zstdChunkedBlob`: layers shaped like eStargz and zstd:chunked, with the
 *   annotations a registry manifest would carry.
 * - `streamTar`, `gzipStream`, `digestStream`: big layers generated on the fly, never in memory.
 */
import { createHash } from "node:crypto"
import { Readable } from "node:stream"
import * as zlib from "node:zlib"
import { pack } from "tar-stream"
import type { Digest } from "../../src/domain/Digest.ts"

type Bytes = Uint8Array
const enc = new TextEncoder()
const bytes = (s: string | Bytes): Bytes => (typeof s === "string" ? enc.encode(s) : s)

export const sha256 = (b: Bytes): Digest => `sha256:${createHash("sha256").update(b).digest("hex")}` as Digest

// ---------------------------------------------------------------------------------------------
// tar-stream

export type PackEntry = Parameters<ReturnType<typeof pack>["entry"]>[0] & { content?: string | Bytes }

/** A complete archive written by tar-stream's pack(). */
export const packTar = async (entries: ReadonlyArray<PackEntry>): Promise<Buffer> => {
  const p = pack()
  const out: Array<Buffer> = []
  const done = (async () => {
    for await (const c of p as AsyncIterable<Buffer>) out.push(c)
  })()
  for (const { content, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const isFile = header.type === undefined || header.type === "file"
      // pack() waits for a streamed body when a file entry comes without one
      const body = content === undefined ? (isFile ? Buffer.alloc(0) : undefined) : Buffer.from(bytes(content))
      const cb = (err?: Error | null) => (err ? reject(err) : resolve())
      if (body !== undefined) p.entry({ ...header, size: body.length }, body, cb)
      else p.entry(header, cb)
    })
  }
  p.finalize()
  await done
  return Buffer.concat(out)
}

// ---------------------------------------------------------------------------------------------
// our own encoder

export type RawType = "file" | "dir" | "symlink" | "link" | "char" | "block" | "fifo"

export interface RawEntry {
  readonly name: string | Bytes
  /** a kind, or a raw type flag character such as "7", "S", "V" */
  readonly type?: RawType | string
  readonly content?: string | Bytes
  /** overrides the header's size field (content is still what is written) */
  readonly size?: number
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  /** seconds */
  readonly mtime?: number
  readonly linkname?: string | Bytes
  readonly devmajor?: number
  readonly devminor?: number
  /** extra PAX records, values as text or bytes */
  readonly pax?: Readonly<Record<string, string | Bytes>>
  /** written as PAX `SCHILY.xattr.<name>` records */
  readonly xattrs?: Readonly<Record<string, string | Bytes>>
  readonly badChecksum?: boolean
  /** "gnu" writes long names as GNU `L`/`K` records instead of PAX */
  readonly format?: "ustar" | "gnu"
}

const typeFlags: Record<RawType, string> = {
  file: "0",
  link: "1",
  symlink: "2",
  char: "3",
  block: "4",
  dir: "5",
  fifo: "6",
}

const octal = (buf: Bytes, off: number, len: number, v: number) => {
  const s = Math.floor(v).toString(8).padStart(len - 1, "0")
  if (s.length > len - 1) {
    // base-256
    buf[off] = 0x80
    let x = BigInt(Math.floor(v))
    for (let i = off + len - 1; i > off; i--) {
      buf[i] = Number(x & 0xffn)
      x >>= 8n
    }
    return
  }
  buf.set(enc.encode(s), off)
  buf[off + len - 1] = 0
}

const pad512 = (n: number) => (512 - (n % 512)) % 512

const header = (
  o: {
    name: Bytes
    flag: string
    size: number
    mode: number
    uid: number
    gid: number
    mtime: number
    linkname: Bytes
    devmajor: number
    devminor: number
    gnu: boolean
    badChecksum?: boolean
  },
): Bytes => {
  const b = new Uint8Array(512)
  b.set(o.name.subarray(0, 100), 0)
  octal(b, 100, 8, o.mode)
  octal(b, 108, 8, o.uid)
  octal(b, 116, 8, o.gid)
  octal(b, 124, 12, o.size)
  octal(b, 136, 12, o.mtime)
  b[156] = o.flag.charCodeAt(0)
  b.set(o.linkname.subarray(0, 100), 157)
  if (o.gnu) b.set(enc.encode("ustar  \0"), 257)
  else {
    b.set(enc.encode("ustar\0"), 257)
    b.set(enc.encode("00"), 263)
  }
  b.set(enc.encode("root"), 265)
  b.set(enc.encode("root"), 297)
  octal(b, 329, 8, o.devmajor)
  octal(b, 337, 8, o.devminor)
  b.fill(32, 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += b[i]
  if (o.badChecksum) sum += 1
  b.set(enc.encode(sum.toString(8).padStart(6, "0")), 148)
  b[154] = 0
  b[155] = 32
  return b
}

/** One PAX record: "<len> <key>=<value>\n", where len counts itself. */
export const paxRecord = (key: string, value: string | Bytes): Bytes => {
  const body = concat([enc.encode(` ${key}=`), bytes(value), enc.encode("\n")])
  let len = body.length + 1
  while (String(len).length + body.length !== len) len = String(len).length + body.length
  return concat([enc.encode(String(len)), body])
}

const concat = (parts: ReadonlyArray<Bytes>): Bytes => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))

const withData = (hdr: Bytes, data: Bytes): Bytes => concat([hdr, data, new Uint8Array(pad512(data.length))])

/** One entry (its PAX / GNU long-name headers included), padded to 512-byte blocks. */
export const rawEntry = (e: RawEntry): Bytes => {
  const name = bytes(e.name)
  const linkname = bytes(e.linkname ?? "")
  const content = bytes(e.content ?? "")
  const flag = e.type === undefined ? "0" : (typeFlags as Record<string, string>)[e.type] ?? e.type
  const parts: Array<Bytes> = []
  const records: Array<Bytes> = []
  const gnu = e.format === "gnu"
  const base = {
    mode: e.mode ?? (flag === "5" ? 0o755 : 0o644),
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    mtime: e.mtime ?? 1700000000,
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
    gnu,
  }
  if (name.length > 100) {
    if (gnu) {
      const long = concat([name, new Uint8Array(1)])
      parts.push(withData(header({ ...base, name: enc.encode("././@LongLink"), flag: "L", size: long.length, linkname: new Uint8Array(0) }), long))
    } else records.push(paxRecord("path", name))
  }
  if (linkname.length > 100) {
    if (gnu) {
      const long = concat([linkname, new Uint8Array(1)])
      parts.push(withData(header({ ...base, name: enc.encode("././@LongLink"), flag: "K", size: long.length, linkname: new Uint8Array(0) }), long))
    } else records.push(paxRecord("linkpath", linkname))
  }
  for (const [k, v] of Object.entries(e.xattrs ?? {})) records.push(paxRecord(`SCHILY.xattr.${k}`, v))
  for (const [k, v] of Object.entries(e.pax ?? {})) records.push(paxRecord(k, v))
  if (records.length > 0) {
    const body = concat(records)
    parts.push(withData(header({ ...base, name: enc.encode("PaxHeaders/x"), flag: "x", size: body.length, linkname: new Uint8Array(0) }), body))
  }
  parts.push(withData(
    header({
      ...base,
      name,
      flag,
      size: e.size ?? content.length,
      linkname,
      badChecksum: e.badChecksum,
    }),
    content,
  ))
  return concat(parts)
}

/** The end-of-archive marker: two zero blocks. */
export const TAR_END: Bytes = new Uint8Array(1024)

/** A complete archive from our encoder; `end: false` leaves the end-of-archive marker out. */
export const rawTar = (entries: ReadonlyArray<RawEntry>, opts: { end?: boolean; trailer?: Bytes } = {}): Buffer =>
  Buffer.from(concat([...entries.map(rawEntry), ...(opts.end === false ? [] : [TAR_END]), ...(opts.trailer ? [opts.trailer] : [])]))

// ---------------------------------------------------------------------------------------------
// blobs

export type TestCompression = "none" | "gzip" | "zstd"

export const compress = (tar: Bytes, c: TestCompression): Buffer => {
  switch (c) {
    case "none":
      return Buffer.from(tar)
    case "gzip":
      return zlib.gzipSync(tar, { level: 1 })
    case "zstd":
      return (zlib as unknown as { zstdCompressSync: (b: Bytes) => Buffer }).zstdCompressSync(tar)
  }
}

export interface TestBlob {
  readonly blob: Buffer
  readonly digest: Digest
  readonly size: number
  readonly diffId: Digest
  readonly mediaType: string
  readonly annotations: Record<string, string>
}

export const mediaTypes: Record<TestCompression, string> = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
}

export const layerBlob = (tar: Bytes, c: TestCompression = "gzip"): TestBlob => {
  const blob = compress(tar, c)
  return { blob, digest: sha256(blob), size: blob.length, diffId: sha256(tar), mediaType: mediaTypes[c], annotations: {} }
}

/** Yields `b` in pieces of `size` bytes (default 64 KiB), like a network body. */
export async function* chunks(b: Bytes, size = 65536): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size)
}

// ---------------------------------------------------------------------------------------------
// eStargz and zstd:chunked

/**
 * An eStargz-shaped blob: one gzip member per entry, the TOC `stargz.index.json` as the last
 * entry (with the end-of-archive marker) in its own member, then the 51-byte footer member whose
 * extra field holds "%016xSTARGZ" (the TOC member's offset).
 */
export const estargzBlob = (entries: ReadonlyArray<RawEntry>, opts: { tocDigest?: string } = {}): TestBlob & { toc: Buffer } => {
  const members: Array<Buffer> = []
  const tarParts: Array<Bytes> = []
  for (const e of entries) {
    const t = rawEntry(e)
    tarParts.push(t)
    members.push(zlib.gzipSync(t, { level: 1 }))
  }
  const toc = Buffer.from(JSON.stringify({
    version: 1,
    entries: entries.map((e) => ({ name: typeof e.name === "string" ? e.name : "?", type: e.type ?? "reg" })),
  }))
  const tocTar = concat([rawEntry({ name: "stargz.index.json", content: toc }), TAR_END])
  tarParts.push(tocTar)
  const tocOffset = members.reduce((n, m) => n + m.length, 0)
  members.push(zlib.gzipSync(tocTar, { level: 1 }))
  members.push(stargzFooter(tocOffset))
  const blob = Buffer.concat(members)
  return {
    blob,
    digest: sha256(blob),
    size: blob.length,
    diffId: sha256(concat(tarParts)),
    mediaType: mediaTypes.gzip,
    annotations: { "containerd.io/snapshot/stargz/toc.digest": opts.tocDigest ?? sha256(toc) },
    toc,
  }
}

/** gzip member with an empty stored body and the STARGZ extra field: 51 bytes. */
export const stargzFooter = (tocOffset: number): Buffer => {
  const extra = Buffer.from(`${tocOffset.toString(16).padStart(16, "0")}STARGZ`)
  const b = Buffer.alloc(51)
  b.set([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0x00, 0xff], 0) // FLG=FEXTRA, OS=unknown
  b.writeUInt16LE(4 + extra.length, 10) // XLEN = 26
  b.set([0x53, 0x47], 12) // 'S' 'G'
  b.writeUInt16LE(extra.length, 14) // LEN = 22
  extra.copy(b, 16)
  b.set([0x01, 0x00, 0x00, 0xff, 0xff], 38) // final stored block of length 0
  // CRC32 and ISIZE of empty data: zero
  return b
}

const skippableFrame = (data: Bytes, magicLow = 0x50): Buffer => {
  const h = Buffer.alloc(8)
  h.writeUInt32LE(0x184d2a00 | magicLow, 0)
  h.writeUInt32LE(data.length, 4)
  return Buffer.concat([h, Buffer.from(data)])
}

/**
 * A zstd:chunked-shaped blob: one zstd frame per tar entry (and one for the end marker), then
 * skippable frames holding the zstd-compressed TOC (the manifest), the tar-split, and the
 * 64-byte footer ending in "GNUlInUx", as containers/storage's compressor writes them.
 */
export const zstdChunkedBlob = (
  entries: ReadonlyArray<RawEntry>,
  opts: { position?: boolean; tocDigest?: string; leadingSkippable?: boolean } = {},
): TestBlob & { manifest: Buffer } => {
  const zc = (b: Bytes) => (zlib as unknown as { zstdCompressSync: (b: Bytes) => Buffer }).zstdCompressSync(b)
  const frames: Array<Buffer> = []
  const tarParts: Array<Bytes> = []
  if (opts.leadingSkippable) frames.push(skippableFrame(enc.encode("ignored"), 0x5e))
  for (const e of entries) {
    const t = rawEntry(e)
    tarParts.push(t)
    frames.push(zc(t))
  }
  tarParts.push(TAR_END)
  frames.push(zc(TAR_END))
  const tocJson = Buffer.from(JSON.stringify({ version: 1, entries: entries.map((e) => ({ name: String(e.name) })) }))
  const manifest = zc(tocJson)
  let offset = frames.reduce((n, f) => n + f.length, 0)
  const manifestOffset = offset + 8
  frames.push(skippableFrame(manifest))
  offset += 8 + manifest.length
  const tarSplit = zc(enc.encode("{\"type\":1}\n"))
  const tarSplitOffset = offset + 8
  frames.push(skippableFrame(tarSplit))
  const footer = Buffer.alloc(64)
  footer.writeBigUInt64LE(BigInt(manifestOffset), 0)
  footer.writeBigUInt64LE(BigInt(manifest.length), 8)
  footer.writeBigUInt64LE(BigInt(tocJson.length), 16)
  footer.writeBigUInt64LE(1n, 24)
  footer.writeBigUInt64LE(BigInt(tarSplitOffset), 32)
  footer.writeBigUInt64LE(BigInt(tarSplit.length), 40)
  footer.writeBigUInt64LE(11n, 48)
  footer.write("GNUlInUx", 56, "latin1")
  frames.push(skippableFrame(footer))
  const blob = Buffer.concat(frames)
  const annotations: Record<string, string> = {
    "io.github.containers.zstd-chunked.manifest-checksum": opts.tocDigest ?? sha256(manifest),
  }
  if (opts.position !== false) {
    annotations["io.github.containers.zstd-chunked.manifest-position"] =
      `${manifestOffset}:${manifest.length}:${tocJson.length}:1`
  }
  return {
    blob,
    digest: sha256(blob),
    size: blob.length,
    diffId: sha256(concat(tarParts)),
    mediaType: mediaTypes.zstd,
    annotations,
    manifest,
  }
}

// ---------------------------------------------------------------------------------------------
// big layers, streamed

export interface StreamTarOptions {
  /** total content bytes to generate (approximately) */
  readonly bytes: number
  /** bytes per file */
  readonly fileSize: number
  /** share of files with incompressible content (0..1) */
  readonly randomShare?: number
}

/**
 * A tar generated on the fly: directories of files, alternating compressible text and
 * pseudo-random bytes (a fixed 1 MiB random block, sliced at varying offsets, so that two
 * runs yield the same bytes).
 */
export async function* streamTar(o: StreamTarOptions): AsyncGenerator<Uint8Array> {
  const random = randomBlock()
  const text = enc.encode("The quick brown fox jumps over the lazy dog. 0123456789\n".repeat(20000))
  const randomEvery = o.randomShare === undefined ? 2 : Math.max(1, Math.round(1 / Math.max(o.randomShare, 1e-9)))
  const files = Math.max(1, Math.ceil(o.bytes / o.fileSize))
  for (let i = 0; i < files; i++) {
    if (i % 1000 === 0) yield rawEntry({ name: `d${i / 1000}/`, type: "dir" })
    const name = `d${Math.floor(i / 1000)}/f${i}`
    yield rawEntry({ name, size: o.fileSize, content: new Uint8Array(0) }).subarray(0, 512)
    const src = i % randomEvery === 0 ? random : text
    let left = o.fileSize
    let off = (i * 7919) % (src.length / 2)
    while (left > 0) {
      const n = Math.min(left, src.length - off, 256 * 1024)
      yield src.subarray(off, off + n)
      left -= n
      off = (off + n) % src.length
    }
    const pad = pad512(o.fileSize)
    if (pad > 0) yield new Uint8Array(pad)
  }
  yield TAR_END
}

let randomCache: Bytes | undefined
const randomBlock = (): Bytes => {
  if (randomCache) return randomCache
  // xorshift32: deterministic and fast enough for 1 MiB
  const b = new Uint8Array(1 << 20)
  let x = 0x9e3779b9
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    b[i] = x & 0xff
    b[i + 1] = (x >>> 8) & 0xff
    b[i + 2] = (x >>> 16) & 0xff
    b[i + 3] = x >>> 24
  }
  return (randomCache = b)
}

/** Compresses a stream with gzip (level 1 by default) as it flows. */
export async function* gzipStream(source: AsyncIterable<Uint8Array>, level = 1): AsyncGenerator<Uint8Array> {
  const gz = Readable.from(source).pipe(zlib.createGzip({ level }))
  for await (const c of gz) yield c as Uint8Array
}

/** Consumes a stream: its sha256 digest and size. */
export const digestStream = async (source: AsyncIterable<Uint8Array>): Promise<{ digest: Digest; size: number }> => {
  const h = createHash("sha256")
  let size = 0
  for await (const c of source) {
    h.update(c)
    size += c.length
  }
  return { digest: `sha256:${h.digest("hex")}` as Digest, size }
}

/** Passes a stream through while hashing it; read `result()` after it ends. */
export const tee = (source: AsyncIterable<Uint8Array>) => {
  const h = createHash("sha256")
  let size = 0
  async function* gen() {
    for await (const c of source) {
      h.update(c)
      size += c.length
      yield c
    }
  }
  return { stream: gen(), result: () => ({ digest: `sha256:${h.digest("hex")}` as Digest, size }) }
}
