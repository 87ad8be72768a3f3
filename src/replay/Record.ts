/**
 * `als pull --record DIR`: the same pull, composed with recording implementations of what it
 * takes from outside (the registry transport, the clock, the ids) and a reporter that keeps the
 * events it writes. The workflow code does not know it is being recorded.
 *
 * The command builds its layers from `PullSeams`; without --record it gets `liveSeams`.
 */
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import process from "node:process"
import * as path from "node:path"
import { UsageError } from "../domain/UsageError.ts"
import type { LogEntry } from "../events/EventLog.ts"
import { Ids, IdsLive } from "../events/Ids.ts"
import { Reporter } from "../events/Journal.ts"
import { RegistryTransport } from "../registry/RegistryTransport.ts"
import { parseSourceSpec } from "../sources/SourceSpec.ts"
import { Syscalls, type SyscallsApi, SyscallsLive } from "../sys/Syscalls.ts"
import { ALS_VERSION } from "../version.ts"
import {
  type Exchange,
  RECORDING_FORMAT,
  RECORDING_VERSION,
  RecordingError,
  type RecordedEvent,
  type RecordedLayer,
  recordingFiles,
  type RecordingManifest,
  writeJson,
  writeNdjson,
  writeFileAtomic,
} from "./Recording.ts"
import { makeRecordingTransport } from "./RecordingTransport.ts"
import { recordingClock, recordingIds } from "./Tape.ts"
import { fingerprintTree, treeDigest, treeText } from "./TreeFingerprint.ts"

/** The services a pull takes from outside, as the pull command composes them. */
export interface PullSeams {
  readonly transport: Layer.Layer<RegistryTransport>
  readonly ids: Layer.Layer<Ids>
  /** wraps the reporter the command chose */
  readonly reporter: (r: Layer.Layer<Reporter>) => Layer.Layer<Reporter>
}

export const liveSeams: PullSeams = { transport: RegistryTransport.Live, ids: IdsLive, reporter: (r) => r }

/** A reporter that hands every entry to `inner` and keeps it in `into`. */
export const capturingReporter = (inner: Layer.Layer<Reporter>, into: Array<LogEntry>): Layer.Layer<Reporter> =>
  Layer.effect(
    Reporter,
    Effect.map(Reporter, (r) => ({
      event: (e: LogEntry) => {
        into.push(e)
        r.event(e)
      },
      ...(r.progress ? { progress: r.progress } : {}),
    })),
  ).pipe(Layer.provide(inner))

export interface RecordRequest {
  /** the store root the pull runs in */
  readonly root: string
  readonly refs: ReadonlyArray<string>
  readonly platform: Option.Option<string>
  readonly jobs: number
  readonly tlsVerify: boolean
  readonly pools: ReadonlyArray<string>
  /** say what was recorded on stderr */
  readonly quiet?: boolean
}

const checkRequest = (dir: string, req: RecordRequest) =>
  Effect.gen(function*() {
    if (req.pools.length > 0) {
      return yield* new UsageError({
        message: `--record with --pool: a recording holds registry exchanges, not the pools' files, so it could not be replayed; record without --pool`,
      })
    }
    for (const r of req.refs) {
      let kind = "registry"
      try {
        kind = parseSourceSpec(r).kind
      } catch {
        // the pull itself says what is wrong with it
      }
      if (kind !== "registry") {
        return yield* new UsageError({
          message: `--record ${r}: only registry pulls can be recorded (a local ${kind} source is read from files, which a recording does not hold)`,
        })
      }
    }
    let names: Array<string> = []
    try {
      names = fs.existsSync(dir) ? fs.readdirSync(dir) : []
    } catch (e) {
      return yield* new UsageError({ message: `--record ${dir}: ${(e as Error).message}; record into a new or empty directory` })
    }
    if (names.length > 0) {
      return yield* new UsageError({ message: `--record ${dir}: the directory is not empty; record into a new or empty directory` })
    }
  })

/**
 * Runs `pull` with recording seams and writes the recording into `dir`, whether the pull
 * succeeds or fails (a failed pull replays too). Without `dir`, runs it with the live seams.
 */
