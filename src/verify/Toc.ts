/**
 * TOC digests (the keys newer containers/image clients look layers up by, ALS-PROTOCOL.md §2),
 * verified from the bytes we stream anyway:
 * - zstd:chunked: the annotation `…manifest-checksum` is the digest of the *compressed* TOC,
 *   a byte range of the blob. The range comes from the `…manifest-position` annotation
 *   ("offset:length:uncompressedLength:type"), or, without it, from the footer: the blob's last
 *   64 bytes (the payload of a final skippable frame) hold little-endian u64 offset, compressed
 *   length, uncompressed length, manifest type, tar-split offset/lengths, then "GNUlInUx".
 * - eStargz: the annotation `…stargz/toc.digest` is the digest of the uncompressed TOC JSON,
 *   the content of the tar entry `stargz.index.json`.
 *
 * A TOC digest becomes a name in the store (an alias, a `:ref` view key) only once it was
 * checked here against the blob: while streaming a pull (`verifyToc`), or, for a layer linked
 * from a pool, against the blob file that will be linked (`verifyTocOfFile`). A claim that
 * cannot be checked is not used.
 */
import { createHash, type Hash } from "node:crypto"
import * as fs from "node:fs"
import * as zlib from "node:zlib"
import { digestAlgorithm, isDigest, type Digest } from "../domain/DigestSyntax.ts"
import { TocAnnotation } from "../domain/TocAnnotation.ts"
import { ioFailure, LayerRejected } from "../extract/errors.ts"
import { type TarEntry, TarParser, type TarSink } from "../extract/TarParser.ts"

export const ZSTD_CHUNKED_CHECKSUM = TocAnnotation.zstdChunked
export const ZSTD_CHUNKED_POSITION = TocAnnotation.zstdChunkedPosition
export const ESTARGZ_TOC_DIGEST = TocAnnotation.estargz
export const ESTARGZ_TOC_NAME = "stargz.index.json"

export const ZSTD_CHUNKED_FOOTER_SIZE = 64
const FOOTER_MAGIC = [0x47, 0x4e, 0x55, 0x6c, 0x49, 0x6e, 0x55, 0x78] // "GNUlInUx"

export interface ByteRange {
  readonly offset: number
  readonly length: number
}

export type TocExpectation =
  | { readonly kind: "zstd:chunked"; readonly digest: Digest; readonly range: ByteRange | undefined }
  | { readonly kind: "estargz"; readonly digest: Digest }

const tocRejected = (layer: string, what: string) =>
  new LayerRejected({
    code: "TocDigestMismatch",
    message: `layer ${layer}: ${what}. The manifest's TOC annotation does not describe this blob; ` +
      `the image is inconsistent: rebuild or re-push it, or pull it without the layer store.`,
  })

/** What the annotations promise, or undefined when the layer has no TOC annotation. */
export const tocExpectation = (
  layer: string,
  annotations: Readonly<Record<string, string>>,
): TocExpectation | undefined => {
  const zc = annotations[ZSTD_CHUNKED_CHECKSUM]
  const es = annotations[ESTARGZ_TOC_DIGEST]
  if (zc !== undefined && es !== undefined) {
    // containers/storage refuses such a layer too
    throw tocRejected(layer, "it has both a zstd:chunked and an eStargz TOC annotation")
  }
  if (zc !== undefined) {
    if (!isDigest(zc)) throw tocRejected(layer, `its zstd:chunked TOC digest ${JSON.stringify(zc)} is not a digest`)
    const pos = annotations[ZSTD_CHUNKED_POSITION]
    let range: ByteRange | undefined
    if (pos !== undefined) {
      const m = /^(\d+):(\d+):(\d+):(\d+)$/.exec(pos)
      if (!m) throw tocRejected(layer, `its zstd:chunked manifest position ${JSON.stringify(pos)} is malformed`)
      range = { offset: Number(m[1]), length: Number(m[2]) }
    }
    return { kind: "zstd:chunked", digest: zc, range }
  }
  if (es !== undefined) {
    if (!isDigest(es)) throw tocRejected(layer, `its eStargz TOC digest ${JSON.stringify(es)} is not a digest`)
    return { kind: "estargz", digest: es }
  }
  return undefined
}

