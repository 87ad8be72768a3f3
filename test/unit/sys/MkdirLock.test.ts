import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseDigest } from "../../../src/domain/Digest.ts"
import { withLayerLock } from "../../../src/store/LayerLock.ts"
import { type LockFailure, type LockOwner, type MkdirLockOptions, readOwner, withMkdirLock } from "../../../src/sys/MkdirLock.ts"
import { tempDirs } from "../../lib/tempDirs.ts"

const opts = { timeoutMs: 400, staleMs: 2_000, minWaitMs: 5, maxWaitMs: 20 }
const tempDir = tempDirs()
const tmp = () => tempDir("als-lock-")
const run = <A>(lockPath: string, use: Effect.Effect<A>, o: MkdirLockOptions = opts) =>
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

/** A pid that was a process on this host and is gone. */
const deadPid = (): number => {
  const p = Bun.spawnSync(["true"])
  expect(p.exitCode).toBe(0)
  return p.pid
}

/** A lock held (fresh mtime) by `owner`, as another process would leave it. */
const heldBy = (owner: string) => {
  const dir = tmp()
  const lock = path.join(dir, "x.lock")
  fs.mkdirSync(lock)
  fs.writeFileSync(path.join(lock, "owner"), owner)
  return { dir, lock }
}

describe("mkdir lock: the holder's host and pid", () => {
  const long = { ...opts, staleMs: 60_000 } // staleness is never the reason below

  test("recordOwner writes this host and pid into the lock; release leaves nothing", async () => {
    const dir = tmp()
    const lock = path.join(dir, "x.lock")
    const seen = await run(lock, Effect.sync(() => readOwner(lock)), { ...long, recordOwner: true })
    expect(seen).toEqual(Either.right({ host: os.hostname(), pid: process.pid }))
    expect(fs.readdirSync(dir)).toEqual([])
  })

  test("a fresh lock whose holder is a dead process on this host is taken over at once", async () => {
    const { dir, lock } = heldBy(`${os.hostname()} ${deadPid()}\n`)
    const t0 = Date.now()
    expect(await run(lock, Effect.succeed("ok"), long)).toEqual(Either.right("ok"))
    expect(Date.now() - t0).toBeLessThan(long.timeoutMs)
    expect(fs.readdirSync(dir)).toEqual([])
  })

  test("a live holder on this host is waited for, and the timeout names it", async () => {
    const { lock } = heldBy(`${os.hostname()} ${process.ppid}\n`)
    const r = await run(lock, Effect.succeed(1), long)
    expect(Either.isLeft(r) && r.left).toMatchObject({ kind: "timeout", holder: { host: os.hostname(), pid: process.ppid } })
    expect(fs.existsSync(lock)).toBe(true)
  })

  test("a holder on another host is not judged by its pid here", async () => {
    const { lock } = heldBy(`elsewhere.example ${deadPid()}\n`)
    const r = await run(lock, Effect.succeed(1), long)
    expect(Either.isLeft(r) && r.left).toMatchObject({ kind: "timeout", holder: { host: "elsewhere.example" } })
  })

  test("an owner file that is not what we write (garbage, huge, a symlink, a FIFO) names no one and takes nothing over", async () => {
    for (const make of [
      (f: string) => fs.writeFileSync(f, `${os.hostname()} ${deadPid()} extra\n`),
      (f: string) => fs.writeFileSync(f, `${os.hostname()} ${deadPid()}\n${" ".repeat(300)}`),
      (f: string) => fs.writeFileSync(f, `\u001b[31m ${deadPid()}\n`),
      (f: string) => fs.symlinkSync("/etc/hostname", f),
      (f: string) => Bun.spawnSync(["mkfifo", f]),
    ]) {
      const dir = tmp()
      const lock = path.join(dir, "x.lock")
      fs.mkdirSync(lock)
      make(path.join(lock, "owner"))
      expect(readOwner(lock)).toBeUndefined()
      const r = await run(lock, Effect.succeed(1), { ...long, timeoutMs: 100 })
      expect(Either.isLeft(r) && r.left.kind).toBe("timeout")
    }
  })

  test("a holder whose lock was taken over (it was stopped past the stale time) does not remove the new holder's", async () => {
    const dir = tmp()
    const lock = path.join(dir, "x.lock")
    const r = await run(lock, Effect.sync(() => {
      // what a waiter does to a stale lock, then its own lock in the same place
      fs.renameSync(lock, path.join(dir, "grave"))
      fs.mkdirSync(lock)
      fs.writeFileSync(path.join(lock, "owner"), `${os.hostname()} ${process.ppid}\n`)
    }), { ...long, recordOwner: true })
    expect(Either.isRight(r)).toBe(true)
    expect(readOwner(lock)).toEqual({ host: os.hostname(), pid: process.ppid })
  })

  test("a waiter is told once, after noticeMs, whom it waits for", async () => {
    const { lock } = heldBy(`${os.hostname()} ${process.ppid}\n`)
    const told: Array<LockOwner | undefined> = []
    await run(lock, Effect.succeed(1), { ...long, timeoutMs: 600, noticeMs: 150, onWait: (h) => told.push(h) })
    expect(told).toEqual([{ host: os.hostname(), pid: process.ppid }])
  })
})

describe("layer lock", () => {
  const digest = parseDigest(`sha256:${"ab".repeat(32)}`)

  test("waiting on another process: says which layer and pid, then gives up with ELOCKED naming them", async () => {
    const locks = tmp()
    const lock = path.join(locks, `sha256-${"ab".repeat(32)}.lock`)
    fs.mkdirSync(lock)
    fs.writeFileSync(path.join(lock, "owner"), `${os.hostname()} ${process.ppid}\n`)
    const told: string[] = []
    const r = await Effect.runPromise(Effect.either(withLayerLock(locks, digest, Effect.succeed(1), {
      timeoutMs: 4_000,
      staleMs: 60_000,
      onWait: (d, h) => told.push(`${d} ${h?.pid}`),
    })))
    expect(told).toEqual([`${digest} ${process.ppid}`])
    expect(Either.isLeft(r) && r.left).toMatchObject({ code: "ELOCKED" })
    expect(Either.isLeft(r) && r.left.message).toContain(`another als (pid ${process.ppid} on ${os.hostname()}) has been working on layer ${digest}`)
  })

  test("a layer lock left by a dead pull on this host is taken over at once", async () => {
    const locks = tmp()
    const lock = path.join(locks, `sha256-${"ab".repeat(32)}.lock`)
    fs.mkdirSync(lock)
    fs.writeFileSync(path.join(lock, "owner"), `${os.hostname()} ${deadPid()}\n`)
    const t0 = Date.now()
    const r = await Effect.runPromise(Effect.either(withLayerLock(locks, digest, Effect.succeed("mine"), { timeoutMs: 60_000, staleMs: 60_000 })))
    expect(r).toEqual(Either.right("mine"))
    expect(Date.now() - t0).toBeLessThan(2_000)
    expect(fs.readdirSync(locks)).toEqual([])
  })
})
