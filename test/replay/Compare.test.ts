/**
 * The comparison `als replay` makes, on hand-made event lists: what may differ (volatile
 * fields, the interleaving of parallel layers) and what must not (order within a layer or the
 * image, any other field).
 */
import { describe, expect, test } from "bun:test"
import type { Event } from "../../src/events/Events.ts"
import { compareEvents, describeDifference } from "../../src/replay/Compare.ts"
import { normalizeEvents, type RawEvent, VOLATILE_FIELDS } from "../../src/replay/Volatile.ts"

const A = `sha256:${"a".repeat(64)}`
const B = `sha256:${"b".repeat(64)}`

let n = 0
const ev = (event: Event, workflow = "wf-x", extra: Partial<{ time: number; host: string; pid: number }> = {}): RawEvent & {
  envelope: { id: string; time: number; host: string; pid: number; workflow: string; v: number }
} => ({
  envelope: { id: `id-${++n}`, time: extra.time ?? 1000 + n, host: extra.host ?? "h1", pid: extra.pid ?? 1, workflow, v: 1 },
  event,
})

const layerEvents = (layer: string, bytes: number): Array<Event> => [
  { _tag: "LookupRequested", layer, ref: "r:1" },
  { _tag: "PoolProbed", layer, pool: "/store/.pool", kind: "seed", path: `/store/.pool/x/rootfs.${layer}`, hit: false },
  { _tag: "LayerMissing", layer },
  { _tag: "BlobFetched", layer, bytes, ms: 12 },
  { _tag: "LayerCommitted", layer, diffId: layer, diffSize: 10, blobSize: bytes, source: "pull" },
]

const pull = (order: "ab" | "interleaved", root: string, wf: string, ms = 5): Array<RawEvent> => {
  const a = layerEvents(A, 100).map((e) =>
    e._tag === "PoolProbed" ? { ...e, pool: `${root}/.pool`, path: `${root}/.pool/x/rootfs.${A}` } : e
  )
  const b = layerEvents(B, 200).map((e) =>
    e._tag === "PoolProbed" ? { ...e, pool: `${root}/.pool`, path: `${root}/.pool/x/rootfs.${B}` } : e
  )
  const layers = order === "ab" ? [...a, ...b] : a.flatMap((e, i) => [e, b[i]!])
  const events: Array<Event> = [
    { _tag: "PullRequested", ref: "r:1", platform: "linux/amd64" },
    { _tag: "ManifestResolved", ref: "r:1", manifestDigest: A, mediaType: "m", platform: "linux/amd64", configDigest: B, layers: [] },
    ...layers,
    { _tag: "RefIndexed", ref: "r:1", layers: [A, B] },
    { _tag: "PullCompleted", ref: "r:1", manifestDigest: A, found: 0, linked: 0, pulled: 2, bytesFetched: 300, ms },
  ]
  return events.map((e) => ev(e, wf))
}

