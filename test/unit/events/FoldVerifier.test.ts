import { afterAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import * as fs from "node:fs"
import { type FoldEntry, LogCorrupt, type LogEntry } from "../../../src/events/EventLog.ts"
import { startVerifier } from "../../../src/events/FoldVerifier.ts"
import { cleanTempRoots, failureOf, logFile, sampleEvent, tempRoot, withLog } from "./support.ts"

afterAll(cleanTempRoots)

const N = 3000
const threaded = { verifyThread: true, verifyThreadMinBytes: 0 }
const oneThread = { verifyThread: false }

/** A log of N frames (appended in batches) and its entries. */
const setup = async () => {
  const root = tempRoot()
  const entries: ReadonlyArray<LogEntry> = (await withLog(root, (log) =>
    Effect.forEach(Array.from({ length: N / 100 }, (_, b) => b), (b) =>
      log.append(Array.from({ length: 100 }, (_, i) => sampleEvent(b * 100 + i)), `w${b}`)))).flat()
  return { root, entries, size: fs.statSync(logFile(root)).size }
}

const collect = (root: string, opts: object) =>
  withLog(root, (log) => log.fold([] as Array<FoldEntry>, (a, e) => (a.push(e), a)), opts)

/** Waits (up to 10 s) for the verifier to reach `expected`, then a little longer: where it stays. */
const settleAt = async (v: { verifiedEnd(): number }, expected: number) => {
  for (let i = 0; i < 1000 && v.verifiedEnd() !== expected; i++) await Bun.sleep(10)
  await Bun.sleep(200)
  return v.verifiedEnd()
}

describe("fold with checksums checked on a second thread", () => {
  test("the worker vouches for every frame of an intact log, and the fold sees what a one-thread fold sees", async () => {
    const { root, entries, size } = await setup()
    const v = startVerifier(logFile(root), entries[0].offset, size)
    expect(v).toBeDefined()
    expect(await settleAt(v!, size)).toBe(size)
    v!.stop()
    const withThread = await collect(root, threaded)
    expect(withThread).toEqual(await collect(root, oneThread))
    expect(withThread.length).toBe(N)
  })

  test("a changed payload byte deep in the log: the worker stops before that frame, the fold fails there as it does on one thread", async () => {
    const { root, entries, size } = await setup()
    const bad = 2222
    const bytes = fs.readFileSync(logFile(root))
    bytes[entries[bad].offset + 60] ^= 0x01
    fs.writeFileSync(logFile(root), bytes)

    const v = startVerifier(logFile(root), entries[0].offset, size)
    expect(await settleAt(v!, entries[bad].offset)).toBe(entries[bad].offset)
    v!.stop()

    for (const opts of [threaded, oneThread]) {
      const err = await failureOf(root, (log) => log.fold(0, (n) => n + 1), opts)
      expect(err).toBeInstanceOf(LogCorrupt)
      expect({ offset: (err as LogCorrupt).offset, index: (err as LogCorrupt).index, kind: (err as LogCorrupt).kind })
        .toEqual({ offset: entries[bad].offset, index: bad, kind: "checksum" })
    }
  })

  test("a torn tail: both folds stop quietly before it, with the same entries", async () => {
    const { root, entries } = await setup()
    fs.truncateSync(logFile(root), entries[N - 1].offset + 30)
    const withThread = await collect(root, threaded)
    expect(withThread.length).toBe(N - 1)
    expect(withThread).toEqual(await collect(root, oneThread))
  })

  test("a frame swapped for an intact one from elsewhere (checksums hold, the chain does not): caught by the reader's own checks", async () => {
    const { root, entries } = await setup()
    const bytes = fs.readFileSync(logFile(root))
    const frame = (i: number) => bytes.subarray(entries[i].offset, entries[i + 1].offset)
    const [a, b] = [frame(1500), frame(1501)]
    const swapped = Buffer.concat([bytes.subarray(0, entries[1500].offset), b, a, bytes.subarray(entries[1502].offset)])
    fs.writeFileSync(logFile(root), swapped)
    const err = await failureOf(root, (log) => log.fold(0, (n) => n + 1), threaded)
    expect(err).toBeInstanceOf(LogCorrupt)
    expect((err as LogCorrupt).kind).toBe("chain")
    expect((err as LogCorrupt).offset).toBe(entries[1500].offset)
  })
})
