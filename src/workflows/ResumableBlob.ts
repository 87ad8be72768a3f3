/**
 * A blob download that survives a broken connection: when the body fails with a transient
 * error (reset, stall, early end), the rest is requested from where it stopped with an HTTP
 * Range request. The consumer keeps its hash state across the seam, since it sees one
 * continuous stream of bytes.
 *
 * The resumes are bounded twice: by a number of attempts, and in time. From the first break
 * on, the rest of the blob must arrive within `--timeout` plus one second per 64 KiB still
 * missing (RESUME_MIN_BYTES_PER_SECOND); the backoffs, the reopening requests and every later
 * attempt count against that one deadline, so a registry that sends a few bytes and resets,
 * again and again, cannot keep a pull alive past it (each attempt's own stall window would
 * otherwise start afresh).
 */
import { Cause, Effect, Exit, Runtime } from "effect"
import type { Digest } from "../domain/Digest.ts"
import { RegistryError } from "../registry/RegistryError.ts"
import type { SourceBlob } from "./ImageSource.ts"

const transient = new Set(["Unreachable", "Timeout", "ServerError", "TooManyRequests"])

export const isTransient = (e: unknown): boolean => transient.has((e as { code?: string })?.code ?? "")

export interface ResumeOptions {
  readonly attempts: number
  readonly backoffMs: number
  /** the --timeout the resumes share when the source does not say its own (SourceBlob.timeoutMs) */
  readonly timeoutMs: number
  /** told each time the download resumes, with the offset */
  readonly onResume?: (offset: number, cause: unknown) => void
}

/** The registry client's default --timeout for a download (RegistryConfig.stallTimeoutMs). */
export const defaultResume: ResumeOptions = { attempts: 5, backoffMs: 500, timeoutMs: 60_000 }

/** After a break, the rest of a blob must come at least this fast on average, on top of --timeout. */
export const RESUME_MIN_BYTES_PER_SECOND = 64 * 1024

/** How long the resumes of a blob may take, from the first break, with `missing` bytes to go. */
export const resumeBudgetMs = (timeoutMs: number, missing: number): number =>
  timeoutMs + Math.ceil((Math.max(0, missing) * 1000) / RESUME_MIN_BYTES_PER_SECOND)

/** The deadline passed while waiting: what was pending is abandoned. */
const PAST = Symbol("past the resume deadline")

/** `p`, or PAST once `deadline` (epoch ms) has come. A later rejection of `p` is swallowed. */
const before = <A>(p: Promise<A>, deadline: number): Promise<A | typeof PAST> => {
  p.catch(() => undefined)
  let timer: ReturnType<typeof setTimeout> | undefined
  const past = new Promise<typeof PAST>((resolve) => {
    timer = setTimeout(() => resolve(PAST), Math.max(0, deadline - Date.now()))
  })
  return Promise.race([p, past]).finally(() => clearTimeout(timer))
}

const refOf = (cause: unknown, digest: Digest): string => {
  const ref = (cause as { ref?: unknown })?.ref
  return typeof ref === "string" && ref !== "" ? ref : digest
}

/** Errors made here, passed on as they are (not taken for another transient break). */
const ours = new WeakSet<object>()

