/**
 * The first part of a lazily served layer's background completion: the files of its prefetch
 * list (TocModel's `prefetch`, eStargz's landmark) fetched into the chunk cache, chunk by chunk
 * in TOC order, one request at a time so that a container's own reads are not queued behind
 * a burst. The whole-layer pull runs after it. A chunk that fails is skipped (a read of it
 * will fetch it again and report it); `stop` ends the walk early.
 */
import type { ChunkReader } from "./Chunks.ts"
import type { TocFile } from "./TocModel.ts"

export interface PrefetchResult {
  /** chunks read (fetched, or already in the cache) */
  readonly chunks: number
  /** chunks that could not be read */
  readonly failed: number
}

export const prefetchFiles = async (
  reader: ChunkReader,
  files: ReadonlyArray<TocFile>,
  stop: () => boolean = () => false,
): Promise<PrefetchResult> => {
  let chunks = 0
  let failed = 0
  for (const file of files) {
    for (const c of file.chunks) {
      if (stop()) return { chunks, failed }
      try {
        await reader.read(file, c.fileOffset, c.size)
        chunks++
      } catch {
        failed++
      }
    }
  }
  return { chunks, failed }
}
