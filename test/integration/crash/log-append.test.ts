// Issue 5: crashes around the event log. A process killed while it appends (SIGKILL at random
// delays during a pull that only appends, and a writer hammering the log with small batches)
// leaves a log `als log` reads whole; a lock it held is taken over; and the next append cuts a
// torn tail and logs LogRepaired first. Torn tails are also made by hand — the bytes of a real
// next append cut at chosen points, and a run of zeros — since a kill can only tear a write
// that the kernel had not finished, which is rare.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { appendFileSync, existsSync, readFileSync, statSync, truncateSync } from "node:fs"
import { join } from "node:path"
import { als, describeResult, eventsOf, type AlsLogEvent } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { run } from "../../lib/sh.ts"
import {
  gzipLayer,
  kill9,
  Leftovers,
  logFile,
  MIN,
  pushTestImage,
  readLog,
  refOf,
  sleep,
  spawnAls,
  verifyLog,
  type TestImage,
} from "./support.ts"

let registry: RegistryHandle
let img: TestImage
let ref: string
/** A store holding `img`, copied for each case. */
let template: string
const left = new Leftovers()

beforeAll(async () => {
  registry = await startRegistry()
  img = await pushTestImage(
    registry.url,
    "crash/log",
    "1",
    Array.from({ length: 16 }, (_, i) => gzipLayer([{ name: `etc/layer-${i}`, content: `layer ${i}\n` }])),
  )
  ref = refOf(registry.host, img)
  template = left.tempDir("template")
  const r = await als(["pull", "--root", template, "--tls-verify=false", ref])
  if (r.exitCode !== 0) throw new Error(describeResult(r))
}, 2 * MIN)

afterAll(async () => {
  await left.cleanup()
  await registry?.stop()
}, MIN)

const copyStore = async (from: string, name: string): Promise<string> => {
  const root = join(left.tempDir(name), "store")
  const r = await run(["cp", "-a", from, root])
  if (r.exitCode !== 0) throw new Error(`cp -a failed: ${r.stderr}`)
  return root
}

const logSize = (root: string) => statSync(logFile(root)).size

/** After a crash: `als log` reads it, and the only thing a full check may find is a torn tail. */
const expectReadableLog = async (root: string, what: string) => {
  const events = await readLog(root)
  const report = await verifyLog(root)
  const notTail = report.problems.filter((p) => !p.tail)
  expect({ what, damage: notTail }).toEqual({ what, damage: [] })
  return { events, torn: report.problems.some((p) => p.tail) }
}

/** The next pull appends: exit 0 (after taking over a dead holder's lock), LogRepaired iff torn. */
const expectAppendRepairs = async (root: string, torn: boolean, what: string, before: number) => {
  const started = Date.now()
  const r = await als(["pull", "--root", root, "--tls-verify=false", ref], { timeoutMs: MIN })
  const ms = Date.now() - started
  if (r.exitCode !== 0) throw new Error(`${what}: the next pull failed:\n${describeResult(r)}`)
  expect({ what, slow: ms > 25_000 ? ms : 0 }).toEqual({ what, slow: 0 })
  expect({ what, logLock: existsSync(join(root, ".als", "log.lock")) }).toEqual({ what, logLock: false })
  const log = await readLog(root)
  const repaired = eventsOf(log, "LogRepaired")
  expect({ what, repaired: repaired.length }).toEqual({ what, repaired: torn ? 1 : 0 })
  const report = await verifyLog(root)
  expect({ what, ok: report.ok, problems: report.problems }).toEqual({ what, ok: true, problems: [] })
  expect(log.length).toBeGreaterThan(before)
  return { log, repaired: repaired[0] }
}

