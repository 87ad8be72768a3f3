// Event log throughput, through src/events/EventLog.ts itself: N events appended in batches
// (fdatasync off: this measures framing, encoding and hashing, not the disk), then folded: with
// a reducer that counts events by type (reading, checking and decoding every frame), as `als`
// folds (checksums on a second thread under Bun: src/events/FoldVerifier.ts) and on one thread,
// and with the store projection `als ls` uses (Projection.evolve). The first fold of the
// process is reported apart: it also pays for compiling the reader. Run in its own process (a
// clean heap):
//
//   bun bench/LogRate.ts [--events 1000000] [--batch 1000] [--dir /var/tmp]   → one JSON line

import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import { EventLog, EventLogFile, IdsLive, logPath, makeEventLogFile } from "../src/events/EventLog.ts"
import type { Event } from "../src/events/Events.ts"
import { evolve, initialState } from "../src/events/Projection.ts"

export interface LogRateResult {
  readonly events: number
  readonly batch: number
  readonly logBytes: number
  /** events per second of wall time, and per second of this process's CPU time (user + sys):
   * on a loaded machine the second is the one that says what the code costs */
  readonly appendPerSec: number
  readonly appendPerCpuSec: number
  /** the first fold of the process (as `als ls` runs it); the others run after it */
  readonly foldFirstPerSec: number
  readonly foldCountPerSec: number
  readonly foldCountPerCpuSec: number
  /** the same fold with every checksum on the fold's own thread */
  readonly foldOneThreadPerSec: number
  readonly foldOneThreadPerCpuSec: number
  readonly foldProjectPerSec: number
  readonly foldProjectPerCpuSec: number
  /** heap growth during the counting fold (MB): reading must not hold the log */
  readonly foldHeapGrowthMB: number
}

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt
}

/** Runs `f`, returning its result with the wall and CPU seconds it took. */
const timed = function*<A, E, R>(f: Effect.Effect<A, E, R>) {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  const value = yield* f
  const c = process.cpuUsage(c0)
  return { value, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 }
}

const hex = (n: number, salt: string) => `sha256:${(salt + n.toString(16)).padStart(64, "0").slice(-64)}`

/** A pull of a 3-layer image, as `als pull` logs it: 15 events. Layers repeat across pulls. */
const pullEvents = (i: number): Event[] => {
  const ref = `registry.example/team/app${i % 50}:v${i % 7}`
  const layers = [0, 1, 2].map((k) => hex((i * 3 + k) % 3000, "a"))
  const out: Event[] = [
    { _tag: "PullRequested", ref, platform: "linux/amd64" },
    {
      _tag: "ManifestResolved",
      ref,
      manifestDigest: hex(i, "b"),
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      platform: "linux/amd64",
      configDigest: hex(i, "c"),
      layers: layers.map((d, k) => ({ digest: d, size: 1_000_000 + k, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: hex(k + i, "d") })),
    },
  ]
  for (const [k, layer] of layers.entries()) {
    out.push({ _tag: "LookupRequested", layer, ref })
    if (k === 0) {
      out.push({ _tag: "LayerFound", layer, path: `/var/lib/als/${layer}` })
      continue
    }
    out.push(
      { _tag: "BlobFetched", layer, bytes: 1_000_000 + k, ms: 120 },
      { _tag: "LayerExtracted", layer, diffId: hex(k + i, "d"), files: 1200, bytes: 3_000_000 },
      { _tag: "LayerCommitted", layer, diffId: hex(k + i, "d"), diffSize: 3_100_000, blobSize: 1_000_000 + k, source: "pull" },
    )
  }
  out.push(
    { _tag: "RefIndexed", ref, layers },
    { _tag: "PullCompleted", ref, manifestDigest: hex(i, "b"), found: 1, linked: 0, pulled: 2, bytesFetched: 2_000_003, ms: 900 },
  )
  return out
}

export const measureLogRate = (events: number, batch: number, dir: string) =>
  Effect.gen(function*() {
    const log = yield* EventLog
    // the events are made before the clock starts: only the log's work is timed
    const batches: Event[][] = []
    let current: Event[] = []
    for (let i = 0, n = 0; n < events; i++) {
      for (const e of pullEvents(i)) {
        if (n++ >= events) break
        current.push(e)
        if (current.length === batch) {
          batches.push(current)
          current = []
        }
      }
    }
    if (current.length > 0) batches.push(current)

    const append = yield* timed(Effect.forEach(batches, (b) => log.append(b, "bench"), { discard: true }))
    batches.length = 0

    // counts by type: the reducer reads every event, as any real fold does
    const byTag = (m: Map<string, number>, e: { readonly event: Event }) => m.set(e.event._tag, (m.get(e.event._tag) ?? 0) + 1)
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
    const oneThreadFold = Effect.scoped(Effect.gen(function*() {
      const oneThreadLog = yield* makeEventLogFile(dir, { sync: false, verifyThread: false })
      return yield* timed(oneThreadLog.fold(new Map<string, number>(), byTag))
    })).pipe(Effect.provide(IdsLive))
    const check = (what: string, m: Map<string, number>) => {
      if (total(m) !== events) throw new Error(`${what} saw ${total(m)} events, ${events} were appended`)
    }

    // the first fold of a fresh process, as `als ls` runs it (code not compiled yet)
    Bun.gc(true)
    const heap0 = process.memoryUsage().heapUsed
    const first = yield* timed(log.fold(new Map<string, number>(), byTag))
    const heapGrowth = (process.memoryUsage().heapUsed - heap0) / 1e6
    check("first fold", first.value)
    // then, the reader compiled, the two ways in turn
    const oneThread = yield* oneThreadFold
    check("one-thread fold", oneThread.value)
    const count = yield* timed(log.fold(new Map<string, number>(), byTag))
    check("fold", count.value)

    const project = yield* timed(log.fold(initialState, evolve))
    if (project.value.events !== events) throw new Error(`projection saw ${project.value.events} events, ${events} were appended`)
    const rate = (s: number) => Math.round(events / s)

    return {
      events,
      batch,
      logBytes: statSync(logPath(dir)).size,
      appendPerSec: rate(append.wall),
      appendPerCpuSec: rate(append.cpu),
      foldFirstPerSec: rate(first.wall),
      foldCountPerSec: rate(count.wall),
      foldCountPerCpuSec: rate(count.cpu),
      foldOneThreadPerSec: rate(oneThread.wall),
      foldOneThreadPerCpuSec: rate(oneThread.cpu),
      foldProjectPerSec: rate(project.wall),
      foldProjectPerCpuSec: rate(project.cpu),
      foldHeapGrowthMB: Math.round(heapGrowth * 10) / 10,
    } satisfies LogRateResult
  })

if (import.meta.main) {
  const events = Number(arg("events", "1000000"))
  const batch = Number(arg("batch", "1000"))
  const dir = mkdtempSync(join(arg("dir", "/var/tmp"), "als-bench-log-"))
  try {
    const result = await Effect.runPromise(
      measureLogRate(events, batch, dir).pipe(Effect.provide(EventLogFile(dir, { sync: false }).pipe(Layer.provide(IdsLive)))),
    )
    console.log(JSON.stringify(result))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
