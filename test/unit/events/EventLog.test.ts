import { afterAll, describe, expect, test } from "bun:test"
import { Cause, Chunk, Context, Effect, Exit, Layer, Stream, TestClock, TestContext } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import process from "node:process"
import { EventLog, EventLogMemory, IdsSequential, type LogEntry, LogCorrupt } from "../../../src/events/EventLog.ts"
import type { Event } from "../../../src/events/Events.ts"
import { cleanTempRoots, fileLayer, logFile, sampleEvent, tempRoot, withLog } from "./support.ts"

afterAll(cleanTempRoots)

type Kind = "file" | "memory"
const layerFor = (kind: Kind) =>
  kind === "file" ? fileLayer(tempRoot()) : EventLogMemory.pipe(Layer.provide(IdsSequential("t")))

const run = <A, E>(kind: Kind, body: Effect.Effect<A, E, EventLog>): Promise<A> =>
  Effect.runPromise(body.pipe(Effect.provide(layerFor(kind)), Effect.provide(TestContext.TestContext)) as Effect.Effect<A, E>)

const collect = (log: typeof EventLog.Service, fromOffset?: number) =>
  Stream.runCollect(log.stream(fromOffset === undefined ? undefined : { fromOffset })).pipe(Effect.map(Chunk.toArray))

for (const kind of ["file", "memory"] as const) {
  describe(`EventLog (${kind})`, () => {
    test("append stamps each event with an envelope and reads back the same entries in order", async () => {
      const { written, read } = await run(kind, Effect.gen(function*() {
        const log = yield* EventLog
        yield* TestClock.setTime(1_700_000_000_123)
        const written = [
          ...(yield* log.append([sampleEvent(0), sampleEvent(1)], "wf-a")),
          ...(yield* log.append([sampleEvent(2), sampleEvent(3), sampleEvent(4), sampleEvent(5)], "wf-b")),
        ]
        return { written, read: yield* collect(log) }
      }))
      expect(written.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5])
      expect(written[0].envelope).toEqual({ id: "t-1", time: 1_700_000_000_123, host: os.hostname(), pid: process.pid, workflow: "wf-a", v: 1 })
      expect(written[3].envelope.v).toBe(2) // LayerCommitted is at v2
      expect(written[5].envelope.workflow).toBe("wf-b")
      expect(new Set(written.map((e) => e.hash)).size).toBe(6)
      expect(read).toEqual(written)
      // offsets grow, every frame after the first starting where the one before ended
      expect(read[0].offset).toBe(8)
      for (let i = 1; i < read.length; i++) expect(read[i].offset).toBeGreaterThan(read[i - 1].offset)
    })

    test("fold, head and verify agree with what was appended", async () => {
      const r = await run(kind, Effect.gen(function*() {
        const log = yield* EventLog
        const entries: Array<LogEntry> = []
        for (let i = 0; i < 50; i++) entries.push(...(yield* log.append([sampleEvent(i)], `wf-${i}`)))
        const tags = yield* log.fold([] as Array<string>, (s, e) => (s.push(e.event._tag), s))
        return { entries, tags, head: yield* log.head(), report: yield* log.verify() }
      }))
      expect(r.tags).toEqual(r.entries.map((e) => e.event._tag))
      const last = r.entries[49]
      expect(r.head.hash).toBe(last.hash)
      expect(r.head.frames).toBe(50)
      expect(r.report).toMatchObject({ ok: true, frames: 50, problems: [], head: { hash: last.hash, size: r.head.size } })
      expect(r.report.size).toBe(r.head.size)
    })

    test("an empty log streams nothing and has the genesis head", async () => {
      const r = await run(kind, Effect.gen(function*() {
        const log = yield* EventLog
        return { all: yield* collect(log), head: yield* log.head(), report: yield* log.verify(), n: yield* log.fold(0, (n) => n + 1) }
      }))
      expect(r.all).toEqual([])
      expect(r.n).toBe(0)
      expect(r.head).toEqual({ size: 0, hash: "0".repeat(64), frames: 0 })
      expect(r.report).toMatchObject({ ok: true, frames: 0 })
    })

    test("stream from an entry's offset starts at that entry; a non-boundary offset is refused", async () => {
      const r = await run(kind, Effect.gen(function*() {
        const log = yield* EventLog
        const entries = yield* log.append(Array.from({ length: 10 }, (_, i) => sampleEvent(i)), "wf")
        const head = yield* log.head()
        return {
          entries,
          from7: yield* collect(log, entries[7].offset),
          fromEnd: yield* collect(log, head.size),
          bad: yield* Effect.flip(collect(log, entries[7].offset + 3)),
        }
      }))
      expect(r.from7).toEqual(r.entries.slice(7))
      expect(r.fromEnd).toEqual([])
      expect(r.bad).toBeInstanceOf(LogCorrupt)
      expect((r.bad as LogCorrupt).offset).toBe(r.entries[7].offset + 3)
    })

    test("concurrent appends from many fibers keep batches whole and the chain intact", async () => {
      const r = await run(kind, Effect.gen(function*() {
        const log = yield* EventLog
        yield* Effect.all(
          Array.from({ length: 20 }, (_, f) => log.append([0, 1, 2].map((j) => sampleEvent(f * 3 + j)), `fiber-${f}`)),
          { concurrency: "unbounded" },
        )
        return { all: yield* collect(log), report: yield* log.verify() }
      }))
      expect(r.report.ok).toBe(true)
      expect(r.all.length).toBe(60)
      // each batch's three events are adjacent
      for (let i = 0; i < 60; i += 3) expect(new Set(r.all.slice(i, i + 3).map((e) => e.envelope.workflow)).size).toBe(1)
    })
  })
}

