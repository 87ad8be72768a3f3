/**
 * A regular file's bytes, chunk by chunk, from wherever the blob's bytes come from (a
 * `RangeSource`: the registry by Range requests, or a local file): only the chunks a read
 * touches are fetched; each is decompressed and checked against its TOC digest before a byte
 * of it is returned, and kept in a content-addressed cache on disk (named by that digest,
 * checked again when read back: the cache is a file like any other, not trusted).
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { type Digest, digestAlgorithm, digestHex } from "../domain/Digest.ts"
import type { TocChunk, TocFile, TocFormat } from "./TocModel.ts"

/** Bytes [offset, offset+length) of the blob; may return fewer only at the blob's end. */
export interface RangeSource {
  readonly read: (offset: number, length: number) => Promise<Uint8Array>
}

/** A chunk whose bytes are not what the TOC says: never served. */
export class ChunkCorrupt extends Error {
  constructor(readonly chunk: TocChunk, readonly detail: string) {
    super(`the chunk at blob offset ${chunk.blobOffset} (file bytes ${chunk.fileOffset}..${chunk.fileOffset + chunk.size}) ${detail}`)
  }
}

const zstd = zlib as unknown as { zstdDecompressSync?: (b: Uint8Array, o?: zlib.ZlibOptions) => Buffer }

/**
 * The output of the first gzip member of `bytes`, at most `max` bytes (what follows the member,
 * further members included, is ignored): the header parsed (RFC 1952), the deflate stream
 * inflated up to its end.
 */
export const gunzipFirstMember = (bytes: Uint8Array, max: number): Buffer => {
  if (bytes.length < 18 || bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8) throw new Error("not a gzip member")
  const flg = bytes[3]!
  let at = 10
  if (flg & 4) at += 2 + (bytes[10]! | (bytes[11]! << 8))
  for (const bit of [8, 16]) {
    if (flg & bit) {
      while (at < bytes.length && bytes[at] !== 0) at++
      at++
    }
  }
  if (flg & 2) at += 2
  if (at >= bytes.length) throw new Error("a gzip header without data")
  return zlib.inflateRawSync(bytes.subarray(at), { maxOutputLength: Math.max(1, max), finishFlush: zlib.constants.Z_SYNC_FLUSH })
}

/** The chunk's uncompressed bytes from its compressed range, checked; throws ChunkCorrupt. */
export const decodeChunk = (format: TocFormat, chunk: TocChunk, compressed: Uint8Array): Uint8Array => {
  let out: Buffer
  try {
    if (format === "zstd:chunked") {
      if (!zstd.zstdDecompressSync) throw new Error("this runtime has no zstd decoder")
      out = zstd.zstdDecompressSync(compressed, { maxOutputLength: chunk.size + 1 })
    } else {
      // the gzip member starting at the chunk's offset: the chunk lies at innerOffset of its output
      out = gunzipFirstMember(compressed, chunk.innerOffset + chunk.size + (4 << 20))
      out = out.subarray(chunk.innerOffset, chunk.innerOffset + chunk.size)
    }
  } catch (e) {
    throw new ChunkCorrupt(chunk, `does not decompress (${(e as Error).message})`)
  }
  if (format === "zstd:chunked" && out.length !== chunk.size) throw new ChunkCorrupt(chunk, `decompresses to ${out.length} bytes, the TOC says ${chunk.size}`)
  if (out.length !== chunk.size) throw new ChunkCorrupt(chunk, `holds ${out.length} bytes, the TOC says ${chunk.size}`)
  const got = createHash(digestAlgorithm(chunk.digest)).update(out).digest("hex")
  if (got !== digestHex(chunk.digest)) throw new ChunkCorrupt(chunk, `has digest ${digestAlgorithm(chunk.digest)}:${got}, the TOC says ${chunk.digest}`)
  return out
}

