/**
 * HTTP mechanics under the registry client: one request with a timeout, bounded retries,
 * manual redirects that never carry credentials to another origin, and bodies read with a
 * size limit and a stall timeout. Everything goes through RegistryTransport.
 *
 * Every wait has a bound: a request's headers (connecting and retries included) arrive
 * within requestTimeoutMs; a small body (manifest, token, config, error) arrives whole within
 * stallTimeoutMs; a blob delivers at least minBytesPerWindow in every stallTimeoutMs of
 * waiting. A wait longer than waitNoticeMs is told through onWait, once.
 */
import { Duration, Effect } from "effect"
import type { RegistryConfigShape } from "./RegistryConfig.ts"
import type { TransportRequest } from "./RegistryTransport.ts"

type FetchFn = (url: string, init: TransportRequest) => Promise<Response>

export type NetFailureKind = "refused" | "dns" | "tls-handshake" | "tls-cert" | "reset" | "timeout" | "other"

/** A request that got no HTTP answer. */
export interface NetFailure {
  readonly _tag: "NetFailure"
  readonly kind: NetFailureKind
  readonly url: string
  readonly detail: string
}

const netFailure = (kind: NetFailureKind, url: string, detail: string): NetFailure => ({ _tag: "NetFailure", kind, url, detail })

/** Sorts the errors Bun's and Deno's fetch throw (codes on Bun, messages on Deno). */
export const classifyNetworkError = (e: unknown): NetFailureKind => {
  const err = e as { code?: unknown; message?: unknown; name?: unknown; cause?: { message?: unknown; code?: unknown } } | undefined
  const text = [err?.code, err?.name, err?.message, err?.cause?.code, err?.cause?.message, e].map((x) => String(x ?? "")).join(" ")
  if (/ECONNREFUSED|ConnectionRefused|Connection refused/i.test(text)) return "refused"
  if (/ENOTFOUND|EAI_AGAIN|EAI_NONAME|dns error|failed to lookup|Name or service not known|getaddrinfo/i.test(text)) return "dns"
  if (/CERT|certificate|self[- ]signed|UnknownIssuer|NotValidForName/i.test(text)) return "tls-cert"
  if (/EPROTO|handshake|InvalidContentType|wrong version number|CorruptMessage|\bTLS\b|\bSSL\b/i.test(text)) return "tls-handshake"
  if (/ECONNRESET|ConnectionClosed|closed unexpectedly|connection reset|socket hang up|EPIPE|broken pipe|ECONNABORTED|unexpected EOF|connection closed/i.test(text)) return "reset"
  if (/AbortError|TimeoutError|timed out|ETIMEDOUT/i.test(text)) return "timeout"
  return "other"
}

const describe = (e: unknown): string => {
  const err = e as { code?: unknown; message?: unknown; cause?: { message?: unknown } } | undefined
  // Deno says "fetch failed" and keeps the reason in `cause`
  const cause = err?.cause?.message ? String(err.cause.message).replace(/^error sending request for url \([^)]*\): /, "") : ""
  const raw = cause && String(err?.message) === "fetch failed" ? cause : String(err?.message ?? e)
  // Bun appends advice meant for the programmer, not for the user
  const msg = raw.replace(/\s*For more information, pass `verbose: true`[^)]*\(\)\.?/, "")
  return err?.code && !msg.includes(String(err.code)) ? `${String(err.code)}: ${msg}` : msg
}

/** When a wait must end (epoch ms), and the bound it came from, for messages. */
export interface Deadline {
  readonly at: number
  readonly ms: number
}

export const deadlineAfter = (ms: number): Deadline => ({ at: Date.now() + ms, ms })