/** The resumes ran out of time: a Timeout (exit 3) saying what came and what bound was hit. */
const pastDeadline = (
  digest: Digest,
  size: number,
  got: number,
  resumes: number,
  budgetMs: number,
  timeoutMs: number,
  cause: unknown,
  last: unknown,
) => {
  const ref = refOf(cause, digest)
  // what the latest break was (a stall, a reset …), without the ref the message starts with
  const lastText = (last as Error | undefined)?.message?.replace(`${refOf(last, digest)}: `, "")
  const e = new RegistryError({
    code: "Timeout",
    ref,
    message: `${ref}: blob ${digest}: the download kept breaking (${resumes} ${resumes === 1 ? "resume" : "resumes"}, ${got} of ${size} bytes); ` +
      `the rest did not arrive within ${Math.round(budgetMs / 1000)} s of the first break (--timeout ${Math.round(timeoutMs / 1000)} s plus 1 s per 64 KiB missing); ` +
      `try again later, or raise --timeout${lastText ? ` (the last break: ${lastText})` : ""}`,
  })
  ours.add(e)
  return e
}

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
    const timeoutMs = first.timeoutMs ?? opts.timeoutMs
    const reopen = async (offset: number) => {
      const exit = await Runtime.runPromiseExit(runtime)(open(offset))
      if (Exit.isSuccess(exit)) return exit.value
      throw Cause.squash(exit.cause) // the typed error itself, not a FiberFailure wrapper
    }
    async function* bytes(): AsyncGenerator<Uint8Array, void, undefined> {
      let got = 0
      let body: AsyncIterable<Uint8Array> | undefined = first.body
      let failures = 0
      // set at the first break: when the resumes must be done (epoch ms), and how long that was
      let deadline: number | undefined
      let budgetMs = 0
      // the first break's error names the registry's ref for the message
      let firstCause: unknown = undefined
      let lastCause: unknown = undefined
      const expired = () => pastDeadline(digest, size, got, failures, budgetMs, timeoutMs, firstCause, lastCause)
      for (;;) {
        // the latest transient failure: a broken body, or a failed attempt to reopen it
        let cause: unknown = undefined
        if (body !== undefined) {
          const it: AsyncIterator<Uint8Array> = body[Symbol.asyncIterator]()
          let reading = true
          try {
            for (;;) {
              const step: IteratorResult<Uint8Array> | typeof PAST = deadline === undefined ? await it.next() : await before(it.next(), deadline)
              if (step === PAST) {
                // the pending read is left to its own stall bound; closing queues behind it
                it.return?.()?.catch(() => undefined)
                reading = false
                throw expired()
              }
              if (step.done) {
                reading = false
                break
              }
              got += step.value.byteLength
              yield step.value
            }
          } catch (e) {
            reading = false
            if (!isTransient(e) || ours.has(e as object)) throw e
            cause = e
          } finally {
            // the consumer stopped early: free the connection
            if (reading) await it.return?.()
          }
          // A clean end at the size, or at the length the server announced, is the consumer's
          // to judge (it checks size and digest): a manifest may simply state the wrong size.
          if (cause === undefined && (got >= size || (known !== undefined && got >= known))) return
        }
        firstCause ??= cause
        if (cause !== undefined) lastCause = cause
        if (deadline === undefined) {
          budgetMs = resumeBudgetMs(timeoutMs, size - got)
          deadline = Date.now() + budgetMs
        }
        if (++failures > opts.attempts) {
          if (cause !== undefined) throw cause
          return // short: the consumer reports the size mismatch
        }
        const backoff = opts.backoffMs * 2 ** (failures - 1)
        if (Date.now() + backoff >= deadline) throw expired()
        await new Promise((r) => setTimeout(r, backoff))
        opts.onResume?.(got, cause ?? new Error(`blob ${digest}: the connection closed after ${got} of ${size} bytes`))
        try {
          const reopening = reopen(got)
          const answer = await before(reopening, deadline)
          if (answer === PAST) {
            // an answer that comes after all is closed (a body's reader is freed once it has
            // started), so that a long-lived process (als serve) keeps no connection open
            reopening.then((late) => {
              const it = late.body[Symbol.asyncIterator]()
              it.next().then(() => it.return?.(), () => undefined).catch(() => undefined)
            }, () => undefined)
            throw expired()
          }
          body = answer.body
        } catch (e) {
          if (ours.has(e as object)) throw e
          // the registry's answer to the retry is the news now (e.g. it answers 500s)
          if (!isTransient(e)) {
            if (cause === undefined) return // short, and no more to be had: a size mismatch
            throw e
          }
          body = undefined
          lastCause = e
          if (failures >= opts.attempts) throw e
        }
      }
    }
    return bytes()
  })