describe("a process killed while it appends to the log", () => {
  test("als pull killed at 12 random delays while it logs lookups: the log reads, the next append repairs", async () => {
    // A pull of an image already stored only looks up and logs: about 40 appends.
    const probe = await copyStore(template, "probe")
    const t0 = Date.now()
    const full = await als(["pull", "--root", probe, "--tls-verify=false", ref])
    if (full.exitCode !== 0) throw new Error(describeResult(full))
    const duration = Date.now() - t0
    const cases: Array<{ root: string; delay: number; torn: boolean; lock: boolean; before: number }> = []
    for (let i = 0; i < 12; i++) {
      const root = await copyStore(template, `append${i}`)
      const delay = Math.round(((i + Math.random()) / 12) * duration)
      const pull = await spawnAls(["pull", "--root", root, "--tls-verify=false", ref], left)
      await sleep(delay)
      await kill9(pull)
      const { events, torn } = await expectReadableLog(root, `kill ${i} at ${delay} ms`)
      cases.push({ root, delay, torn, lock: existsSync(join(root, ".als", "log.lock")), before: events.length })
    }
    console.log(
      `a pull that only looks up takes ${duration} ms; kills: ` +
        cases.map((c) => `${c.delay} ms${c.torn ? " torn" : ""}${c.lock ? " lock left" : ""} (${c.before} events)`).join(", "),
    )
    for (let i = 0; i < cases.length; i += 6) {
      await Promise.all(cases.slice(i, i + 6).map((c, j) => expectAppendRepairs(c.root, c.torn, `kill ${i + j} at ${c.delay} ms`, c.before)))
    }
  }, 4 * MIN)

  test("a writer appending small batches, killed at random: lock taken over, torn tail repaired", async () => {
    const writer = join(import.meta.dir, "../../lib/logWriter.ts")
    const cases: Array<{ root: string; torn: boolean; lock: boolean; before: number }> = []
    for (let i = 0; i < 5; i++) {
      const root = await copyStore(template, `writer${i}`)
      const proc = Bun.spawn([process.execPath, writer, root, String(i), "100000", "4"], { stdout: "ignore", stderr: "ignore" })
      left.procs.add(proc)
      // wait until it really appends, then kill it at a random moment
      const start = logSize(root)
      for (let t = 0; logSize(root) === start && t < 5000; t += 5) await sleep(5)
      await sleep(Math.random() * 300)
      proc.kill("SIGKILL")
      await proc.exited
      left.procs.delete(proc)
      expect(logSize(root)).toBeGreaterThan(start)
      const { events, torn } = await expectReadableLog(root, `writer ${i}`)
      cases.push({ root, torn, lock: existsSync(join(root, ".als", "log.lock")), before: events.length })
    }
    console.log(`writers killed: ${cases.map((c) => `${c.before} events${c.torn ? " torn" : ""}${c.lock ? " lock left" : ""}`).join(", ")}`)
    await Promise.all(cases.map((c, i) => expectAppendRepairs(c.root, c.torn, `writer ${i}`, c.before)))
  }, 3 * MIN)
})

describe("a torn tail (an append cut short by a crash)", () => {
  /** The bytes a real next append writes (a pull that finds every layer), and its frames' starts. */
  const nextAppend = async (root: string) => {
    const copy = await copyStore(root, "next")
    const size = logSize(copy)
    const r = await als(["pull", "--root", copy, "--tls-verify=false", ref])
    if (r.exitCode !== 0) throw new Error(describeResult(r))
    const bytes = readFileSync(logFile(copy)).subarray(size)
    const starts = (await readLog(copy)).map((e) => e.offset).filter((o) => o >= size).map((o) => o - size)
    return { bytes, starts }
  }

  test("cut inside the first frame, at a frame's last byte, inside a later frame, or zeros: read, then repaired", async () => {
    const original = await readLog(template)
    const size = logSize(template)
    const { bytes, starts } = await nextAppend(template)
    expect(starts[0]).toBe(0)
    const frameEnd = (starts[1] ?? bytes.length)
    const cuts = [
      { what: "3 bytes of a frame's head", bytes: bytes.subarray(0, 3), keep: 0 },
      { what: "a frame but its last byte", bytes: bytes.subarray(0, frameEnd - 1), keep: 0 },
      ...(starts.length > 2
        ? [{ what: "two whole frames and part of the third", bytes: bytes.subarray(0, starts[2]! + 20), keep: 2 }]
        : []),
      { what: "4096 zero bytes (space allocated, never written)", bytes: new Uint8Array(4096), keep: 0 },
    ]
    for (const cut of cuts) {
      const root = await copyStore(template, "torn")
      appendFileSync(logFile(root), cut.bytes)
      const { events, torn } = await expectReadableLog(root, cut.what)
      expect({ what: cut.what, torn }).toEqual({ what: cut.what, torn: true })
      // what was whole is all there, the torn frame is not shown
      expect(events.length).toBe(original.length + cut.keep)
      expect(events.slice(0, original.length).map((e: AlsLogEvent) => e.id)).toEqual(original.map((e) => e.id))
      const { repaired, log } = await expectAppendRepairs(root, true, cut.what, events.length)
      const cutAt = size + (cut.keep > 0 ? starts[cut.keep]! : 0)
      expect({ what: cut.what, cutAt: repaired!.cutAt, dropped: repaired!.droppedBytes })
        .toEqual({ what: cut.what, cutAt, dropped: size + cut.bytes.length - cutAt })
      // LogRepaired comes first among the new events, right where the torn bytes were
      expect(log[events.length]!.type).toBe("LogRepaired")
      expect(log[events.length]!.offset).toBe(cutAt)
    }
  }, 3 * MIN)

  test("a log cut inside its file header: read as empty, then started over by the next append", async () => {
    const root = await copyStore(template, "header")
    truncateSync(logFile(root), 5)
    const { events, torn } = await expectReadableLog(root, "a 5-byte log")
    expect({ events: events.length, torn }).toEqual({ events: 0, torn: true })
    const { log } = await expectAppendRepairs(root, true, "a 5-byte log", 0)
    expect(log[0]!.type).toBe("LogRepaired")
    expect(eventsOf(log, "PullCompleted").length).toBe(1)
  }, MIN)
})