export interface ChunkStats {
  /** chunks fetched from the source, and their compressed bytes */
  fetched: number
  fetchedBytes: number
  /** chunks answered from the cache */
  cached: number
}

export interface ChunkReader {
  /** up to `length` bytes of `file` from `offset` (fewer at its end) */
  readonly read: (file: TocFile, offset: number, length: number) => Promise<Uint8Array>
  readonly stats: ChunkStats
}

/**
 * Reads files of one layer. `cacheDir` holds verified chunks by digest (made 0700); chunks
 * fetched at the same time for the same digest share one fetch.
 */
export const makeChunkReader = (format: TocFormat, source: RangeSource, cacheDir: string): ChunkReader => {
  fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 })
  const stats: ChunkStats = { fetched: 0, fetchedBytes: 0, cached: 0 }
  const inflight = new Map<string, Promise<Uint8Array>>()

  const cachePath = (d: Digest) => path.join(cacheDir, `${digestAlgorithm(d)}-${digestHex(d)}`)

  const fromCache = (chunk: TocChunk): Uint8Array | undefined => {
    let bytes: Buffer
    try {
      bytes = fs.readFileSync(cachePath(chunk.digest))
    } catch {
      return undefined
    }
    const ok = bytes.length === chunk.size &&
      createHash(digestAlgorithm(chunk.digest)).update(bytes).digest("hex") === digestHex(chunk.digest)
    if (!ok) {
      fs.rmSync(cachePath(chunk.digest), { force: true }) // damaged: fetch it again
      return undefined
    }
    return bytes
  }

  const toCache = (chunk: TocChunk, bytes: Uint8Array) => {
    const final = cachePath(chunk.digest)
    const tmp = `${final}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
    try {
      fs.writeFileSync(tmp, bytes, { mode: 0o600 })
      fs.renameSync(tmp, final)
    } catch {
      fs.rmSync(tmp, { force: true }) // a full disk costs the cache, not the read
    }
  }

  const chunkBytes = (chunk: TocChunk): Promise<Uint8Array> => {
    if (chunk.zeros) return Promise.resolve(new Uint8Array(chunk.size))
    const hit = fromCache(chunk)
    if (hit) {
      stats.cached++
      return Promise.resolve(hit)
    }
    const key = chunk.digest
    const running = inflight.get(key)
    if (running) return running
    const p = (async () => {
      const compressed = await source.read(chunk.blobOffset, chunk.blobEnd - chunk.blobOffset)
      stats.fetched++
      stats.fetchedBytes += compressed.length
      const bytes = decodeChunk(format, chunk, compressed)
      toCache(chunk, bytes)
      return bytes
    })()
    inflight.set(key, p)
    const done = () => inflight.delete(key)
    p.then(done, done)
    return p
  }

  const read = async (file: TocFile, offset: number, length: number): Promise<Uint8Array> => {
    const end = Math.min(file.size, offset + length)
    if (offset >= end) return new Uint8Array(0)
    if (file.inline) return file.inline.slice(offset, end)
    const wanted = file.chunks.filter((c) => c.fileOffset < end && c.fileOffset + c.size > offset)
    const parts = await Promise.all(wanted.map(chunkBytes))
    const out = new Uint8Array(end - offset)
    wanted.forEach((c, i) => {
      const from = Math.max(offset, c.fileOffset)
      const to = Math.min(end, c.fileOffset + c.size)
      out.set(parts[i]!.subarray(from - c.fileOffset, to - c.fileOffset), from - offset)
    })
    return out
  }

  return { read, stats }
}

/** A local blob file as a RangeSource (a pool's blob, tests). */
export const fileRangeSource = (file: string): RangeSource => ({
  read: async (offset, length) => {
    const fh = await fs.promises.open(file, "r")
    try {
      const buf = Buffer.alloc(length)
      let done = 0
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
      return buf.subarray(0, done)
    } finally {
      await fh.close()
    }
  },
})
