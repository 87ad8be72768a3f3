import { afterAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import * as fs from "node:fs"
import type { Event } from "../../../src/events/Events.ts"
import { cleanTempRoots, digest, logFile, tempRoot, withLog } from "./support.ts"

afterAll(cleanTempRoots)

const gcHeap = () => {
  Bun.gc(true)
  return process.memoryUsage().heapUsed // in Bun this includes Buffer memory
}

describe("folding a large log", () => {
  test("1,000,000 events fold in bounded memory, read in chunks", async () => {
    const root = tempRoot()
    const N = 1_000_000
    const BATCH = 20_000
    const batch: Array<Event> = Array.from({ length: BATCH }, (_, i) => ({ _tag: "LayerMissing", layer: digest(i) }))
    const writeStart = performance.now()
    await withLog(root, (log) => Effect.repeatN(log.append(batch, "bulk"), N / BATCH - 1))
    const writeMs = performance.now() - writeStart
    const fileSize = fs.statSync(logFile(root)).size

    const base = gcHeap()
    let peak = 0
    const foldStart = performance.now()
    const cpuStart = process.cpuUsage()
    const { count, sum, last } = await withLog(root, (log) =>
      log.fold({ count: 0, sum: 0, last: -1 }, (s, e) => {
        if (e.index % 200_000 === 199_999) peak = Math.max(peak, gcHeap() - base) // live memory mid-fold
        return { count: s.count + 1, sum: s.sum + e.event._tag.length, last: e.index }
      }))
    const foldMs = performance.now() - foldStart
    const cpu = process.cpuUsage(cpuStart)
    const foldCpuMs = (cpu.user + cpu.system) / 1000
    const after = gcHeap() - base

    expect(count).toBe(N)
    expect(last).toBe(N - 1)
    expect(sum).toBe(N * "LayerMissing".length)
    // Live memory while folding is the 1 MiB read window plus small change: nowhere near the
    // file (a reader that loaded the file, or kept the entries, would be at ≥ fileSize).
    expect(fileSize).toBeGreaterThan(200_000_000)
    expect(peak).toBeLessThan(32 * 1024 * 1024)
    expect(peak).toBeLessThan(fileSize / 8)
    expect(after).toBeLessThan(16 * 1024 * 1024)
    console.log(
      `1M events, ${(fileSize / 1e6).toFixed(0)} MB: batched append ${Math.round(N / (writeMs / 1000)).toLocaleString("en")} events/s (sync off); ` +
        `fold ${Math.round(N / (foldMs / 1000)).toLocaleString("en")} events/s ` +
        `(${Math.round(N / (foldCpuMs / 1000)).toLocaleString("en")} per CPU second; 4 forced GCs included; the machine is shared, so wall time varies); ` +
        `peak live heap +${(peak / 1e6).toFixed(1)} MB`,
    )
  }, 120_000)
})
