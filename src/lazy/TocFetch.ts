/**
 * A layer's TOC fetched by range and checked against the TOC digest its annotation claims
 * before anything is built from it (verify/Toc.ts says what each digest covers):
 * - zstd:chunked: the compressed manifest at the annotation's position (or the footer's, the
 *   blob's last 64 bytes), hashed as fetched, then zstd-decompressed to JSON.
 * - eStargz: the footer (last 51 bytes) names the offset of the gzip member holding the tar
 *   entry `stargz.index.json`; that entry's content is what the digest covers.
 */
import { createHash } from "node:crypto"
import * as zlib from "node:zlib"
import { type Digest, digestAlgorithm } from "../domain/Digest.ts"
import { type TarEntry, TarParser, type TarSink } from "../extract/TarParser.ts"
import {
  type ByteRange,
  ESTARGZ_FOOTER_SIZE,
  ESTARGZ_TOC_NAME,
  parseEstargzFooter,
  parseZstdChunkedFooter,
  type TocExpectation,
  ZSTD_CHUNKED_FOOTER_SIZE,
} from "../verify/Toc.ts"
import type { RangeSource } from "./Chunks.ts"
import { parseToc, type TocModel } from "./TocModel.ts"

/** A TOC larger than this (compressed or not) is refused: it would be held in memory. */
export const MAX_TOC_BYTES = 256 << 20

export class TocUnusable extends Error {}

export interface FetchedToc {
  readonly model: TocModel
  readonly digest: Digest
  /** the TOC's JSON bytes (eStargz: the content of the `stargz.index.json` entry) */
  readonly json: Uint8Array
  /** compressed bytes fetched to get it */
  readonly fetchedBytes: number
}

const zstd = zlib as unknown as { zstdDecompressSync?: (b: Uint8Array, o?: zlib.ZlibOptions) => Buffer }

const digestOf = (d: Digest, bytes: Uint8Array): Digest =>
  `${digestAlgorithm(d)}:${createHash(digestAlgorithm(d)).update(bytes).digest("hex")}` as Digest

const exact = async (src: RangeSource, r: ByteRange, what: string): Promise<Uint8Array> => {
  const b = await src.read(r.offset, r.length)
  if (b.length !== r.length) throw new TocUnusable(`${what}: got ${b.length} of ${r.length} bytes`)
  return b
}

class TocEntry implements TarSink {
  parts: Uint8Array[] = []
  size = 0
  found: TarEntry | undefined
  private on = false
  entry(e: TarEntry): void {
    this.on = !this.found && e.kind === "file" && e.name.replace(/^\.\//, "") === ESTARGZ_TOC_NAME
    if (this.on) this.found = e
  }
  data(chunk: Uint8Array): void {
    if (!this.on) return
    this.size += chunk.length
    if (this.size > MAX_TOC_BYTES) throw new TocUnusable(`the eStargz TOC is larger than ${MAX_TOC_BYTES} bytes`)
    this.parts.push(chunk.slice())
  }
  end(): void {
    this.on = false
  }
}

export const ZSTD_CHUNKED_TARSPLIT_POSITION = "io.github.containers.zstd-chunked.tarsplit-position"

/** The tar-split range an annotation gives ("offset:length:uncompressedLength"), if well-formed. */
export const tarSplitRange = (annotations: Readonly<Record<string, string>>): ByteRange | undefined => {
  const m = /^(\d{1,15}):(\d{1,15}):(\d{1,15})$/.exec(annotations[ZSTD_CHUNKED_TARSPLIT_POSITION] ?? "")
  return m ? { offset: Number(m[1]), length: Number(m[2]) } : undefined
}

/**
 * The uncompressed tar's size (the layer's diff-size, which podman 4 needs) from zstd:chunked's
 * tar-split: JSON lines, type 1 a file's payload of `size` bytes, type 2 raw tar bytes
 * (`payload`, base64). The compressed bytes are checked against the TOC's tarSplitDigest
 * first; undefined when there is nothing to check them against.
 */
export const fetchTarSize = async (src: RangeSource, blobSize: number, model: TocModel, range: ByteRange | undefined): Promise<number | undefined> => {
  const want = model.tarSplitDigest
  if (!want || !range || range.length === 0 || range.length > MAX_TOC_BYTES || range.offset + range.length > blobSize) return undefined
  const compressed = await exact(src, range, "the tar-split")
  if (digestOf(want, compressed) !== want) throw new TocUnusable(`the tar-split has digest ${digestOf(want, compressed)}, the TOC says ${want}`)
  if (!zstd.zstdDecompressSync) return undefined
  const text = zstd.zstdDecompressSync(compressed, { maxOutputLength: MAX_TOC_BYTES }).toString("utf8")
  let size = 0
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue
    const j = JSON.parse(line) as { type?: unknown; size?: unknown; payload?: unknown }
    if (j.type === 1) {
      if (j.size === undefined) continue
      if (typeof j.size !== "number" || !Number.isSafeInteger(j.size) || j.size < 0) throw new TocUnusable("the tar-split has a malformed size")
      size += j.size
    } else if (j.type === 2) {
      if (j.payload === undefined || j.payload === null) continue
      if (typeof j.payload !== "string") throw new TocUnusable("the tar-split has a malformed payload")
      size += Buffer.byteLength(j.payload, "base64")
    } else throw new TocUnusable(`the tar-split has an entry of type ${JSON.stringify(j.type)}`)
  }
  return size
}

