/**
 * A blob download that survives a broken connection: when the body fails with a transient
 * error (reset, stall, early end), the rest is requested from where it stopped with an HTTP
 * Range request. The consumer keeps its hash state across the seam, since it sees one
 * continuous stream of bytes.
 */
import { Effect, Runtime } from "effect"
import type { Digest } from "../domain/Digest.ts"
import type { SourceBlob } from "./ImageSource.ts"

const transient = new Set(["Unreachable", "Timeout", "ServerError", "TooManyRequests"])

export const isTransient = (e: unknown): boolean => transient.has((e as { code?: string })?.code ?? "")

export interface ResumeOptions {
  readonly attempts: number
  readonly backoffMs: number
  /** told each time the download resumes, with the offset */
  readonly onResume?: (offset: number, cause: unknown) => void
}

export const defaultResume: ResumeOptions = { attempts: 5, backoffMs: 500 }

/**
 * The blob's bytes, `size` of them, fetched through `open(offset)` as many times as needed.
 * Opening the first response happens eagerly so that a registry error surfaces as an Effect
 * failure; later failures surface from the iterator.
 */
export const resumableBlob = <E, R>(
  digest: Digest,
  size: number,
  open: (offset: number) => Effect.Effect<SourceBlob, E, R>,
  opts: ResumeOptions = defaultResume,
): Effect.Effect<AsyncIterable<Uint8Array>, E, R> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<R>()
    const first = yield* open(0)
    const reopen = (offset: number) => Runtime.runPromise(runtime)(open(offset))
    async function* bytes(): AsyncGenerator<Uint8Array, void, undefined> {
      let got = 0
      let body = first.body
      let failures = 0
      for (;;) {
        let cause: unknown = undefined
        try {
          for await (const chunk of body) {
            got += chunk.byteLength
            yield chunk
          }
        } catch (e) {
          if (!isTransient(e)) throw e
          cause = e
        }
        // A clean end at or past the size is the consumer's to judge (it checks size and digest).
        if (cause === undefined && got >= size) return
        if (++failures > opts.attempts) {
          if (cause !== undefined) throw cause
          return // short: the consumer reports the size mismatch
        }
        await new Promise((r) => setTimeout(r, opts.backoffMs * 2 ** (failures - 1)))
        opts.onResume?.(got, cause ?? new Error(`blob ${digest}: the connection closed after ${got} of ${size} bytes`))
        body = (await reopen(got)).body
      }
    }
    return bytes()
  })
