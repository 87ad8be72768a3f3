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
 */
import { createHash, type Hash } from "node:crypto"
import * as fs from "node:fs"
import { digestAlgorithm, isDigest, type Digest } from "../domain/Digest.ts"
import { LayerRejected } from "./errors.ts"

export const ZSTD_CHUNKED_CHECKSUM = "io.github.containers.zstd-chunked.manifest-checksum"
export const ZSTD_CHUNKED_POSITION = "io.github.containers.zstd-chunked.manifest-position"
export const ESTARGZ_TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest"
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
    return `${this.algorithm}:${this.hash.digest("hex")}` as Digest
  }
}

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
  return `${algorithm}:${h.digest("hex")}` as Digest
}

export const tocAlgorithm = (d: Digest) => digestAlgorithm(d)