export const withRecording = <A, E, R>(
  dir: Option.Option<string>,
  req: RecordRequest,
  pull: (seams: PullSeams) => Effect.Effect<A, E, R>,
): Effect.Effect<A, E | UsageError | RecordingError, R> => {
  if (Option.isNone(dir)) return pull(liveSeams)
  const out = path.resolve(dir.value)
  return Effect.gen(function*() {
    yield* checkRequest(out, req)
    const files = recordingFiles(out)
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(files.blobs, { recursive: true })
        fs.mkdirSync(files.trees, { recursive: true })
      },
      catch: (e) => new RecordingError({ dir: out, problem: `cannot create it: ${(e as Error)?.message ?? e}` }),
    })
    const live = yield* Effect.provide(RegistryTransport, RegistryTransport.Live)
    const transport = makeRecordingTransport(out, live.fetch)
    const readings: Array<number> = []
    const ids: Array<string> = []
    const entries: Array<LogEntry> = []
    const seams: PullSeams = {
      transport: Layer.succeed(RegistryTransport, { fetch: transport.fetch }),
      ids: recordingIds(ids),
      reporter: (r) => capturingReporter(r, entries),
    }
    const base = yield* Effect.clockWith(Effect.succeed)
    const exit = yield* Effect.exit(Effect.withClock(pull(seams), recordingClock(base, readings)))
    const summary = yield* writeRecording(out, req, { exchanges: transport.finish(), readings, ids, entries }).pipe(
      Effect.provide(SyscallsLive),
    )
    if (!req.quiet) process.stderr.write(summary + "\n")
    return yield* exit
  })
}

interface Taken {
  readonly exchanges: ReadonlyArray<Exchange>
  readonly readings: ReadonlyArray<number>
  readonly ids: ReadonlyArray<string>
  readonly entries: ReadonlyArray<LogEntry>
}

const writeRecording = (dir: string, req: RecordRequest, t: Taken) =>
  Effect.flatMap(Syscalls, (sys) =>
    Effect.try({
      try: () => writeFiles(dir, req, t, sys),
      catch: (e) => new RecordingError({ dir, problem: `cannot write the recording: ${(e as Error)?.message ?? e}` }),
    }))

const writeFiles = (dir: string, req: RecordRequest, t: Taken, sys: SyscallsApi): string => {
    const root = path.resolve(req.root)
    const files = recordingFiles(dir)
    const events: Array<RecordedEvent> = t.entries.map((e) => ({ envelope: e.envelope, event: e.event }))
    const layers: Array<RecordedLayer> = []
    for (const { event } of events) {
      if (event._tag !== "LayerCommitted" || event.source !== "pull") continue
      const diff = path.join(root, event.layer, "diff")
      if (!fs.existsSync(diff)) continue
      const entries = fingerprintTree(diff, sys)
      const tree = `trees/${event.layer.replace(/^sha\d+:/, "")}.ndjson`
      writeFileAtomic(path.join(dir, tree), treeText(entries))
      layers.push({
        layer: event.layer,
        diffId: event.diffId,
        ...(event.tocDigest ? { tocDigest: event.tocDigest } : {}),
        tree,
        treeDigest: treeDigest(entries),
        entries: entries.length,
      })
    }
    // in the image's order (commits come in whatever order parallel layers finish)
    const order = events.flatMap((e) => (e.event._tag === "ManifestResolved" ? e.event.layers.map((l) => l.digest) : []))
    const rank = (d: string) => (order.indexOf(d) === -1 ? order.length : order.indexOf(d))
    layers.sort((a, b) => rank(a.layer) - rank(b.layer))
    const blobs = new Map<string, number>()
    for (const x of t.exchanges) {
      const b = x.response?.body
      if (b?.digest) blobs.set(b.digest, b.size)
    }
    const requested = events.find((e) => e.event._tag === "PullRequested")?.event
    const manifest: RecordingManifest = {
      format: RECORDING_FORMAT,
      version: RECORDING_VERSION,
      alsVersion: ALS_VERSION,
      recordedAt: new Date(t.readings[0] ?? Date.now()).toISOString(),
      options: {
        refs: req.refs,
        platform: requested?._tag === "PullRequested" ? requested.platform : Option.getOrUndefined(req.platform),
        jobs: req.jobs,
        tlsVerify: req.tlsVerify,
      },
      storeRoot: root,
      credentials: {
        used: t.exchanges.some((x) => x.request.auth === "basic"),
        identityToken: t.exchanges.some((x) => x.request.method === "POST"),
      },
      counts: {
        exchanges: t.exchanges.length,
        events: events.length,
        blobs: blobs.size,
        blobBytes: [...blobs.values()].reduce((a, b) => a + b, 0),
      },
      layers,
    }
    writeNdjson(files.exchanges, t.exchanges)
    writeNdjson(files.events, events)
    writeJson(files.inputs, { clock: t.readings, ids: t.ids })
    writeJson(files.manifest, manifest)
    const found = events.filter((e) => e.event._tag === "LayerFound").length
    return `recorded ${t.exchanges.length} registry exchanges, ${events.length} events and ${layers.length} layer trees ` +
      `into ${dir} (${blobs.size} bodies, ${manifest.counts.blobBytes} bytes)` +
      (found > 0
        ? `\nnote: ${found} layers were already in the store, so a replay into an empty store will differ; record into a fresh --root`
        : "")
}
