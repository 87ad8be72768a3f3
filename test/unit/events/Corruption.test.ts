import { afterAll, describe, expect, test } from "bun:test"
import { Chunk, Effect, Stream } from "effect"
import * as fs from "node:fs"
import { type LogEntry, LogCorrupt } from "../../../src/events/EventLog.ts"
import { cleanTempRoots, failureOf, logFile, sampleEvent, tempRoot, withLog } from "./support.ts"

afterAll(cleanTempRoots)

const N = 10

/** A fresh log of N frames, its entries and bytes. */
const setup = async () => {
  const root = tempRoot()
  const entries: ReadonlyArray<LogEntry> = (await withLog(root, (log) =>
    Effect.forEach(Array.from({ length: N }, (_, i) => i), (i) => log.append([sampleEvent(i)], "w")))).flat()
  const bytes = fs.readFileSync(logFile(root))
  const frame = (i: number) => bytes.subarray(entries[i].offset, i + 1 < N ? entries[i + 1].offset : bytes.length)
  return { root, entries, bytes, frame }
}

const damage = (root: string, bytes: Uint8Array) => fs.writeFileSync(logFile(root), bytes)

/** Reading, folding and verifying a damaged log: the typed errors, the report, and no change to the file. */
const inspect = async (root: string) => {
  const before = fs.readFileSync(logFile(root))
  const streamErr = await failureOf(root, (log) => Stream.runCollect(log.stream()).pipe(Effect.map(Chunk.toArray)))
  const foldErr = await failureOf(root, (log) => log.fold(0, (n) => n + 1))
  const report = await withLog(root, (log) => log.verify())
  expect(fs.readFileSync(logFile(root))).toEqual(before)
  return { streamErr, foldErr, report }
}

const expectCorrupt = (err: unknown, offset: number, index: number, kind: LogCorrupt["kind"]) => {
  expect(err).toBeInstanceOf(LogCorrupt)
  const e = err as LogCorrupt
  expect({ offset: e.offset, index: e.index, kind: e.kind }).toEqual({ offset, index, kind })
  expect(e.message).toContain(`byte ${offset}`)
  expect(e.message).toContain("Run `als audit` to see the damage; the log was not changed")
}

