/**
 * A blob download that survives a broken connection: when the body fails with a transient
 * error (reset, stall, early end), the rest is requested from where it stopped with an HTTP
 * Range request. The consumer keeps its hash state across the seam, since it sees one
 * continuous stream of bytes.
 */
import { Cause, Effect, Exit, Runtime } from "effect"
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
    // the blob's true length when the server said it: a clean end there is the real end
    const known = first.size
    const reopen = async (offset: number) => {
      const exit = await Runtime.runPromiseExit(runtime)(open(offset))
      if (Exit.isSuccess(exit)) return exit.value
      throw Cause.squash(exit.cause) // the typed error itself, not a FiberFailure wrapper
    }
    async function* bytes(): AsyncGenerator<Uint8Array, void, undefined> {
      let got = 0
      let body: AsyncIterable<Uint8Array> | undefined = first.body
      let failures = 0
      for (;;) {
        // the latest transient failure: a broken body, or a failed attempt to reopen it
        let cause: unknown = undefined
        if (body !== undefined) {
          try {
            for await (const chunk of body) {
              got += chunk.byteLength
              yield chunk
            }
          } catch (e) {
            if (!isTransient(e)) throw e
            cause = e
          }
          // A clean end at the size, or at the length the server announced, is the consumer's
          // to judge (it checks size and digest): a manifest may simply state the wrong size.
          if (cause === undefined && (got >= size || (known !== undefined && got >= known))) return
        }
        if (++failures > opts.attempts) {
          if (cause !== undefined) throw cause
          return // short: the consumer reports the size mismatch
        }
        await new Promise((r) => setTimeout(r, opts.backoffMs * 2 ** (failures - 1)))
        opts.onResume?.(got, cause ?? new Error(`blob ${digest}: the connection closed after ${got} of ${size} bytes`))
        try {
          body = (await reopen(got)).body
        } catch (e) {
          // the registry's answer to the retry is the news now (e.g. it answers 500s)
          if (!isTransient(e)) {
            if (cause === undefined) return // short, and no more to be had: a size mismatch
            throw e
          }
          body = undefined
          if (failures >= opts.attempts) throw e
        }
      }
    }
    return bytes()
  })
