import { describe, expect, test } from "bun:test"
import { Buffer } from "node:buffer"
import { Chunk, Effect, Layer, Stream } from "effect"
import { EventLog, EventLogOn, IdsSequential, LogDecodeError, MemoryStore } from "../../../src/events/EventLog.ts"
import { FILE_HEADER, frameSize, GENESIS, writeFrame } from "../../../src/events/LogFormat.ts"
import { encodeRawPayload } from "../../../src/events/Payload.ts"

const env = { id: "old-1", time: 1_600_000_000_000, host: "old-host", pid: 7, workflow: "pull-1" }
const D = "sha256:" + "c".repeat(64)

/** A log made of raw payloads, as an older (or newer) als would have written them. */
const rawLog = (payloads: ReadonlyArray<Buffer>): MemoryStore => {
  const store = new MemoryStore()
  const out = Buffer.alloc(8 + payloads.reduce((n, p) => n + frameSize(p.length), 0))
  FILE_HEADER.copy(out)
  let at = 8
  let prev: Uint8Array = GENESIS
  payloads.forEach((p, i) => {
    const hashAt = writeFrame(out, at, i, prev, p)
    prev = out.subarray(hashAt, hashAt + 32)
    at += frameSize(p.length)
  })
  store.append(out)
  return store
}

const read = (store: MemoryStore) =>
  Effect.runPromise(
    Effect.flatMap(EventLog, (log) =>
      Effect.all({
        entries: Effect.either(Stream.runCollect(log.stream()).pipe(Effect.map(Chunk.toArray))),
        folded: Effect.either(log.fold(0, (n) => n + 1)),
        report: log.verify(),
        appended: log.append([{ _tag: "LayerMissing", layer: D }], "now"),
      })).pipe(Effect.provide(EventLogOn(store).pipe(Layer.provide(IdsSequential())))),
  )

const v1Commit = encodeRawPayload("LayerCommitted", 1, env, { layer: D, diffId: D, diffSize: 10, blobSize: 5 })

describe("reading old and unknown event shapes", () => {
  test("a v1 LayerCommitted frame (no source) reads as v2 with source \"pull\"; the envelope keeps v1", async () => {
    const { entries, report, appended } = await read(rawLog([v1Commit]))
    if (entries._tag === "Left") throw entries.left
    expect(entries.right[0].event).toEqual({ _tag: "LayerCommitted", layer: D, diffId: D, diffSize: 10, blobSize: 5, source: "pull" })
    expect(entries.right[0].envelope).toEqual({ ...env, v: 1 })
    // the strict (schema) decode of verify accepts the upcast event too
    expect(report).toMatchObject({ ok: true, frames: 1 })
    // and today's appends chain onto the old frames
    expect(appended[0].index).toBe(1)
  })

  const undecodable = [
    ["an unknown event type", encodeRawPayload("LayerTeleported", 1, env, { layer: D }), "unknown event type \"LayerTeleported\""],
    ["a version newer than this build knows", encodeRawPayload("LayerCommitted", 3, env, { layer: D }), "LayerCommitted v3 is newer"],
    ["an envelope without its fields", encodeRawPayload("LayerMissing", 1, { id: "x" } as never, { layer: D }), "envelope lacks"],
  ] as const
  for (const [what, payload, says] of undecodable) {
    test(`${what}: a decode error naming the frame's offset; verify reports it as "decode"`, async () => {
      const store = rawLog([v1Commit, payload])
      const secondOffset = 8 + frameSize(v1Commit.length)
      const { entries, folded, report } = await read(store)
      for (const r of [entries, folded]) {
        expect(r._tag).toBe("Left")
        const err = (r as { left: unknown }).left as LogDecodeError
        expect(err).toBeInstanceOf(LogDecodeError)
        expect({ offset: err.offset, index: err.index }).toEqual({ offset: secondOffset, index: 1 })
        expect(err.message).toContain(`byte ${secondOffset}`)
        expect(err.problem).toContain(says)
      }
      expect(report.problems).toEqual([expect.objectContaining({ offset: secondOffset, index: 1, kind: "decode" })])
    })
  }

  test("verify's schema decode catches a field of the wrong type that the fast path lets through", async () => {
    const bad = encodeRawPayload("BlobFetched", 1, env, { layer: D, bytes: "many", ms: 1 })
    const { entries, report } = await read(rawLog([bad]))
    expect(entries._tag).toBe("Right")
    expect(report.problems).toEqual([expect.objectContaining({ offset: 8, kind: "decode", problem: expect.stringContaining("BlobFetched") })])
  })
})
