/**
 * A regular file's bytes, chunk by chunk, from wherever the blob's bytes come from (a
 * `RangeSource`: the registry by Range requests, or a local file): only the chunks a read
 * touches are fetched; each is decompressed and checked against its TOC digest before a byte
 * of it is returned, and kept in a content-addressed cache on disk (named by that digest,
 * checked again when read back: the cache is a file like any other, not trusted).
 *
 * A file all of whose chunks are in the cache is complete: its bytes are then written once,
 * from chunks read back and checked again, to a file of its own under `files/` (named by the
 * file's index in the TOC, never by a name from the TOC), renamed into place and never opened
 * for writing again, so FUSE passthrough can hand it to the kernel (LazyFs.ts). Copies left by
 * an earlier process are removed, not reused: only what this process wrote is served.
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
  /**
   * The on-disk copy of a complete file (exactly its checked bytes), once written; a promise
   * while it is being written; undefined while a chunk of it is missing.
   */
  readonly complete: (file: TocFile) => string | Promise<string | undefined> | undefined
  /** the copies of complete files go (the layer is committed: its tree serves them now) */
  readonly dropCopies: () => void
}

export interface ChunkReaderOptions {
  /** told the compressed bytes of every chunk fetched and checked, at their blob offset */
  readonly keep?: (blobOffset: number, compressed: Uint8Array) => void
}

/**
 * Reads files of one layer. `cacheDir` holds verified chunks by digest (made 0700); chunks
 * fetched at the same time for the same digest share one fetch.
 */
export const makeChunkReader = (format: TocFormat, source: RangeSource, cacheDir: string, opts: ChunkReaderOptions = {}): ChunkReader => {
  fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 })
  const filesDir = path.join(cacheDir, "files")
  fs.rmSync(filesDir, { recursive: true, force: true })
  const stats: ChunkStats = { fetched: 0, fetchedBytes: 0, cached: 0 }
  const inflight = new Map<string, Promise<Uint8Array>>()
  /** digests of chunks in the cache, as far as this process knows (a copy checks them again) */
  const present = new Set<string>()
  /** per file: its first chunks known present, so a check walks each chunk once */
  const progress = new WeakMap<TocFile, number>()
  const copies = new Map<TocFile, string>()
  const copying = new Map<TocFile, Promise<string | undefined>>()
  let dropped = false

  const cachePath = (d: Digest) => path.join(cacheDir, `${digestAlgorithm(d)}-${digestHex(d)}`)

  const fromCache = (chunk: TocChunk): Uint8Array | undefined => {
    let bytes: Buffer
    try {
      bytes = fs.readFileSync(cachePath(chunk.digest))
    } catch {
      present.delete(chunk.digest)
      return undefined
    }
    const ok = bytes.length === chunk.size &&
      createHash(digestAlgorithm(chunk.digest)).update(bytes).digest("hex") === digestHex(chunk.digest)
    if (!ok) {
      fs.rmSync(cachePath(chunk.digest), { force: true }) // damaged: fetch it again
      present.delete(chunk.digest)
      return undefined
    }
    present.add(chunk.digest)
    return bytes
  }

  const toCache = (chunk: TocChunk, bytes: Uint8Array) => {
    const final = cachePath(chunk.digest)
    const tmp = `${final}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
    try {
      fs.writeFileSync(tmp, bytes, { mode: 0o600 })
      fs.renameSync(tmp, final)
      present.add(chunk.digest)
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
      opts.keep?.(chunk.blobOffset, compressed)
      return bytes
    })()
    inflight.set(key, p)
    const done = () => inflight.delete(key)
    p.then(done, done)
    return p
  }

  // a chunk cached by an earlier process counts once its file is there (the copy checks it)
  const inCache = (c: TocChunk) => c.zeros || present.has(c.digest) || fs.existsSync(cachePath(c.digest))
  const allPresent = (file: TocFile): boolean => {
    let i = progress.get(file) ?? 0
    while (i < file.chunks.length && inCache(file.chunks[i]!)) i++
    progress.set(file, i)
    return i === file.chunks.length
  }

  /** Writes the file's copy from its chunks, each read back from the cache and checked again. */
  const writeCopy = async (file: TocFile): Promise<string | undefined> => {
    const final = path.join(filesDir, String(file.id))
    const tmp = `${final}.${Math.random().toString(36).slice(2)}.tmp`
    let fh: fs.promises.FileHandle | undefined
    try {
      fs.mkdirSync(filesDir, { recursive: true, mode: 0o700 })
      fh = await fs.promises.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o400)
      for (const c of file.chunks) {
        if (c.zeros) continue // a hole: the truncate below leaves it zeros
        const bytes = fromCache(c)
        if (!bytes) {
          progress.delete(file) // gone from the cache since: a later read fetches it again
          throw new Error("a chunk left the cache")
        }
        let done = 0
        while (done < bytes.length) done += (await fh.write(bytes, done, bytes.length - done, c.fileOffset + done)).bytesWritten
      }
      await fh.truncate(file.size)
      await fh.close()
      fh = undefined
      if (dropped) throw new Error("the layer is complete")
      fs.renameSync(tmp, final)
      copies.set(file, final)
      return final
    } catch {
      await fh?.close().catch(() => undefined)
      fs.rmSync(tmp, { force: true })
      return undefined
    }
  }

  const noteComplete = (file: TocFile) => {
    if (dropped || file.size === 0 || file.inline || copies.has(file) || copying.has(file) || !allPresent(file)) return
    const p = writeCopy(file)
    copying.set(file, p)
    const done = () => copying.delete(file)
    p.then(done, done)
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
    noteComplete(file)
    return out
  }

  const complete: ChunkReader["complete"] = (file) => {
    if (dropped) return undefined
    return copies.get(file) ?? copying.get(file)
  }

  const dropCopies = () => {
    dropped = true
    copies.clear()
    // open passthrough files keep their inodes: removing the names takes nothing from them
    fs.rmSync(filesDir, { recursive: true, force: true })
  }

  return { read, stats, complete, dropCopies }
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
