/**
 * The reviewer's views of the log (pure): a workflow grouped with +ms offsets and per-layer
 * durations, and the counters as statistics, over the whole log or from --since on.
 */
import { describe, expect, test } from "bun:test"
import type { LogEntry } from "../../../src/events/EventLog.ts"
import type { Event } from "../../../src/events/Events.ts"
import { groupByWorkflow, logStats, renderStats, renderWorkflow } from "../../../src/audit/LogReview.ts"

const L = `sha256:${"1".repeat(64)}`
const M = `sha256:${"2".repeat(64)}`
let offset = 8
const at = (time: number, event: Event, workflow = "wf-aaaaaaaa-1"): LogEntry => ({
  offset: (offset += 100),
  index: 0,
  hash: "",
  envelope: { id: "i", time, host: "h", pid: 1, workflow, v: 1 },
  event,
})

const pull: Array<LogEntry> = [
  at(1000, { _tag: "PullRequested", ref: "r:1", platform: "linux/amd64" }),
  at(1010, { _tag: "LookupRequested", layer: L, ref: "r:1" }),
  at(1012, { _tag: "LookupRequested", layer: M, ref: "r:1" }),
  at(1020, { _tag: "LayerFound", layer: M, path: "/s/x" }),
  at(1100, { _tag: "BlobFetched", layer: L, bytes: 500, ms: 80 }),
  at(1150, { _tag: "LayerCommitted", layer: L, diffId: L, diffSize: 9, blobSize: 500, source: "pull" }),
  at(1160, { _tag: "RefIndexed", ref: "r@sha256:9", layers: [L, M] }),
  at(1170, { _tag: "PullCompleted", ref: "r:1", manifestDigest: L, found: 1, linked: 0, pulled: 1, bytesFetched: 500, ms: 170 }),
]

describe("grouped view", () => {
  test("a headline, steps at +ms, layer steps indented, each layer's time from lookup to its end", () => {
    const lines = renderWorkflow(pull)
    expect(lines[0]).toMatch(/^\S+ \S+  pull r:1 \(linux\/amd64\)  ok: 1 found, 0 linked, 1 pulled, 500 B fetched  in 170 ms  \(workflow wf-aaaaa\)$/)
    expect(lines[1]).toBe("     +0 ms  PullRequested")
    expect(lines[4]).toBe("    +20 ms    222222222222  LayerFound          found  (layer done in 8 ms)")
    expect(lines[6]).toBe("   +150 ms    111111111111  LayerCommitted      committed (pull)  (layer done in 140 ms)")
    expect(lines[7]).toBe("   +160 ms  RefIndexed                          2 layers  r@sha256:9")
  })

  test("workflows are grouped in order of their first event; events of no workflow stand alone", () => {
    const other = at(1005, { _tag: "LookupRequested", layer: M }, "wf-2")
    const lone = at(1006, { _tag: "StoreInitialized", root: "/s", alsVersion: "0" }, "")
    const g = groupByWorkflow([pull[0]!, other, lone, ...pull.slice(1)])
    expect(g.map((x) => (x.kind === "workflow" ? `${x.workflow}:${x.entries.length}` : "single"))).toEqual(["wf-aaaaaaaa-1:8", "wf-2:1", "single"])
  })
})

describe("statistics", () => {
  test("bytes fetched against bytes found (known sizes) and linked; failures by code", () => {
    const later: Array<LogEntry> = [
      at(2000, { _tag: "PullRequested", ref: "r:1", platform: "linux/amd64" }, "w2"),
      at(2001, { _tag: "LayerFound", layer: L, path: "/s/x" }, "w2"),
      at(2002, { _tag: "LayerCommitted", layer: M, diffId: M, diffSize: 1, blobSize: 70, source: "link", pool: "/p" }, "w2"),
      at(2003, { _tag: "PullFailed", ref: "r:1", reason: { code: "Unauthorized", message: "no" } }, "w2"),
    ]
    const st = logStats([...pull, ...later])
    expect(st.pulls).toEqual({ requested: 2, completed: 1, failed: 1 })
    expect(st.bytes).toEqual({ fetched: 500, found: 500, linked: 70 })
    expect(st.failuresByCode).toEqual({ Unauthorized: 1 })
    // from 2000 on: only the second pull counts, but the size of the layer it found is known
    const since = logStats([...pull, ...later], 2000)
    expect(since.events).toBe(4)
    expect(since.pulls).toEqual({ requested: 1, completed: 0, failed: 1 })
    expect(since.bytes).toEqual({ fetched: 0, found: 500, linked: 70 })
    expect(renderStats(since).join("\n")).toContain("failures:  Unauthorized 1")
  })
})