/** Parses the zstd:chunked footer (the blob's last 64 bytes); undefined if it is not one. */
export const parseZstdChunkedFooter = (last64: Uint8Array): ByteRange | undefined => {
  if (last64.length !== ZSTD_CHUNKED_FOOTER_SIZE) return undefined
  for (let i = 0; i < 8; i++) if (last64[56 + i] !== FOOTER_MAGIC[i]) return undefined
  const v = new DataView(last64.buffer, last64.byteOffset, last64.byteLength)
  const offset = v.getBigUint64(0, true)
  const length = v.getBigUint64(8, true)
  if (offset > BigInt(Number.MAX_SAFE_INTEGER) || length > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
  return { offset: Number(offset), length: Number(length) }
}

/** Hashes one byte range of a stream as it passes, without holding it. */
export class RangeHasher {
  private readonly hash: Hash
  private covered = 0

  constructor(readonly range: ByteRange, private readonly algorithm: "sha256" | "sha512") {
    this.hash = createHash(algorithm)
  }

  /** `chunk` starts at byte `at` of the stream. */
  feed(at: number, chunk: Uint8Array): void {
    const start = Math.max(this.range.offset, at)
    const end = Math.min(this.range.offset + this.range.length, at + chunk.length)
    if (start >= end) return
    this.hash.update(chunk.subarray(start - at, end - at))
    this.covered += end - start
  }

  /** The digest, or undefined if the stream did not contain the whole range. */
  digest(): Digest | undefined {
    if (this.covered !== this.range.length) return undefined
    return hashed(this.algorithm, this.hash)
  }
}

/** A finished hash as a digest: the one place a computed hex string becomes a Digest. */
export const hashed = (algorithm: "sha256" | "sha512", h: Hash): Digest => `${algorithm}:${h.digest("hex")}` as Digest

/** Hashes a byte range of a file already written (the footer is only known at the end). */
export const hashFileRange = (path: string, range: ByteRange, algorithm: "sha256" | "sha512"): Digest => {
  const h = createHash(algorithm)
  const fd = fs.openSync(path, "r")
  try {
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, range.length)))
    let done = 0
    while (done < range.length) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, range.length - done), range.offset + done)
      if (n === 0) break
      h.update(buf.subarray(0, n))
      done += n
    }
  } finally {
    fs.closeSync(fd)
  }
  return hashed(algorithm, h)
}

/** Checks a streamed layer's TOC against what its annotation promised (LayerIngest). */
export const verifyToc = (
  layer: Digest,
  toc: TocExpectation,
  seen: {
    blobPath: string
    blobSize: number
    tocRange: RangeHasher | undefined
    tail: Uint8Array
    estargz: Digest | undefined
  },
): Digest => {
  const mismatch = (what: string) =>
    new LayerRejected({
      code: "TocDigestMismatch",
      message: `layer ${layer}: ${what}, but its annotation says the TOC digest is ${toc.digest}. ` +
        `The image is inconsistent: rebuild or re-push it, or pull it without the layer store.`,
    })
  let got: Digest | undefined
  if (toc.kind === "estargz") {
    got = seen.estargz
    if (got === undefined) throw mismatch(`the layer has no ${ESTARGZ_TOC_NAME} entry`)
  } else {
    let range = seen.tocRange?.range
    if (range === undefined) {
      range = parseZstdChunkedFooter(seen.tail)
      if (range === undefined) throw mismatch("the blob has no zstd:chunked footer")
    }
    if (range.offset + range.length > seen.blobSize) throw mismatch("the zstd:chunked manifest position lies outside the blob")
    try {
      got = seen.tocRange?.digest() ?? hashFileRange(seen.blobPath, range, digestAlgorithm(toc.digest))
    } catch (e) {
      throw ioFailure(layer, seen.blobPath, "reading back", e)
    }
  }
  if (got !== toc.digest) throw mismatch(`its TOC has digest ${got}`)
  return got
}


/** A TOC digest someone claims for a layer (an annotation, a pool's info), not yet checked. */
export interface TocClaim {
  readonly digest: Digest
  /** where the claim came from, for the log: "annotation", "pool info" */
  readonly from: string
  /** the zstd:chunked manifest position, when an annotation gave one */
  readonly range?: ByteRange | undefined
  /** which format the claim is for; undefined: decided by the blob (zstd → zstd:chunked, gzip → eStargz) */
  readonly kind?: TocExpectation["kind"] | undefined
}

export type TocCheck =
  | { readonly _tag: "Verified"; readonly digest: Digest }
  | { readonly _tag: "Unverified"; readonly reason: string }

/** The eStargz footer: a gzip member whose extra field holds `%016x` TOC offset + "STARGZ". */
export const ESTARGZ_FOOTER_SIZE = 51
/** What the eStargz TOC may decompress to before we stop trying (it lists every file). */
const ESTARGZ_TOC_MAX = 256 << 20

const readRange = (fd: number, offset: number, length: number): Buffer => {
  const buf = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const n = fs.readSync(fd, buf, done, length - done, offset + done)
    if (n === 0) break
    done += n
  }
  return buf.subarray(0, done)
}

/** The TOC offset an eStargz footer names; undefined if `tail` holds none. */
export const parseEstargzFooter = (tail: Uint8Array): number | undefined => {
  const m = /([0-9a-f]{16})STARGZ/.exec(Buffer.from(tail).toString("latin1"))
  if (!m) return undefined
  const off = Number.parseInt(m[1]!, 16)
  return Number.isSafeInteger(off) ? off : undefined
}