describe("EventLog.append checks events where they enter the log", () => {
  test("an event that does not match its schema is a defect, and nothing of its batch is written", async () => {
    const root = tempRoot()
    await withLog(root, (log) => log.append([sampleEvent(0)], "w"))
    const before = fs.readFileSync(logFile(root))
    const bad = { _tag: "BlobFetched", layer: "x", bytes: "many", ms: 1 } as unknown as Event
    const exit = await Effect.runPromiseExit(Effect.flatMap(EventLog, (log) => log.append([sampleEvent(1), bad], "w")).pipe(Effect.provide(fileLayer(root))))
    expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
    expect(String(Cause.squash((exit as Exit.Failure<unknown, unknown>).cause))).toContain("event 1 does not match the Event schema")
    expect(fs.readFileSync(logFile(root))).toEqual(before)
  })
})

describe("EventLog (file) across opens", () => {
  test("creates <root>/.als/log, and a later open continues the same chain", async () => {
    const root = tempRoot()
    const first = await withLog(root, (log) => log.append([sampleEvent(0), sampleEvent(1)], "one"))
    expect(fs.statSync(logFile(root)).isFile()).toBe(true)
    const second = await withLog(root, (log) => log.append([sampleEvent(2)], "two"))
    expect(second[0].index).toBe(2)
    expect(second[0].offset).toBeGreaterThan(first[1].offset)
    const { report, head } = await withLog(root, (log) => Effect.all({ report: log.verify(), head: log.head() }))
    expect(report).toMatchObject({ ok: true, frames: 3 })
    expect(head).toEqual({ size: fs.statSync(logFile(root)).size, hash: second[0].hash, frames: 3 })
  })

  test("two opens of one log in one process append without breaking the chain", async () => {
    const root = tempRoot()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const a = Context.get(yield* Layer.build(fileLayer(root)), EventLog)
      const b = Context.get(yield* Layer.build(fileLayer(root)), EventLog)
      for (let i = 0; i < 20; i++) yield* (i % 2 ? a : b).append([sampleEvent(i)], "x")
    })))
    const report = await withLog(root, (log) => log.verify())
    expect(report).toMatchObject({ ok: true, frames: 20 })
  })
})
