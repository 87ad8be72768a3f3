/**
 * `als replay DIR`: runs a recorded pull again with no network and checks that it comes out
 * the same (docs/replay.md).
 *
 * The pull runs as `als pull` runs it (same source selection, same workflow), composed with a
 * transport that answers from the recording, the recorded clock readings and ids, and a
 * reporter that keeps the events. Then: the events are compared (Compare.ts, Volatile.ts), each
 * recorded layer's `info` and extracted tree are checked against the recording, and every
 * request the replay made must have had a recorded answer (and every recorded one must have
 * been asked for).
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseLayerInfo } from "../domain/LayerInfo.ts"
import { detectHostPlatform, parsePlatform, type Platform } from "../domain/Platform.ts"
import type { LogEntry } from "../events/EventLog.ts"
import { Journal, ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { registryClientLayer } from "../RegistryLayers.ts"
import { Keychain } from "../registry/Keychain.ts"
import { RegistryTransport } from "../registry/RegistryTransport.ts"
import { imageSourceFor } from "../sources/Sources.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { Syscalls } from "../sys/Syscalls.ts"
import { pullImage } from "../workflows/Pull.ts"
import { compareEvents, describeDifference, type EventDifference } from "./Compare.ts"
import { capturingReporter } from "./Record.ts"
import { fileDigest } from "../verify/FileHash.ts"
import { blobFile, type LoadedRecording, loadRecording, loadTree, RecordingError } from "./Recording.ts"
import { describeKey, makeReplayTransport } from "./ReplayTransport.ts"
import { replayClock, replayIds } from "./Tape.ts"
import { diffTrees, fingerprintTree, treeDigest } from "./TreeFingerprint.ts"
import { normalizeEvents } from "./Volatile.ts"

export interface ReplayOptions {
  /** replay into this store instead of a scratch one (kept afterwards) */
  readonly root?: string | undefined
}

export interface LayerCheck {
  readonly layer: string
  /** what differs about the layer in the replayed store; empty when it matches */
  readonly problems: ReadonlyArray<string>
}

export interface ReplayReport {
  readonly dir: string
  readonly refs: ReadonlyArray<string>
  /** the store the replay ran in */
  readonly root: string
  readonly scratch: boolean
  readonly events: { readonly recorded: number; readonly replayed: number }
  readonly exchanges: {
    readonly recorded: number
    readonly answered: number
    /** requests the recording had no answer for */
    readonly unrecorded: ReadonlyArray<string>
    /** recorded exchanges the replay never asked for */
    readonly unused: ReadonlyArray<string>
  }
  readonly inputs: { readonly clockRecorded: number; readonly clockUsed: number; readonly idsRecorded: number; readonly idsUsed: number }
  readonly differences: ReadonlyArray<EventDifference>
  readonly layers: ReadonlyArray<LayerCheck>
  /** the recording itself is damaged (a body that does not hash to its name, an edited tree file) */
  readonly damage: ReadonlyArray<string>
  /** how the replayed pull ended, when it failed */
  readonly failure?: string | undefined
  readonly ok: boolean
}

/** Placeholder credentials: the recording never holds real ones, only whether they were used. */
const replayKeychain = (rec: LoadedRecording): Layer.Layer<Keychain> => {
  const c = rec.manifest.credentials
  if (!c?.used && !c?.identityToken) return Keychain.anonymous
  const creds = {
    username: "als-replay",
    password: "als-replay",
    ...(c.identityToken ? { identityToken: "als-replay" } : {}),
    source: "the recording (placeholder credentials)",
  }
  return Layer.succeed(Keychain, { lookup: () => Effect.succeed(creds) })
}

/** Bodies whose bytes no longer hash to their name. */
const checkBlobs = (rec: LoadedRecording): Array<string> => {
  const out: Array<string> = []
  const seen = new Set<string>()
  for (const x of rec.exchanges) {
    const d = x.response?.body.digest
    if (!d || seen.has(d)) continue
    seen.add(d)
    const file = blobFile(rec.dir, d)
    if (!fs.existsSync(file)) {
      out.push(`blobs/${path.basename(file)} is missing (exchange ${x.seq}: ${x.request.method} ${x.request.url})`)
      continue
    }
    const got = fileDigest(file)
    if (got !== d) out.push(`blobs/${path.basename(file)} does not hash to its name (it hashes to ${got}): the body was altered`)
  }
  return out
}