const remaining = (d: Deadline) => d.at - Date.now()

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`

/** `host (path)` of a request, for the waiting notice; the path cut short. */
const waitingFor = (url: string): string => {
  try {
    const u = new URL(url)
    const p = u.pathname.length > 100 ? `${u.pathname.slice(0, 100)}…` : u.pathname
    return `${u.host} (${p})`
  } catch {
    return "the registry"
  }
}

/** Calls cfg.onWait once if `ms` pass before the returned cancel. */
const noticeAfter = (cfg: RegistryConfigShape, what: () => string, limitMs: number): (() => void) => {
  if (!cfg.onWait || cfg.waitNoticeMs >= limitMs) return () => {}
  const started = Date.now()
  const t = setTimeout(() => cfg.onWait?.(what(), Date.now() - started, limitMs), cfg.waitNoticeMs)
  return () => clearTimeout(t)
}

export interface Sent {
  readonly response: Response
  readonly url: string
  /** aborts the connection: used to stop a stalled body */
  readonly controller: AbortController
  /** the bounds and notices its body is read with */
  readonly cfg: RegistryConfigShape
}

const retryableStatus = (s: number) => s === 429 || s === 500 || s === 502 || s === 503 || s === 504
const retryableFailure = (k: NetFailureKind) => k === "reset" || k === "timeout"

/** Retry-After as seconds or an HTTP date, in milliseconds from now. */
export const retryAfterMs = (value: string | null, nowMs: number): number | undefined => {
  if (!value) return undefined
  const s = value.trim()
  if (/^\d+$/.test(s)) return Number(s) * 1000
  const t = Date.parse(s)
  return Number.isNaN(t) ? undefined : Math.max(0, t - nowMs)
}

/** Lets the connection go without reading what is left of a body. */
export const discard = (response: Response): Effect.Effect<void> =>
  Effect.promise(async () => {
    try {
      await response.body?.cancel()
    } catch {
      // already closed
    }
  })

export const makeHttp = (fetchFn: FetchFn, cfg: RegistryConfigShape) => {
  /**
   * One exchange: resolves when the headers arrive, fails at the deadline (requestTimeoutMs
   * from now by default) or after attemptTimeoutMs without.
   */
  const sendOnce = (url: string, init: TransportRequest, deadline: Deadline = deadlineAfter(cfg.requestTimeoutMs)): Effect.Effect<Sent, NetFailure> =>
    Effect.async<Sent, NetFailure>((resume) => {
      const controller = new AbortController()
      const left = Math.max(0, remaining(deadline))
      const attempt = cfg.attemptTimeoutMs !== undefined && cfg.attemptTimeoutMs < left ? cfg.attemptTimeoutMs : undefined
      const limit = attempt ?? left
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        controller.abort()
      }, limit)
      const quiet = noticeAfter(cfg, () => `${waitingFor(url)} to answer`, limit)
      fetchFn(url, { ...init, redirect: "manual", signal: controller.signal }).then(
        (response) => {
          clearTimeout(timer)
          quiet()
          resume(Effect.succeed({ response, url, controller, cfg }))
        },
        (e: unknown) => {
          clearTimeout(timer)
          quiet()
          resume(
            Effect.fail(
              timedOut
                ? netFailure("timeout", url, `no answer within ${seconds(attempt ?? deadline.ms)}`)
                : netFailure(classifyNetworkError(e), url, describe(e)),
            ),
          )
        },
      )
      return Effect.sync(() => {
        clearTimeout(timer)
        quiet()
        controller.abort()
      })
    })

  const backoff = (attempt: number) => Math.min(cfg.retryMaxDelayMs, cfg.retryBaseMs * 2 ** attempt)

  /**
   * sendOnce with bounded retries: 5xx and 429 answers (honoring a capped Retry-After) and
   * reset or stalled connections. Only for requests that are safe to repeat. All attempts
   * share one deadline: a retry that could not be waited for before it is not made.
   */
  const send = (url: string, init: TransportRequest, deadline: Deadline = deadlineAfter(cfg.requestTimeoutMs)): Effect.Effect<Sent, NetFailure> =>
    Effect.gen(function* () {
      for (let attempt = 0; ; attempt++) {
        const result = yield* Effect.either(sendOnce(url, init, deadline))
        const last = attempt >= cfg.retries
        if (result._tag === "Left") {
          const wait = backoff(attempt)
          if (last || !retryableFailure(result.left.kind) || wait >= remaining(deadline)) return yield* Effect.fail(result.left)
          yield* Effect.sleep(Duration.millis(wait))
          continue
        }
        const sent = result.right
        if (last || !retryableStatus(sent.response.status)) return sent
        const now = Date.now()
        const hinted = retryAfterMs(sent.response.headers.get("retry-after"), now)
        const wait = Math.min(cfg.retryMaxDelayMs, hinted ?? backoff(attempt))
        if (wait >= remaining(deadline)) return sent
        yield* discard(sent.response)
        yield* Effect.sleep(Duration.millis(wait))
      }
    })

  return { sendOnce, send }
}

export type Http = ReturnType<typeof makeHttp>

export const isRedirect = (status: number) => status === 301 || status === 302 || status === 303 || status === 307 || status === 308

/** Same scheme, host and port: the only place credentials may go. */
export const sameOrigin = (a: string, b: string): boolean => {
  try {
    return new URL(a).origin === new URL(b).origin
  } catch {
    return false
  }
}

/** Headers without anything that authenticates us. */
export const withoutCredentials = (headers: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).filter(([k]) => !/^(authorization|cookie|proxy-authorization)$/i.test(k)))

export type BodyFailure =
  | { readonly _tag: "TooLarge"; readonly limit: number; readonly declared?: number }
  /** fewer than the minimum bytes (`bytes` of them) in `ms` of waiting */
  | { readonly _tag: "Stalled"; readonly ms: number; readonly bytes: number }
  /** a small body not whole after `ms`, `got` bytes of it */
  | { readonly _tag: "TooSlow"; readonly ms: number; readonly got: number }
  | { readonly _tag: "Broken"; readonly kind: NetFailureKind; readonly detail: string }

/**
 * The chunks of a body. It must deliver at least `minBytes` in every `stallMs` spent waiting
 * for it (time the consumer spends between reads does not count): else the connection is
 * aborted, so a trickle ends like silence. Throws BodyFailure objects (callers map them to
 * their own errors).
 */
export async function* bodyChunks(
  sent: Sent,
  stallMs: number,
  minBytes = sent.cfg.minBytesPerWindow,
): AsyncGenerator<Uint8Array, void, undefined> {
  const { response, controller } = sent
  if (!response.body) return
  const reader = response.body.getReader()
  let finished = false
  // the current window: how long we waited in it, and what it brought
  let waited = 0
  let got = 0
  let told = false
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined
      let isStalled = false
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          isStalled = true
          reject(new Error("stalled"))
          controller.abort()
        }, Math.max(0, stallMs - waited))
      })
      const quiet = told ? () => {} : noticeAfter(sent.cfg, () => `${waitingFor(sent.url)} to send more`, stallMs - waited)
      const started = Date.now()
      let r: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>
      try {
        r = await Promise.race([reader.read(), stalled])
      } catch (e) {
        if (isStalled) throw { _tag: "Stalled", ms: stallMs, bytes: got } satisfies BodyFailure
        throw { _tag: "Broken", kind: classifyNetworkError(e), detail: describe(e) } satisfies BodyFailure
      } finally {
        clearTimeout(timer)
        quiet()
      }
      if (Date.now() - started >= sent.cfg.waitNoticeMs) told = true
      if (r.done) {
        finished = true
        return
      }
      waited += Date.now() - started
      got += r.value.byteLength
      if (got >= minBytes) {
        waited = 0
        got = 0
      }
      if (r.value.byteLength > 0) yield r.value
    }
  } finally {
    if (!finished) {
      // the consumer stopped early or the body broke: free the connection
      reader.cancel().catch(() => {})
    }
  }
}

/**
 * A whole body of at most `limit` bytes (refused early when Content-Length says more), read
 * within `wholeMs`: a small document that takes longer is too slow, however steadily it trickles.
 */
export const readBody = (sent: Sent, limit: number, wholeMs: number): Effect.Effect<Uint8Array, BodyFailure> => {
  let total = 0
  let tooSlow = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let quiet = () => {}
  return Effect.tryPromise({
    try: async () => {
      const declared = Number(sent.response.headers.get("content-length") ?? NaN)
      if (declared > limit) {
        sent.controller.abort()
        throw { _tag: "TooLarge", limit, declared } satisfies BodyFailure
      }
      timer = setTimeout(() => {
        tooSlow = true
        sent.controller.abort()
      }, wholeMs)
      quiet = noticeAfter(sent.cfg, () => `${waitingFor(sent.url)} to send the rest`, wholeMs)
      const chunks: Uint8Array[] = []
      for await (const chunk of bodyChunks(sent, wholeMs, 1)) {
        total += chunk.byteLength
        if (total > limit) throw { _tag: "TooLarge", limit } satisfies BodyFailure
        chunks.push(chunk)
      }
      const out = new Uint8Array(total)
      let at = 0
      for (const c of chunks) {
        out.set(c, at)
        at += c.byteLength
      }
      return out
    },
    catch: (e): BodyFailure =>
      tooSlow
        ? { _tag: "TooSlow", ms: wholeMs, got: total }
        : (e as BodyFailure)?._tag
        ? (e as BodyFailure)
        : { _tag: "Broken", kind: classifyNetworkError(e), detail: describe(e) },
  }).pipe(Effect.ensuring(Effect.sync(() => {
    clearTimeout(timer)
    quiet()
  })))
}

/** A short error body (registries explain failures in JSON); empty when unreadable. */
export const readErrorText = (sent: Sent, stallMs: number): Effect.Effect<string> =>
  readBody(sent, 64 * 1024, stallMs).pipe(
    Effect.map((b) => new TextDecoder().decode(b)),
    Effect.catchAll(() => Effect.succeed("")),
  )
