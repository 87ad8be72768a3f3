// Group commit (EventLog.ts): a log's fdatasync runs off the main thread, and the appends that
// arrive meanwhile are written together with one sync. Each append still returns only once its
// own events are synced, gets exactly its own entries back, and a failed sync fails the whole
// batch with its frames cut again.
import { afterAll, describe, expect, test } from "bun:test"
import { Effect, Exit, Layer } from "effect"
import { EventLog, EventLogOn, IdsSequential, LogIoError, MemoryStore } from "../../../src/events/EventLog.ts"
import { cleanTempRoots, sampleEvent, tempRoot, withLog } from "./support.ts"

afterAll(cleanTempRoots)

/** A buffer store whose sync takes `ms` on a timer, counting syncs and failing the ones asked to. */
class SlowSyncStore extends MemoryStore {
  syncs = 0
  unsynced = 0
  failNext = 0
  constructor(private readonly ms: number) {
    super()
  }
  override append(data: Buffer): void {
    super.append(data)
    this.unsynced++
  }
  override syncAsync(done: (error?: unknown) => void): void {
    this.syncs++
    setTimeout(() => {
      if (this.failNext > 0) {
        this.failNext--
        return done(new LogIoError({ op: "sync", path: this.path, code: "EIO", detail: "injected" }))
      }
      this.unsynced = 0
      done()
    }, this.ms)
  }
}

// the outcome (success or failure) of a program, as a value
const outcomeOf = Effect.runPromiseExit
const run = <A>(store: MemoryStore, f: (log: typeof EventLog.Service) => Effect.Effect<A, unknown>) =>
  outcomeOf(Effect.flatMap(EventLog, f).pipe(Effect.provide(EventLogOn(store, { sync: true }).pipe(Layer.provide(IdsSequential("g"))))))

describe("group commit", () => {
  test("concurrent appends share syncs, each returns only its own entries, once synced", async () => {
    const store = new SlowSyncStore(20)
    const exit = await run(store, (log) =>
      Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) =>
          Effect.map(log.append([sampleEvent(i), sampleEvent(i + 100)], `w${i}`), (entries) => ({
            i,
            events: entries.map((e) => e.event),
            workflows: [...new Set(entries.map((e) => e.envelope.workflow))],
            syncedWhenReturned: store.unsynced === 0,
          })),
        { concurrency: "unbounded" },
      ).pipe(Effect.zipLeft(Effect.flatMap(log.verify(), (r) => Effect.sync(() => expect(r.problems).toEqual([]))))))
    expect(Exit.isSuccess(exit)).toBe(true)
    if (!Exit.isSuccess(exit)) return
    for (const r of exit.value) {
      expect(r.events).toEqual([sampleEvent(r.i), sampleEvent(r.i + 100)])
      expect(r.workflows).toEqual([`w${r.i}`])
      expect(r.syncedWhenReturned).toBe(true)
    }
    // one sync for the first append, one for everything that queued behind it (not 40)
    expect(store.syncs).toBeLessThanOrEqual(3)
    expect(store.syncs).toBeGreaterThanOrEqual(1)
  })

  test("a failed sync fails every append of its batch and cuts their frames; the next appends work", async () => {
    const store = new SlowSyncStore(10)
    const first = await run(store, (log) => log.append([sampleEvent(0)], "ok"))
    expect(Exit.isSuccess(first)).toBe(true)
    const before = store.bytes().length
    store.failNext = 2
    const failed = await run(store, (log) =>
      Effect.forEach([1, 2, 3, 4, 5], (i) => log.append([sampleEvent(i)], `f${i}`).pipe(Effect.exit), { concurrency: "unbounded" }))
    expect(Exit.isSuccess(failed)).toBe(true)
    if (!Exit.isSuccess(failed)) return
    for (const e of failed.value) {
      expect(Exit.isFailure(e)).toBe(true)
      if (Exit.isFailure(e)) expect(String(e.cause)).toContain("cannot sync <memory>: injected")
    }
    expect(store.bytes().length).toBe(before)
    const after = await run(store, (log) =>
      Effect.zip(log.append([sampleEvent(6)], "later"), log.fold(0, (n) => n + 1)))
    expect(Exit.isSuccess(after) && after.value[1]).toBe(2)
  })

  test("on a real file with fdatasync: 60 concurrent appends land in one valid chain, in their own order", async () => {
    const root = tempRoot()
    const results = await withLog(root, (log) =>
      Effect.forEach(
        Array.from({ length: 60 }, (_, i) => i),
        (i) => Effect.map(log.append([sampleEvent(i), sampleEvent(i + 1)], `w${i}`), (es) => ({ i, es })),
        { concurrency: "unbounded" },
      ), { sync: true })
    for (const { i, es } of results) {
      expect(es.map((e) => e.event)).toEqual([sampleEvent(i), sampleEvent(i + 1)])
      expect(es[1].index).toBe(es[0].index + 1)
    }
    const report = await withLog(root, (log) => log.verify())
    expect(report.problems).toEqual([])
    expect(await withLog(root, (log) => log.fold(0, (n) => n + 1))).toBe(120)
  })
})
