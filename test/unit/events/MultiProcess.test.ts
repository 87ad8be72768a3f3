import { afterAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { LogLocked } from "../../../src/events/EventLog.ts"
import { cleanTempRoots, failureOf, logFile, sampleEvent, tempRoot, withLog } from "./support.ts"

afterAll(cleanTempRoots)

const writerScript = path.join(import.meta.dir, "../../lib/logWriter.ts")

describe("several processes appending to one log", () => {
  test("4 writer processes × 1000 events: all there, each writer's order kept, every link verified", async () => {
    const root = tempRoot()
    const WRITERS = 4
    const EACH = 1000
    const started = performance.now()
    const children = Array.from({ length: WRITERS }, (_, w) =>
      Bun.spawn([process.execPath, writerScript, root, String(w), String(EACH), "4"], { stdout: "inherit", stderr: "inherit" }))
    const codes = await Promise.all(children.map((c) => c.exited))
    const ms = performance.now() - started
    expect(codes).toEqual([0, 0, 0, 0])

    const { seen, report } = await withLog(root, (log) =>
      Effect.all({
        seen: log.fold(new Map<number, Array<{ writer: string; seq: number; workflow: string }>>(), (m, e) => {
          if (e.event._tag !== "LookupRequested") throw new Error(`unexpected ${e.event._tag}`)
          const list = m.get(e.envelope.pid) ?? []
          list.push({ writer: e.event.annotations!.writer, seq: Number(e.event.annotations!.seq), workflow: e.envelope.workflow })
          m.set(e.envelope.pid, list)
          return m
        }),
        report: log.verify(),
      }))
    expect(report).toMatchObject({ ok: true, frames: WRITERS * EACH, problems: [] })
    expect(seen.size).toBe(WRITERS)
    const pids = children.map((c) => c.pid).sort()
    expect([...seen.keys()].sort()).toEqual(pids)
    for (const list of seen.values()) {
      expect(list.length).toBe(EACH)
      expect(list.map((x) => x.seq)).toEqual(Array.from({ length: EACH }, (_, i) => i))
      expect(new Set(list.map((x) => `${x.writer}/${x.workflow}`)).size).toBe(1)
    }
    // the writers really interleaved (otherwise this test proves little)
    const order = await withLog(root, (log) => log.fold([] as Array<number>, (a, e) => (a.push(e.envelope.pid), a)))
    let switches = 0
    for (let i = 1; i < order.length; i++) if (order[i] !== order[i - 1]) switches++
    expect(switches).toBeGreaterThan(20)
    console.log(`4 processes × ${EACH} events in ${Math.round(ms)} ms (batches of 1–4, sync off), ${switches} writer switches`)
  }, 60_000)

  test("a lock held by a live process: append waits, then fails with LogLocked and writes nothing", async () => {
    const root = tempRoot()
    await withLog(root, (log) => log.append([sampleEvent(0)], "w"))
    const before = fs.readFileSync(logFile(root))
    fs.mkdirSync(path.join(root, ".als", "log.lock"))
    const started = Date.now()
    const err = await failureOf(root, (log) => log.append([sampleEvent(1)], "w"), { lock: { timeoutMs: 300, staleMs: 60_000 } })
    expect(err).toBeInstanceOf(LogLocked)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(err.message).toContain("last refreshed it")
    expect(fs.readFileSync(logFile(root))).toEqual(before)
    fs.rmdirSync(path.join(root, ".als", "log.lock"))
  })

  test("a lock left behind by a killed process is taken over once stale", async () => {
    const root = tempRoot()
    await withLog(root, (log) => log.append([sampleEvent(0)], "w"))
    const lock = path.join(root, ".als", "log.lock")
    fs.mkdirSync(lock)
    const old = new Date(Date.now() - 60_000)
    fs.utimesSync(lock, old, old)
    const entries = await withLog(root, (log) => log.append([sampleEvent(1)], "w"))
    expect(entries[0].index).toBe(1)
    expect(fs.existsSync(lock)).toBe(false)
  })
})
