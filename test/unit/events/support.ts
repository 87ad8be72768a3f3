/** Shared helpers for the event log tests. */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { EventLog, EventLogFile, type EventLogOptions, IdsSequential, type LogError } from "../../../src/events/EventLog.ts"
import type { Event } from "../../../src/events/Events.ts"

export const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, "0")}`

/** A varied, valid event for number `i`. */
export const sampleEvent = (i: number): Event => {
  switch (i % 6) {
    case 0:
      return { _tag: "LookupRequested", layer: digest(i), ref: "docker.io/library/alpine:3", annotations: { n: String(i) } }
    case 1:
      return { _tag: "PoolProbed", layer: digest(i), pool: "/pool", kind: "seed", path: `/pool/${i}`, hit: i % 2 === 0 }
    case 2:
      return { _tag: "BlobFetched", layer: digest(i), bytes: i * 1000, ms: 1.5 }
    case 3:
      return { _tag: "LayerCommitted", layer: digest(i), diffId: digest(i + 1), diffSize: i, blobSize: i * 2, source: "pull", tocDigest: undefined }
    case 4:
      return { _tag: "PullFailed", ref: "r:1", reason: { code: "DigestMismatch", message: `blob ${i} — ünïcödé ✓` } }
    default:
      return { _tag: "RefIndexed", ref: `registry.example/app:${i}`, layers: [digest(i), digest(i + 1)] }
  }
}

export const tempRoots: Array<string> = []

export const tempRoot = (): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-events-"))
  tempRoots.push(dir)
  return dir
}

export const cleanTempRoots = () => {
  for (const d of tempRoots.splice(0)) fs.rmSync(d, { recursive: true, force: true })
}

export const logFile = (root: string) => path.join(root, ".als", "log")

export const fileLayer = (root: string, opts?: EventLogOptions) =>
  EventLogFile(root, { sync: false, ...opts }).pipe(Layer.provide(IdsSequential("t")))

/** Runs `f` against the log at `root` (a fresh open each time, like a new process). */
export const withLog = <A>(
  root: string,
  f: (log: typeof EventLog.Service) => Effect.Effect<A, LogError>,
  opts?: EventLogOptions,
): Promise<A> => Effect.runPromise(Effect.flatMap(EventLog, f).pipe(Effect.provide(fileLayer(root, opts))))

/** Like withLog, but resolves to the failure (or throws if there was none). */
export const failureOf = <A>(
  root: string,
  f: (log: typeof EventLog.Service) => Effect.Effect<A, LogError>,
  opts?: EventLogOptions,
): Promise<LogError> => Effect.runPromise(Effect.flip(Effect.flatMap(EventLog, f).pipe(Effect.provide(fileLayer(root, opts)))))