describe("compareEvents", () => {
  test("given the same pull with other ids, times, hosts, workflow ids, durations and store root, then no difference", () => {
    const recorded = normalizeEvents(pull("ab", "/tmp/rec-root", "wf-1"), "/tmp/rec-root")
    const replayed = normalizeEvents(
      pull("ab", "/tmp/other", "wf-2", 999).map((e) => ({ ...e, envelope: { ...e.envelope, workflow: "wf-2" } })),
      "/tmp/other",
    )
    expect(compareEvents(recorded, replayed)).toEqual([])
    expect(VOLATILE_FIELDS.BlobFetched).toEqual(["ms"])
  })

  test("given layers that interleaved otherwise (parallel jobs), then no difference", () => {
    const recorded = normalizeEvents(pull("ab", "/r", "w"), "/r")
    const replayed = normalizeEvents(pull("interleaved", "/r", "w"), "/r")
    expect(compareEvents(recorded, replayed)).toEqual([])
  })

  test("given a field that differs, then the difference names event index, field, recorded and replayed values", () => {
    const recorded = normalizeEvents(pull("ab", "/r", "w"), "/r")
    const changed = pull("ab", "/r", "w")
    const i = changed.findIndex((e) => e.event._tag === "BlobFetched" && e.event.layer === B)
    changed[i] = { ...changed[i]!, event: { ...(changed[i]!.event as Event & { _tag: "BlobFetched" }), bytes: 201 } }
    const diffs = compareEvents(recorded, normalizeEvents(changed, "/r"))
    expect(diffs).toHaveLength(1)
    expect(diffs[0]).toMatchObject({ field: "bytes", recorded: 200, replayed: 201, recordedIndex: i, replayedIndex: i })
    expect(describeDifference(diffs[0]!)).toBe(
      `w1 layer bbbbbbbbbbbb, step 3 (recorded event #${i} BlobFetched, replayed event #${i} BlobFetched): bytes: recorded 200, replayed 201`,
    )
  })

  test("given a path outside the store root, then it is compared as is", () => {
    const a = normalizeEvents([ev({ _tag: "LayerFound", layer: A, path: "/elsewhere/x" })], "/r")
    const b = normalizeEvents([ev({ _tag: "LayerFound", layer: A, path: "/r/x" })], "/r")
    expect(compareEvents(a, b).map((d) => [d.field, d.recorded, d.replayed])).toEqual([["path", "/elsewhere/x", "<root>/x"]])
  })

  test("given steps of one layer swapped, then both positions differ", () => {
    const recorded = pull("ab", "/r", "w")
    const swapped = [...recorded]
    const i = swapped.findIndex((e) => e.event._tag === "LayerMissing" && e.event.layer === A)
    ;[swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!]
    const diffs = compareEvents(normalizeEvents(recorded, "/r"), normalizeEvents(swapped, "/r"))
    expect(diffs.map((d) => [d.stream, d.step, d.recorded, d.replayed])).toEqual([
      [`w1 layer ${A}`, 2, "LayerMissing", "BlobFetched"],
      [`w1 layer ${A}`, 3, "BlobFetched", "LayerMissing"],
    ])
  })

  test("given a layer event moved after the image's end, then its phase differs", () => {
    const recorded = pull("ab", "/r", "w")
    const moved = [...recorded]
    const i = moved.findIndex((e) => e.event._tag === "LayerCommitted" && e.event.layer === B)
    const [committed] = moved.splice(i, 1)
    moved.push(committed!)
    const diffs = compareEvents(normalizeEvents(recorded, "/r"), normalizeEvents(moved, "/r"))
    expect(diffs.map((d) => [d.field, d.recorded, d.replayed])).toEqual([["(image events before it)", 2, 4]])
  })

  test("given a missing and an extra event, then each is named with the side that has it", () => {
    const recorded = pull("ab", "/r", "w")
    const fewer = recorded.filter((e) => e.event._tag !== "RefIndexed")
    const extra = [...recorded, ev({ _tag: "LayerRemoved", layer: A, reason: "x" }, "w")]
    const missing = compareEvents(normalizeEvents(recorded, "/r"), normalizeEvents(fewer, "/r"))
    expect(missing.map(describeDifference)).toEqual([
      `w1 image, step 2 (recorded event #${recorded.length - 2} RefIndexed, replayed event #${fewer.length - 1} PullCompleted): recorded "RefIndexed", replayed "PullCompleted"`,
      `w1 image, step 3 (recorded event #${recorded.length - 1} PullCompleted, no replayed event): recorded "PullCompleted", replayed nothing`,
    ])
    const added = compareEvents(normalizeEvents(recorded, "/r"), normalizeEvents(extra, "/r"))
    expect(added).toHaveLength(1)
    expect(added[0]).toMatchObject({ replayedIndex: recorded.length, replayedType: "LayerRemoved", recorded: undefined })
  })

  test("given two pulls whose events came in other workflows, then the mismatch is named", () => {
    const one = [...pull("ab", "/r", "w1"), ...pull("ab", "/r", "w2")]
    const merged = one.map((e) => ({ ...e, envelope: { ...e.envelope, workflow: "same" } }))
    expect(compareEvents(normalizeEvents(one, "/r"), normalizeEvents(merged, "/r")).length).toBeGreaterThan(0)
  })
})