const platformOf = (rec: LoadedRecording) =>
  Effect.try({
    try: (): Platform => (rec.manifest.options.platform ? parsePlatform(rec.manifest.options.platform) : detectHostPlatform()),
    catch: () => new RecordingError({ dir: rec.dir, problem: `recording.json names platform ${rec.manifest.options.platform}, which is not os/arch[/variant]` }),
  })

const checkLayers = (rec: LoadedRecording, root: string) =>
  Effect.gen(function*() {
    const sys = yield* Syscalls
    const out: Array<LayerCheck> = []
    for (const l of rec.manifest.layers) {
      const problems: Array<string> = []
      const dir = path.join(root, l.layer)
      let info: ReturnType<typeof parseLayerInfo> | undefined
      try {
        info = parseLayerInfo(fs.readFileSync(path.join(dir, "info"), "utf8"))
      } catch {
        problems.push(`no readable ${l.layer}/info in the replayed store`)
      }
      if (info) {
        if (info.digest !== l.layer) problems.push(`info compressed-diff-digest: recorded ${l.layer}, replayed ${info.digest}`)
        if (info.diffId !== l.diffId) problems.push(`info diff-digest (DiffID): recorded ${l.diffId}, replayed ${info.diffId}`)
        if ((info.tocDigest ?? undefined) !== (l.tocDigest ?? undefined)) {
          problems.push(`info toc-digest: recorded ${l.tocDigest ?? "none"}, replayed ${info.tocDigest ?? "none"}`)
        }
      }
      const diff = path.join(dir, "diff")
      if (fs.existsSync(diff)) {
        const recorded = loadTree(rec.dir, l)
        const edited = treeDigest(recorded) !== l.treeDigest
        if (edited) problems.push(`${l.tree} was edited: it no longer matches the tree digest in recording.json`)
        const replayed = fingerprintTree(diff, sys)
        if (edited || treeDigest(replayed) !== l.treeDigest) {
          const lines = diffTrees(recorded, replayed)
          if (lines.length) problems.push(...lines.map((x) => `tree: ${x}`))
          else if (!edited) problems.push(`tree: its fingerprint differs from the recorded ${l.treeDigest}`)
        }
      } else {
        problems.push(`no extracted tree ${l.layer}/diff in the replayed store`)
      }
      out.push({ layer: l.layer, problems })
    }
    return out
  })

