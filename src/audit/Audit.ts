/**
 * `als audit`: the log checked frame by frame (EventLog.verify: every checksum, the hash chain,
 * every event's schema), then the store checked against the fold of the log (StoreCheck.ts),
 * and optionally the log against a checkpoint taken earlier (Checkpoint.ts).
 *
 * When the log is damaged, the store is checked against the events of every intact frame
 * (LogSalvage.ts), so that the damage itself is the finding and not a flood of layers that
 * merely look unexplained.
 */
import { Effect, Schema } from "effect"
import * as path from "node:path"
import { EventLog, logPath, type VerifyProblem } from "../events/EventLog.ts"
import { evolve, initialState, type StoreState } from "../events/Projection.ts"
import type { AuditCode, AuditProblem } from "./AuditProblem.ts"
import { type Checkpoint, checkSince, makeCheckpoint, readCheckpoint, writeCheckpoint } from "./Checkpoint.ts"
import { salvageLog } from "./LogSalvage.ts"
import { checkStore } from "./StoreCheck.ts"

export class CheckpointWriteError extends Schema.TaggedError<CheckpointWriteError>()("CheckpointWriteError", {
  file: Schema.String,
  detail: Schema.String,
}) {
  override get message() {
    return `cannot write the checkpoint ${this.file}: ${this.detail}. Check that its directory exists and is writable.`
  }
}

export interface AuditOptions {
  /** rehash every blob */
  readonly deep?: boolean | undefined
  /** write the log's head here (when the log is sound) */
  readonly checkpoint?: string | undefined
  /** prove the log only grew since this checkpoint */
  readonly since?: string | undefined
}

export interface AuditReport {
  readonly root: string
  readonly ok: boolean
  readonly log: {
    readonly path: string
    readonly size: number
    readonly frames: number
    readonly head: { readonly size: number; readonly hash: string }
    /** frames whose event the store check could use */
    readonly readable: number
  }
  readonly store: { readonly layersCommitted: number; readonly layersOnDisk: number; readonly refs: number; readonly refViews: number }
  readonly problems: ReadonlyArray<AuditProblem>
  /** problems beyond those listed (the log scan stops listing after 1000) */
  readonly problemsOmitted: number
  readonly since?: { readonly checkpoint: string; readonly grewBy?: { readonly bytes: number; readonly frames: number } | undefined }
  readonly checkpoint?: { readonly file: string; readonly written: boolean; readonly value?: Checkpoint | undefined }
}

const logCode = (p: VerifyProblem): AuditCode =>
  p.tail
    ? "LogTornTail"
    : p.kind === "checksum"
    ? "LogChecksum"
    : p.kind === "chain"
    ? "LogChain"
    : p.kind === "decode"
    ? "LogDecode"
    : "LogFraming"

export const auditStore = (root: string, opts: AuditOptions = {}) =>
  Effect.gen(function*() {
    const log = yield* EventLog
    const file = logPath(root)
    const verify = yield* log.verify()
    const problems: Array<AuditProblem> = verify.problems.map((p) => ({
      area: "log",
      code: logCode(p),
      frame: { offset: p.offset, index: p.index },
      path: file,
      message: p.problem,
    }))
    const salvage = salvageLog(file)

    let state: StoreState = initialState
    const indexed = new Map<string, Set<string>>()
    let readable = 0
    for (const f of salvage.frames) {
      if (!f.event || !f.envelope) continue
      readable++
      state = evolve(state, { envelope: f.envelope, event: f.event })
      if (f.event._tag === "RefIndexed") {
        const set = indexed.get(f.event.ref) ?? new Set<string>()
        for (const d of f.event.layers) set.add(d)
        indexed.set(f.event.ref, set)
      } else if (f.event._tag === "RefRemoved") indexed.delete(f.event.ref)
    }
    const store = checkStore(path.resolve(root), { state, indexed }, { deep: opts.deep === true })
    problems.push(...store.problems)

    const damage = verify.problems.filter((p) => !p.tail)
    const firstDamage = damage.length ? Math.min(...damage.map((p) => p.offset)) : undefined

    let since: AuditReport["since"]
    if (opts.since !== undefined) {
      const cp = readCheckpoint(opts.since)
      if ("code" in cp) problems.push(cp)
      else {
        const r = checkSince(cp, salvage, opts.since, firstDamage)
        problems.push(...r.problems)
        since = { checkpoint: opts.since, ...(r.grewBy && r.problems.length === 0 ? { grewBy: r.grewBy } : {}) }
      }
    }

    const headFrame = salvage.frames.find((f) => f.end === verify.head.size)
    const frames = headFrame ? headFrame.index + 1 : 0
    let checkpoint: AuditReport["checkpoint"]
    if (opts.checkpoint !== undefined) {
      if (damage.length > 0) {
        checkpoint = { file: opts.checkpoint, written: false }
      } else {
        const value = makeCheckpoint(file, { size: verify.head.size, hash: verify.head.hash, frames }, new Date())
        yield* Effect.try({
          try: () => writeCheckpoint(opts.checkpoint!, value),
          catch: (e) => new CheckpointWriteError({ file: opts.checkpoint!, detail: (e as Error).message }),
        })
        checkpoint = { file: opts.checkpoint, written: true, value }
      }
    }

    const order: ReadonlyArray<AuditProblem["area"]> = ["log", "checkpoint", "layer", "alias", "ref", "stray"]
    problems.sort((x, y) => order.indexOf(x.area) - order.indexOf(y.area))
    const report: AuditReport = {
      root: path.resolve(root),
      ok: problems.length === 0 && verify.problemsOmitted === 0,
      log: { path: file, size: verify.size, frames, head: verify.head, readable },
      store: {
        layersCommitted: [...state.layers].length,
        layersOnDisk: store.layersOnDisk,
        refs: [...state.refs].length,
        refViews: store.refViews,
      },
      problems,
      problemsOmitted: verify.problemsOmitted,
      ...(since ? { since } : {}),
      ...(checkpoint ? { checkpoint } : {}),
    }
    return report
  })
