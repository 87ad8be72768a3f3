import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type LockFailure, withMkdirLock } from "../../../src/sys/MkdirLock.ts"

const opts = { timeoutMs: 400, staleMs: 2_000, minWaitMs: 5, maxWaitMs: 20 }
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "als-lock-"))
const run = <A>(lockPath: string, use: Effect.Effect<A>, o = opts) =>
  Effect.runPromise(Effect.either(withMkdirLock(lockPath, o, (f: LockFailure) => f, use)))

describe("mkdir lock", () => {
  test("held while `use` runs, gone after, also when `use` fails", async () => {
    const lock = path.join(tmp(), "x.lock")
    const seen = await run(lock, Effect.sync(() => fs.existsSync(lock)))
    expect(seen).toEqual(Either.right(true))
    expect(fs.existsSync(lock)).toBe(false)
    await Effect.runPromise(Effect.either(withMkdirLock(lock, opts, (f) => f, Effect.fail("boom"))))
    expect(fs.existsSync(lock)).toBe(false)
  })

  test("one holder at a time among concurrent users", async () => {
    const lock = path.join(tmp(), "x.lock")
    let inside = 0
    let most = 0
    const use = Effect.gen(function*() {
      inside++
      most = Math.max(most, inside)
      yield* Effect.sleep(3)
      inside--
    })
    const results = await Promise.all(Array.from({ length: 8 }, () => run(lock, use, { ...opts, timeoutMs: 5_000 })))
    expect(results.every(Either.isRight)).toBe(true)
    expect(most).toBe(1)
  })

  test("a fresh lock held by someone else: timeout, with the holder's age", async () => {
    const lock = path.join(tmp(), "x.lock")
    fs.mkdirSync(lock)
    const r = await run(lock, Effect.succeed(1))
    expect(Either.isLeft(r)).toBe(true)
    const f = (r as Either.Left<LockFailure, number>).left
    expect(f.kind).toBe("timeout")
    if (f.kind === "timeout") {
      expect(f.waitedMs).toBeGreaterThanOrEqual(opts.timeoutMs)
      expect(f.holderAgeMs).toBeLessThan(opts.staleMs)
    }
    expect(fs.existsSync(lock)).toBe(true) // not ours to remove
  })

  test("a stale lock (a dead holder's) is taken over at once, and nothing is left beside it", async () => {
    const dir = tmp()
    const lock = path.join(dir, "x.lock")
    fs.mkdirSync(lock)
    const old = new Date(Date.now() - 60_000)
    fs.utimesSync(lock, old, old)
    const t0 = Date.now()
    expect(await run(lock, Effect.succeed("ok"))).toEqual(Either.right("ok"))
    expect(Date.now() - t0).toBeLessThan(opts.timeoutMs)
    expect(fs.readdirSync(dir)).toEqual([])
  })

  test("the holder refreshes the lock, so a long holder is never taken for dead", async () => {
    const lock = path.join(tmp(), "x.lock")
    const short = { ...opts, staleMs: 1_000 }
    const holder = run(lock, Effect.sleep(2_500), short)
    await Bun.sleep(50)
    const waiter = await run(lock, Effect.succeed("stole it"), { ...short, timeoutMs: 2_000 })
    expect(Either.isLeft(waiter)).toBe(true)
    expect(await holder).toEqual(Either.right(undefined))
  })

  test("a lock path that cannot be made: an io failure, not a wait", async () => {
    const r = await run(path.join(tmp(), "missing", "x.lock"), Effect.succeed(1))
    expect(Either.isLeft(r) && r.left.kind).toBe("io")
  })
})