/** Hashes the `stargz.index.json` entry of the tar that a gzip stream from the TOC offset holds. */
class TocEntryHash implements TarSink {
  digest: Digest | undefined
  private hash: Hash | undefined
  constructor(private readonly algorithm: "sha256" | "sha512") {}
  entry(e: TarEntry): void {
    this.hash = e.kind === "file" && e.name.replace(/^\.\//, "") === ESTARGZ_TOC_NAME ? createHash(this.algorithm) : undefined
  }
  data(chunk: Uint8Array): void {
    this.hash?.update(chunk)
  }
  end(): void {
    if (this.hash !== undefined && this.digest === undefined) this.digest = hashed(this.algorithm, this.hash)
    this.hash = undefined
  }
}

/**
 * Checks a TOC claim against a blob file already verified (or a pool's blob of the right
 * size): the digest of the zstd:chunked manifest range, or of the eStargz TOC entry found
 * through its footer. Never throws: a claim that cannot be checked is Unverified, with why.
 */
export const verifyTocOfFile = (
  blobPath: string,
  blobSize: number,
  compression: "none" | "gzip" | "zstd",
  claim: TocClaim,
): TocCheck => {
  const alg = digestAlgorithm(claim.digest)
  const kind = claim.kind ?? (compression === "zstd" ? "zstd:chunked" : compression === "gzip" ? "estargz" : undefined)
  if (kind === undefined) return { _tag: "Unverified", reason: "an uncompressed blob has no TOC" }
  let fd: number
  try {
    fd = fs.openSync(blobPath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (e) {
    return { _tag: "Unverified", reason: `the blob cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` }
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return { _tag: "Unverified", reason: "the blob is not a regular file" }
    let got: Digest | undefined
    if (kind === "zstd:chunked") {
      const range = claim.range ??
        (blobSize >= ZSTD_CHUNKED_FOOTER_SIZE
          ? parseZstdChunkedFooter(readRange(fd, blobSize - ZSTD_CHUNKED_FOOTER_SIZE, ZSTD_CHUNKED_FOOTER_SIZE))
          : undefined)
      if (range === undefined) return { _tag: "Unverified", reason: "the blob has no zstd:chunked footer" }
      if (range.offset + range.length > blobSize) return { _tag: "Unverified", reason: "the TOC range lies outside the blob" }
      const h = createHash(alg)
      for (let done = 0; done < range.length;) {
        const part = readRange(fd, range.offset + done, Math.min(1 << 20, range.length - done))
        if (part.length === 0) return { _tag: "Unverified", reason: "the blob is shorter than its size" }
        h.update(part)
        done += part.length
      }
      got = hashed(alg, h)
    } else {
      const tailLen = Math.min(blobSize, ESTARGZ_FOOTER_SIZE)
      const off = parseEstargzFooter(readRange(fd, blobSize - tailLen, tailLen))
      if (off === undefined || off >= blobSize - tailLen + 1) return { _tag: "Unverified", reason: "the blob has no eStargz footer" }
      let tar: Buffer
      try {
        tar = zlib.gunzipSync(readRange(fd, off, blobSize - off), { maxOutputLength: ESTARGZ_TOC_MAX })
      } catch (e) {
        return { _tag: "Unverified", reason: `the eStargz TOC does not decompress (${(e as Error).message})` }
      }
      const sink = new TocEntryHash(alg)
      try {
        new TarParser(sink).push(tar)
      } catch {
        // what follows the TOC entry is the footer; only the entry's digest matters
      }
      got = sink.digest
      if (got === undefined) return { _tag: "Unverified", reason: `the blob has no ${ESTARGZ_TOC_NAME} entry at its footer's offset` }
    }
    return got === claim.digest
      ? { _tag: "Verified", digest: got }
      : { _tag: "Unverified", reason: `the blob's TOC has digest ${got}` }
  } catch (e) {
    return { _tag: "Unverified", reason: `the blob cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` }
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * The TOC claims a layer's annotations make, parsed. A malformed claim (not a digest, both
 * formats at once) is returned apart, to be logged and ignored: outside a pull, an annotation
 * cannot reject a layer, only fail to name it.
 */
export const tocClaimsOf = (
  layer: string,
  annotations: Readonly<Record<string, string>>,
): { readonly claims: ReadonlyArray<TocClaim>; readonly malformed?: { readonly value: string; readonly reason: string } | undefined } => {
  try {
    const t = tocExpectation(layer, annotations)
    if (t === undefined) return { claims: [] }
    return { claims: [{ digest: t.digest, from: "annotation", kind: t.kind, ...(t.kind === "zstd:chunked" ? { range: t.range } : {}) }] }
  } catch (e) {
    const value = annotations[ZSTD_CHUNKED_CHECKSUM] ?? annotations[ESTARGZ_TOC_DIGEST] ?? ""
    return { claims: [], malformed: { value, reason: (e as Error).message } }
  }
}
