/**
 * The compressed bytes of a lazily served layer's blob fetched so far (its TOC, the chunks
 * reads and the prefetch list asked for), kept at their offsets in a sparse file, so that the
 * background completion fetches only the rest. `completionSource` is the image source the
 * ordinary pull runs on for that layer: its blob is a stream of the whole blob, the held
 * ranges read from the file, the missing ones fetched from the real source with bounded Range
 * requests (FetchedRanges.ts says which). The pull checks what it gets as always: the blob's
 * digest over every byte (so a held byte that differs from the registry's fails the pull, and
 * LazySupply then pulls the whole blob again), then the DiffID of the tar it extracts.
 *
 * The file is ours (under the store's cache, 0600, created afresh): nothing from outside names
 * it, and what it holds is checked by that digest, never trusted.
 */
import { Cause, Effect, Exit, Runtime } from "effect"
import * as fs from "node:fs"
import type { Digest } from "../domain/Digest.ts"
import type { ImageSource, SourceBlob } from "../workflows/ImageSource.ts"
import { FetchedRanges, type StepOptions } from "./FetchedRanges.ts"

/** Bytes held and fetched by a completion stream. */
export interface CompletionStats {
  /** bytes read back from the file */
  reused: number
  /** bytes fetched from the source, and the requests that fetched them */
  fetched: number
  requests: number
}

export interface PartialBlob {
  readonly path: string
  readonly size: number
  readonly ranges: FetchedRanges
  readonly stats: CompletionStats
  /** keeps `bytes` as the blob's bytes from `offset` (a failed write keeps nothing: they are fetched again) */
  readonly keep: (offset: number, bytes: Uint8Array) => void
  /** `source` for the pull of this blob; other digests pass through */
  readonly completionSource: (source: ImageSource) => ImageSource
  /** closes and removes the file */
  readonly remove: () => void
}

/** A registry round trip costs more than this many bytes fetched again (see FetchedRanges). */
export const DEFAULT_STEP: StepOptions = { mergeBelow: 64 << 10, maxRequest: 16 << 20 }
/** held bytes are read back in pieces of this size */
const READ_PIECE = 1 << 20

export const makePartialBlob = (
  file: string,
  digest: Digest,
  size: number,
  opts: { readonly step?: StepOptions; readonly timeoutMs?: number } = {},
): PartialBlob => {
  const step = opts.step ?? DEFAULT_STEP
  fs.rmSync(file, { force: true })
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
  let open = true
  const ranges = new FetchedRanges()
  const stats: CompletionStats = { reused: 0, fetched: 0, requests: 0 }

  const keep = (offset: number, bytes: Uint8Array) => {
    if (!open || bytes.length === 0 || offset < 0 || offset + bytes.length > size) return
    try {
      let done = 0
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, offset + done)
      ranges.add(offset, offset + bytes.length)
    } catch {
      // a full disk costs a refetch at completion, not the read
    }
  }

  /** exactly `length` held bytes from `offset`, or undefined (the file changed under us: fetch them) */
  const readHeld = (offset: number, length: number): Uint8Array | undefined => {
    const buf = Buffer.allocUnsafe(length)
    let done = 0
    while (done < length) {
      const n = fs.readSync(fd, buf, done, length - done, offset + done)
      if (n === 0) return undefined
      done += n
    }
    return buf
  }

  const completionSource = (source: ImageSource): ImageSource => ({
    ...source,
    blob: (d, o) => {
      if (d !== digest || !open || o?.length !== undefined) return source.blob(d, o)
      return Effect.gen(function*() {
        const runtime = yield* Effect.runtime<never>()
        // the source's own error, not a FiberFailure around it: the pull's resume logic reads its code
        const fetch = async (offset: number, length: number): Promise<SourceBlob> => {
          const exit = await Runtime.runPromiseExit(runtime)(source.blob(digest, { offset, length }))
          if (Exit.isSuccess(exit)) return exit.value
          throw Cause.squash(exit.cause)
        }
        const from = Math.max(0, Math.floor(o?.offset ?? 0))
        async function* body(): AsyncGenerator<Uint8Array, void, undefined> {
          let pos = from
          while (pos < size) {
            const next = ranges.nextStep(pos, size, step)
            if (next.kind === "held" && open) {
              const n = Math.min(next.end - pos, READ_PIECE)
              const bytes = readHeld(pos, n)
              if (bytes !== undefined) {
                stats.reused += n
                pos += n
                yield bytes
                continue
              }
            }
            const end = next.kind === "fetch" ? next.end : Math.min(size, pos + step.maxRequest)
            const answer = await fetch(pos, end - pos)
            stats.requests++
            let got = 0
            const it = answer.body[Symbol.asyncIterator]()
            try {
              for (;;) {
                const r = await it.next()
                if (r.done) break
                const piece = r.value.subarray(0, end - pos)
                got += piece.length
                stats.fetched += piece.length
                pos += piece.length
                if (piece.length > 0) yield piece
                if (pos >= end) break
              }
            } finally {
              await it.return?.()
            }
            // a short answer: the stream ends here and the pull resumes from where it stopped
            if (pos < end || got === 0) return
          }
        }
        return { size, body: body(), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) } satisfies SourceBlob
      })
    },
  })

  const remove = () => {
    if (!open) return
    open = false
    try {
      fs.closeSync(fd)
    } catch {
      // already closed
    }
    fs.rmSync(file, { force: true })
  }

  return { path: file, size, ranges, stats, keep, completionSource, remove }
}
