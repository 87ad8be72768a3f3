import { afterAll, describe, expect, test } from "bun:test"
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import * as fs from "node:fs"
import { EventLog, type LogEntry, LogCorrupt } from "../../../src/events/EventLog.ts"
import type { Event } from "../../../src/events/Events.ts"
import { cleanTempRoots, fileLayer, logFile, sampleEvent, tempRoot, withLog } from "./support.ts"

afterAll(cleanTempRoots)

const readAll = (root: string) =>
  withLog(root, (log) =>
    Effect.all({ entries: Stream.runCollect(log.stream()).pipe(Effect.map(Chunk.toArray)), report: log.verify() }))

const afterEvent: Event = { _tag: "LayerRemoved", layer: "sha256:" + "e".repeat(64), reason: "after the crash" }

/** A log of `n` frames whose last three were written as one batch. */
const writeLog = async (root: string, n: number): Promise<ReadonlyArray<LogEntry>> => {
  const singles = await withLog(root, (log) =>
    Effect.forEach(Array.from({ length: n - 3 }, (_, i) => i), (i) => log.append([sampleEvent(i)], "before")))
  const batch = await withLog(root, (log) => log.append([sampleEvent(n - 3), sampleEvent(n - 2), sampleEvent(n - 1)], "batch"))
  return [...singles.flat(), ...batch]
}