/** Replays the recording in `dir`. Fails only when the recording cannot be read. */
export const replayRecording = (dir: string, opts: ReplayOptions = {}) =>
  Effect.gen(function*() {
    const rec = yield* Effect.try({
      try: () => loadRecording(path.resolve(dir)),
      catch: (e) => (e instanceof RecordingError ? e : new RecordingError({ dir, problem: String((e as Error)?.message ?? e) })),
    })
    const platform = yield* platformOf(rec)
    const scratch = opts.root === undefined
    const root = path.resolve(opts.root ?? fs.mkdtempSync(path.join(os.tmpdir(), "als-replay-")))
    return yield* Effect.gen(function*() {
      const transport = makeReplayTransport(rec.dir, rec.exchanges)
      const clock = replayClock(rec.inputs.clock)
      const ids = replayIds(rec.inputs.ids)
      const entries: Array<LogEntry> = []
      const o = rec.manifest.options
      const registry = registryClientLayer(
        Layer.succeed(RegistryTransport, { fetch: transport.fetch }),
        replayKeychain(rec),
        { tlsVerify: o.tlsVerify },
      )
      const layers = Layer.merge(storeLayer(root, capturingReporter(ReporterSilent, entries), ids.layer), registry)
      const pull = Effect.gen(function*() {
        const store = yield* LayerStore
        const journal = yield* Journal
        yield* store.init()
        yield* store.cleanStaging()
        const pools = [{ kind: "seed" as const, dir: store.paths.pool }]
        for (const r of o.refs) {
          const chosen = yield* imageSourceFor(r, { platform })
          if (chosen.local) {
            return yield* new RecordingError({ dir: rec.dir, problem: `${r} is a local source, which a recording cannot replay` })
          }
          yield* journal.workflow(pullImage(chosen.source, { platform, pools, jobs: o.jobs }))
        }
      })
      const checked = Effect.gen(function*() {
        const outcome = yield* Effect.either(Effect.withClock(pull, clock))
        const layerChecks = yield* checkLayers(rec, root)
        const storeRoot = (yield* LayerStore).paths.root
        return { outcome, layerChecks, storeRoot }
      })
      const { outcome, layerChecks, storeRoot } = yield* Effect.provide(checked, layers)
      const failure = outcome._tag === "Left" ? String((outcome.left as Error)?.message ?? outcome.left) : undefined
      const recorded = normalizeEvents(rec.events, rec.manifest.storeRoot)
      const replayed = normalizeEvents(entries, storeRoot)
      const differences = compareEvents(recorded, replayed)
      const damage = checkBlobs(rec)
      const unrecorded = transport.unrecorded.map(describeKey)
      const unused = transport.unused().map((x) => `exchange ${x.seq}: ${describeKey(x.request)}`)
      const missing = transport.missingBlobs.map((f) => `the recording lacks ${f}`)
      const report: ReplayReport = {
        dir: rec.dir,
        refs: o.refs,
        root: storeRoot,
        scratch,
        events: { recorded: rec.events.length, replayed: entries.length },
        exchanges: { recorded: rec.exchanges.length, answered: transport.answered(), unrecorded, unused },
        inputs: {
          clockRecorded: rec.inputs.clock.length,
          clockUsed: clock.used(),
          idsRecorded: rec.inputs.ids.length,
          idsUsed: ids.used(),
        },
        differences,
        layers: layerChecks,
        damage: [...damage, ...missing],
        ...(failure !== undefined ? { failure } : {}),
        ok: differences.length === 0 && unrecorded.length === 0 && unused.length === 0 && damage.length === 0 &&
          missing.length === 0 && layerChecks.every((l) => l.problems.length === 0),
      }
      return report
    }).pipe(
      Effect.ensuring(Effect.sync(() => {
        if (scratch) fs.rmSync(root, { recursive: true, force: true })
      })),
    )
  })

/** The report for people: what was compared, and each difference on its own line. */
export const renderReport = (r: ReplayReport, max = 60): string => {
  const lines: Array<string> = []
  lines.push(`replay of ${r.dir}: ${r.refs.join(", ")}`)
  lines.push(`  events:    ${r.events.recorded} recorded, ${r.events.replayed} replayed`)
  lines.push(
    `  registry:  ${r.exchanges.recorded} exchanges recorded, ${r.exchanges.answered} answered from the recording` +
      (r.exchanges.unrecorded.length ? `, ${r.exchanges.unrecorded.length} UNRECORDED` : "") +
      (r.exchanges.unused.length ? `, ${r.exchanges.unused.length} never asked for` : ""),
  )
  lines.push(`  layers:    ${r.layers.length} recorded trees checked`)
  const i = r.inputs
  if (i.clockUsed !== i.clockRecorded || i.idsUsed !== i.idsRecorded) {
    lines.push(`  inputs:    ${i.clockRecorded} clock readings and ${i.idsRecorded} ids recorded; the replay took ${i.clockUsed} and ${i.idsUsed}`)
  }
  if (!r.scratch) lines.push(`  store:     ${r.root}`)
  if (r.failure !== undefined) lines.push(`  the replayed pull failed: ${r.failure}`)
  const problems: Array<string> = []
  for (const u of r.exchanges.unrecorded) problems.push(`unrecorded request: ${u}`)
  for (const d of r.differences) problems.push(describeDifference(d))
  for (const l of r.layers) for (const p of l.problems) problems.push(`layer ${l.layer}: ${p}`)
  for (const u of r.exchanges.unused) problems.push(`recorded but never asked for: ${u}`)
  for (const d of r.damage) problems.push(`recording damaged: ${d}`)
  if (r.ok) {
    lines.push("OK: same events (ids, times and durations aside), same layer digests, DiffIDs and trees")
  } else {
    lines.push(`DIFFERENT: ${problems.length} difference${problems.length === 1 ? "" : "s"}`)
    for (const p of problems.slice(0, max)) lines.push(`  ${p}`)
    if (problems.length > max) lines.push(`  … and ${problems.length - max} more (--json shows all)`)
  }
  return lines.join("\n")
}
