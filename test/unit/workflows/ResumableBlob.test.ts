// The resumes of a broken blob download share one deadline (src/workflows/ResumableBlob.ts):
// --timeout plus 1 s per 64 KiB missing from the first break. These drive resumableBlob with
// in-process bodies, so the bound is checked without a network; the proxy test is
// test/integration/faults/resume-bound.test.ts.

import { describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { parseDigest } from "../../../src/domain/Digest.ts"
import { RegistryError } from "../../../src/registry/RegistryError.ts"
import { RESUME_MIN_BYTES_PER_SECOND, resumableBlob, resumeBudgetMs } from "../../../src/workflows/ResumableBlob.ts"
import type { SourceBlob } from "../../../src/workflows/ImageSource.ts"

const digest = parseDigest(`sha256:${"ab".repeat(32)}`)
const reset = () => new RegistryError({ code: "Unreachable", ref: "reg/app:1", message: "reg/app:1: the connection broke (ECONNRESET)" })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A body that gives `n` bytes from `offset`, then waits `thenMs` and breaks (or never ends). */
const breaking = (offset: number, n: number, thenMs: number, hang = false): SourceBlob => ({
  timeoutMs: 200,
  body: (async function*() {
    yield new Uint8Array(n).fill(offset % 251)
    await sleep(thenMs)
    if (hang) await new Promise(() => undefined)
    throw reset()
  })(),
})

const drain = async (it: AsyncIterable<Uint8Array>) => {
  let got = 0
  for await (const c of it) got += c.byteLength
  return got
}

const many = { attempts: 1_000_000, backoffMs: 1, timeoutMs: 60_000 }

describe("resumeBudgetMs", () => {
  test("--timeout plus 1 s per 64 KiB missing, never less than --timeout", () => {
    expect(RESUME_MIN_BYTES_PER_SECOND).toBe(64 * 1024)
    expect(resumeBudgetMs(3000, 0)).toBe(3000)
    expect(resumeBudgetMs(3000, 64 * 1024)).toBe(4000)
    expect(resumeBudgetMs(3000, 10 * 64 * 1024 + 1)).toBe(13_001)
    expect(resumeBudgetMs(3000, -5)).toBe(3000)
  })
})

describe("resumableBlob: one deadline for all resumes", () => {
  test("a body that gives a few bytes then breaks, forever: a Timeout within the budget, however many attempts are allowed", async () => {
    const size = 6400 // budget: 200 ms + 98 ms
    let opens = 0
    const started = Date.now()
    const body = await Effect.runPromise(resumableBlob(digest, size, (offset) => Effect.sync(() => (opens++, breaking(offset, 10, 20))), many))
    const e = await drain(body).then(() => undefined, (e: unknown) => e)
    const ms = Date.now() - started
    expect(e).toBeInstanceOf(RegistryError)
    expect((e as RegistryError).code).toBe("Timeout")
    expect((e as RegistryError).message).toContain("the download kept breaking")
    expect((e as RegistryError).message).toContain("--timeout 0 s plus 1 s per 64 KiB missing")
    // named by the registry's ref the first break carried
    expect((e as RegistryError).message.startsWith("reg/app:1: blob ")).toBe(true)
    // and says what the breaks were
    expect((e as RegistryError).message).toEndWith("(the last break: the connection broke (ECONNRESET))")
    expect(opens).toBeGreaterThan(2) // it did resume
    expect(ms).toBeLessThan(resumeBudgetMs(200, size) + 2_000)
  })

  test("a resumed body that hangs is cut at the deadline, not left to its own bounds", async () => {
    const size = 6400
    let opens = 0
    const started = Date.now()
    const body = await Effect.runPromise(
      resumableBlob(digest, size, (offset) => Effect.sync(() => breaking(offset, 10, 5, opens++ > 0)), many),
    )
    const e = await drain(body).then(() => undefined, (e: unknown) => e)
    expect((e as RegistryError).code).toBe("Timeout")
    expect(opens).toBe(2)
    expect(Date.now() - started).toBeLessThan(resumeBudgetMs(200, size) + 2_000)
  })

  test("a reopening request that never answers is cut at the deadline too", async () => {
    let opens = 0
    const body = await Effect.runPromise(
      resumableBlob(digest, 6400, (offset) => opens++ === 0 ? Effect.sync(() => breaking(offset, 10, 5)) : Effect.never, many),
    )
    const e = await drain(body).then(() => undefined, (e: unknown) => e)
    expect((e as RegistryError).code).toBe("Timeout")
  })

  test("a reopening answer that comes after the deadline is closed, not left holding a connection", async () => {
    let opens = 0
    let closed = false
    const late: SourceBlob = {
      body: (async function*() {
        try {
          yield new Uint8Array(10)
          yield new Uint8Array(10)
        } finally {
          closed = true
        }
      })(),
    }
    const body = await Effect.runPromise(resumableBlob(digest, 6400, (offset) =>
      opens++ === 0
        ? Effect.sync(() => breaking(offset, 10, 5))
        : Effect.promise(() => sleep(resumeBudgetMs(200, 6400) + 300).then(() => late)), many))
    const e = await drain(body).then(() => undefined, (e: unknown) => e)
    expect((e as RegistryError).code).toBe("Timeout")
    expect(closed).toBe(false)
    const until = Date.now() + 5_000
    while (!closed && Date.now() < until) await sleep(20)
    expect(closed).toBe(true)
  })

  test("one break, then the rest: the whole blob, in order, and no deadline in the way", async () => {
    const size = 300_000
    const bytes = new Uint8Array(size).map((_, i) => i % 253)
    const body = await Effect.runPromise(resumableBlob(digest, size, (offset) =>
      Effect.sync((): SourceBlob => ({
        timeoutMs: 200,
        body: (async function*() {
          yield bytes.subarray(offset, offset === 0 ? 1000 : size)
          if (offset === 0) throw reset()
        })(),
      })), many))
    const chunks: Uint8Array[] = []
    for await (const c of body) chunks.push(c)
    expect(Buffer.concat(chunks).equals(Buffer.from(bytes))).toBe(true)
  })

  test("the consumer stopping early closes the body it was reading", async () => {
    let closed = false
    const body = await Effect.runPromise(resumableBlob(digest, 100, () =>
      Effect.sync((): SourceBlob => ({
        body: (async function*() {
          try {
            yield new Uint8Array(10)
            yield new Uint8Array(10)
          } finally {
            closed = true
          }
        })(),
      })), many))
    for await (const _ of body) break
    expect(closed).toBe(true)
  })
})