describe("torn tail", () => {
  test("for every cut inside the last frame, the next append cuts the tail, logs LogRepaired, then appends", async () => {
    const src = tempRoot()
    const N = 8
    const entries = await writeLog(src, N)
    const bytes = fs.readFileSync(logFile(src))
    const last = entries[N - 1]
    expect(bytes.length - last.offset).toBeGreaterThan(100)

    const root = tempRoot()
    await withLog(root, () => Effect.void) // creates <root>/.als
    let cuts = 0
    for (let cut = last.offset + 1; cut < bytes.length; cut++) {
      fs.writeFileSync(logFile(root), bytes.subarray(0, cut))
      const { appended, entries: got, report } = await withLog(root, (log) =>
        Effect.all({
          appended: log.append([afterEvent], "after"),
          entries: Stream.runCollect(log.stream()).pipe(Effect.map(Chunk.toArray)),
          report: log.verify(),
        }))

      expect(got.length).toBe(N + 1)
      // the N-1 good frames are untouched
      expect(got.slice(0, N - 1)).toEqual(entries.slice(0, N - 1))
      expect(got[N - 1].offset).toBe(last.offset)
      expect(got[N - 1].event).toEqual({ _tag: "LogRepaired", cutAt: last.offset, droppedBytes: cut - last.offset })
      expect(got[N - 1].envelope.workflow).toBe("after")
      expect(got[N].event).toEqual(afterEvent)
      expect(got[N]).toEqual(appended[0])
      expect(report).toMatchObject({ ok: true, frames: N + 1, problems: [] })
      // the cut bytes are kept beside the log
      expect(fs.readFileSync(`${logFile(root)}.cut-${last.offset}`)).toEqual(bytes.subarray(last.offset, cut))
      cuts++
    }
    expect(cuts).toBe(bytes.length - last.offset - 1)
  })

  test("a cut right at a frame boundary needs no repair", async () => {
    const root = tempRoot()
    const entries = await writeLog(root, 5)
    fs.truncateSync(logFile(root), entries[4].offset)
    await withLog(root, (log) => log.append([afterEvent], "after"))
    const { entries: got, report } = await readAll(root)
    expect(got.map((e) => e.event._tag)).toEqual([...entries.slice(0, 4).map((e) => e.event._tag), "LayerRemoved"])
    expect(report.ok).toBe(true)
  })

  test("readers stop quietly before a torn tail; verify reports it as the tail; head is the last good frame", async () => {
    const root = tempRoot()
    const entries = await writeLog(root, 6)
    const before = fs.readFileSync(logFile(root))
    fs.truncateSync(logFile(root), entries[5].offset + 60)
    const { entries: got, report } = await readAll(root)
    const head = await withLog(root, (log) => log.head())
    expect(got).toEqual(entries.slice(0, 5))
    expect(report.ok).toBe(false)
    expect(report.problems).toEqual([expect.objectContaining({ offset: entries[5].offset, index: 5, kind: "truncated", tail: true })])
    expect(report.head).toEqual({ size: entries[5].offset, hash: entries[4].hash })
    expect(head).toEqual({ size: entries[5].offset, hash: entries[4].hash, frames: 5 })
    // reading changed nothing
    expect(fs.readFileSync(logFile(root))).toEqual(before.subarray(0, entries[5].offset + 60))
  })

  test("a cut-short file header (a torn first append) is repaired from byte 0", async () => {
    for (let cut = 1; cut < 8; cut++) {
      const root = tempRoot()
      await writeLog(root, 3)
      fs.truncateSync(logFile(root), cut)
      await withLog(root, (log) => log.append([afterEvent], "after"))
      const { entries: got, report } = await readAll(root)
      expect(got.map((e) => e.event)).toEqual([{ _tag: "LogRepaired", cutAt: 0, droppedBytes: cut }, afterEvent])
      expect(report.ok).toBe(true)
    }
  })

  test("zeros after the last frame (a crash before the data reached the disk) are cut", async () => {
    const root = tempRoot()
    const entries = await writeLog(root, 4)
    const size = fs.statSync(logFile(root)).size
    fs.appendFileSync(logFile(root), Buffer.alloc(4096))
    await withLog(root, (log) => log.append([afterEvent], "after"))
    const { entries: got, report } = await readAll(root)
    expect(got.slice(0, 4)).toEqual([...entries])
    expect(got[4].event).toEqual({ _tag: "LogRepaired", cutAt: size, droppedBytes: 4096 })
    expect(report.ok).toBe(true)
  })

  test("a complete last frame that fails its checksum counts as torn: cut, and kept beside the log", async () => {
    const root = tempRoot()
    const entries = await writeLog(root, 4)
    const bytes = fs.readFileSync(logFile(root))
    bytes[entries[3].offset + 60] ^= 0x01
    fs.writeFileSync(logFile(root), bytes)
    await withLog(root, (log) => log.append([afterEvent], "after"))
    const { entries: got, report } = await readAll(root)
    expect(got[3].event).toEqual({ _tag: "LogRepaired", cutAt: entries[3].offset, droppedBytes: bytes.length - entries[3].offset })
    expect(fs.readFileSync(`${logFile(root)}.cut-${entries[3].offset}`)).toEqual(bytes.subarray(entries[3].offset))
    expect(report.ok).toBe(true)
  })

  test("a process that knows the tail checks only what others appended since, and repairs their torn batch", async () => {
    const root = tempRoot()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const mine = Context.get(yield* Layer.build(fileLayer(root)), EventLog)
      yield* mine.append([sampleEvent(0), sampleEvent(1)], "mine")
      // another process appends a batch of three and is killed while writing its last frame
      const theirs = yield* Effect.promise(() => withLog(root, (log) => log.append([2, 3, 4].map(sampleEvent), "theirs")))
      fs.truncateSync(logFile(root), theirs[2].offset + 10)
      yield* mine.append([afterEvent], "mine")
    })))
    const { entries: got, report } = await readAll(root)
    expect(got.map((e) => e.envelope.workflow)).toEqual(["mine", "mine", "theirs", "theirs", "mine", "mine"])
    expect(got[4].event).toMatchObject({ _tag: "LogRepaired", droppedBytes: 10 })
    expect(report.ok).toBe(true)
  })

  test("bytes after the last frame that are not a torn append are never cut: append refuses", async () => {
    const root = tempRoot()
    await writeLog(root, 4)
    fs.appendFileSync(logFile(root), "this is not a frame, and there is more of it than one frame header\n")
    const before = fs.readFileSync(logFile(root))
    const err = await Effect.runPromise(Effect.flip(Effect.flatMap(EventLog, (log) => log.append([afterEvent], "x")).pipe(Effect.provide(fileLayer(root)))))
    expect(err).toBeInstanceOf(LogCorrupt)
    expect(err.message).toContain("als audit")
    expect(fs.readFileSync(logFile(root))).toEqual(before)
  })
})