describe("damage in the middle of the log is reported, never skipped", () => {
  test("a flipped byte in a payload: checksum error at that frame", async () => {
    const { root, entries, bytes } = await setup()
    bytes[entries[4].offset + 70] ^= 0x20
    damage(root, bytes)
    const { streamErr, foldErr, report } = await inspect(root)
    expectCorrupt(streamErr, entries[4].offset, 4, "checksum")
    expectCorrupt(foldErr, entries[4].offset, 4, "checksum")
    expect(report.ok).toBe(false)
    expect(report.frames).toBe(N)
    expect(report.problems).toEqual([expect.objectContaining({ offset: entries[4].offset, index: 4, kind: "checksum", tail: false })])
  })

  test("a flipped bit in any header field (length, index, prevHash) is found, even a length that runs past the end", async () => {
    for (const at of [4, 6, 7, 8, 12, 20, 47]) {
      const { root, entries, bytes } = await setup()
      bytes[entries[6].offset + at] ^= 0x01
      damage(root, bytes)
      const { streamErr, report } = await inspect(root)
      expect(streamErr).toBeInstanceOf(LogCorrupt)
      expect((streamErr as LogCorrupt).offset).toBe(entries[6].offset)
      expect(report.problems[0]).toMatchObject({ offset: entries[6].offset, index: 6, tail: false })
      // after the damaged frame, verify finds its way back to the intact ones
      expect(report.head.hash).toBe(entries[N - 1].hash)
    }
  })

  test("a changed stored hash breaks the frame and the link to the next one", async () => {
    const { root, entries, bytes, frame } = await setup()
    const hashAt = entries[3].offset + frame(3).length - 40
    bytes[hashAt] ^= 0xff
    damage(root, bytes)
    const { streamErr, report } = await inspect(root)
    expectCorrupt(streamErr, entries[3].offset, 3, "checksum")
    expect(report.problems.map((p) => [p.offset, p.kind])).toEqual([[entries[3].offset, "checksum"], [entries[4].offset, "chain"]])
  })

  test("a deleted frame: the next frame does not chain", async () => {
    const { root, entries, bytes, frame } = await setup()
    damage(root, Buffer.concat([bytes.subarray(0, entries[4].offset), bytes.subarray(entries[4].offset + frame(4).length)]))
    const { streamErr, report } = await inspect(root)
    expectCorrupt(streamErr, entries[4].offset, 4, "chain")
    expect(report.problems).toEqual([expect.objectContaining({ offset: entries[4].offset, index: 4, kind: "chain" })])
    expect(report.frames).toBe(N - 1)
  })

  test("two swapped frames: chain errors, starting where the first moved frame now is", async () => {
    const { root, entries, bytes, frame } = await setup()
    damage(root, Buffer.concat([bytes.subarray(0, entries[4].offset), frame(5), frame(4), bytes.subarray(entries[6].offset)]))
    const { streamErr, report } = await inspect(root)
    expectCorrupt(streamErr, entries[4].offset, 4, "chain")
    expect(report.problems.length).toBeGreaterThanOrEqual(2)
    expect(report.problems.every((p) => p.kind === "chain" && !p.tail)).toBe(true)
  })

  test("a broken frame marker: framing error, and verify resynchronises on the next intact frame", async () => {
    const { root, entries, bytes, frame } = await setup()
    bytes[entries[2].offset] = 0x00
    damage(root, bytes)
    const { streamErr, report } = await inspect(root)
    expectCorrupt(streamErr, entries[2].offset, 2, "framing")
    expect(report.problems).toEqual([
      expect.objectContaining({ offset: entries[2].offset, kind: "framing", problem: expect.stringContaining(`${frame(2).length} bytes up to the next intact frame`) }),
    ])
    expect(report.frames).toBe(N - 1)
  })

  test("an intact last frame that does not chain (the one before it was removed) is damage, not a torn tail", async () => {
    const { root, entries, bytes } = await setup()
    damage(root, Buffer.concat([bytes.subarray(0, entries[N - 2].offset), bytes.subarray(entries[N - 1].offset)]))
    const before = fs.readFileSync(logFile(root))
    const err = await failureOf(root, (log) => log.append([sampleEvent(99)], "x"))
    expectCorrupt(err, entries[N - 2].offset, N - 2, "chain")
    expect(fs.readFileSync(logFile(root))).toEqual(before)
    const { streamErr } = await inspect(root)
    expectCorrupt(streamErr, entries[N - 2].offset, N - 2, "chain")
  })

  test("a file that is not an als log, or a newer format, is refused by readers and appenders alike", async () => {
    for (const content of ["#!/bin/sh\necho hello\n", "ALSLOG\u0000\u0002"]) {
      const root = tempRoot()
      await withLog(root, () => Effect.void)
      fs.writeFileSync(logFile(root), content)
      const appendErr = await failureOf(root, (log) => log.append([sampleEvent(1)], "x"))
      const { streamErr, report } = await inspect(root)
      for (const e of [appendErr, streamErr]) expectCorrupt(e, 0, 0, "framing")
      expect(report.ok).toBe(false)
      expect(fs.readFileSync(logFile(root), "latin1")).toBe(content)
      if (content.startsWith("ALSLOG")) expect(appendErr.message).toContain("format version 2")
    }
  })

  test("appends check only the tail: mid-log damage stays for verify to find", async () => {
    const { root, entries, bytes } = await setup()
    bytes[entries[1].offset + 70] ^= 0x20
    damage(root, bytes)
    await withLog(root, (log) => log.append([sampleEvent(42)], "x"))
    const report = await withLog(root, (log) => log.verify())
    expect(report.problems).toEqual([expect.objectContaining({ offset: entries[1].offset, kind: "checksum" })])
    expect(report.frames).toBe(N + 1)
  })
})