/** Fetches, verifies and parses the TOC the expectation names; throws TocUnusable / TocInvalid. */
export const fetchToc = async (src: RangeSource, blobSize: number, toc: TocExpectation): Promise<FetchedToc> => {
  if (toc.kind === "zstd:chunked") {
    let range = toc.range
    let fetched = 0
    if (range === undefined) {
      if (blobSize < ZSTD_CHUNKED_FOOTER_SIZE) throw new TocUnusable("the blob is too small for a zstd:chunked footer")
      const tail = await exact(src, { offset: blobSize - ZSTD_CHUNKED_FOOTER_SIZE, length: ZSTD_CHUNKED_FOOTER_SIZE }, "the footer")
      fetched += tail.length
      range = parseZstdChunkedFooter(tail)
      if (range === undefined) throw new TocUnusable("the blob has no zstd:chunked footer")
    }
    if (range.length > MAX_TOC_BYTES || range.offset + range.length > blobSize || range.length === 0) {
      throw new TocUnusable(`the TOC range ${range.offset}+${range.length} does not fit the blob (${blobSize} bytes)`)
    }
    const compressed = await exact(src, range, "the TOC")
    fetched += compressed.length
    const got = digestOf(toc.digest, compressed)
    if (got !== toc.digest) throw new TocUnusable(`the TOC has digest ${got}, the annotation says ${toc.digest}`)
    if (!zstd.zstdDecompressSync) throw new TocUnusable("this runtime has no zstd decoder")
    let json: Buffer
    try {
      json = zstd.zstdDecompressSync(compressed, { maxOutputLength: MAX_TOC_BYTES })
    } catch (e) {
      throw new TocUnusable(`the TOC does not decompress (${(e as Error).message})`)
    }
    return { model: parseToc("zstd:chunked", json.toString("utf8"), blobSize, range.offset), digest: got, json, fetchedBytes: fetched }
  }
  const tailLen = Math.min(blobSize, ESTARGZ_FOOTER_SIZE)
  const tail = await exact(src, { offset: blobSize - tailLen, length: tailLen }, "the footer")
  const off = parseEstargzFooter(tail)
  if (off === undefined || off >= blobSize - tailLen) throw new TocUnusable("the blob has no eStargz footer")
  if (blobSize - off > MAX_TOC_BYTES) throw new TocUnusable(`the eStargz TOC is larger than ${MAX_TOC_BYTES} bytes`)
  const member = await exact(src, { offset: off, length: blobSize - tailLen - off }, "the TOC")
  let tar: Buffer
  try {
    tar = zlib.gunzipSync(member, { maxOutputLength: MAX_TOC_BYTES + 4096 })
  } catch (e) {
    throw new TocUnusable(`the eStargz TOC does not decompress (${(e as Error).message})`)
  }
  const sink = new TocEntry()
  try {
    new TarParser(sink).push(tar)
  } catch (e) {
    if (e instanceof TocUnusable) throw e
    // the end of the TOC's member is not the end of the tar: what matters is the entry
  }
  if (!sink.found) throw new TocUnusable(`the blob has no ${ESTARGZ_TOC_NAME} entry at its footer's offset`)
  const json = Buffer.concat(sink.parts)
  const got = digestOf(toc.digest, json)
  if (got !== toc.digest) throw new TocUnusable(`the TOC has digest ${got}, the annotation says ${toc.digest}`)
  const model = parseToc("estargz", json.toString("utf8"), blobSize, off)
  // the TOC is a file of the layer too: `als pull` extracts it like any other
  const t = sink.found
  model.root.children.set(ESTARGZ_TOC_NAME, {
    kind: "file",
    size: json.length,
    digest: got,
    chunks: [],
    id: model.files.length,
    nlink: 1,
    inline: new Uint8Array(json),
    mode: t.mode,
    uid: t.uid,
    gid: t.gid,
    mtime: Math.floor(t.mtime),
    xattrs: [],
  })
  return { model, digest: got, json, fetchedBytes: tail.length + member.length }
}
