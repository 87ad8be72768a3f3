import { Command, Options } from "@effect/cli"
import { Console, Effect, Either, Layer, Option } from "effect"
import * as path from "node:path"
import { type AuditReport, auditStore } from "../audit/Audit.ts"
import { describeProblem } from "../audit/AuditProblem.ts"
import { EventLogFile, IdsLive } from "../events/EventLog.ts"
import { ExitCode, setExitCode } from "./exit.ts"
import * as opt from "./options.ts"
import { asUsage, parsePathArg } from "./Arguments.ts"
import { safeLines, safeText } from "../domain/SafeText.ts"
import { UsageError } from "../domain/UsageError.ts"
import { checkpointTargetProblem } from "../audit/Checkpoint.ts"

const deep = Options.boolean("deep").pipe(Options.withDescription("also rehash every blob file against its digest (reads every blob)"))
const checkpoint = Options.text("checkpoint").pipe(
  Options.withDescription("write the log's head (size, hash, frames) to FILE, to keep somewhere else and check later with --since"),
  Options.optional,
)
const since = Options.text("since").pipe(
  Options.withDescription("prove the log only grew since the checkpoint in FILE (no truncation, no rewrite)"),
  Options.optional,
)

const render = (r: AuditReport): string => {
  const lines = [
    `log:   ${r.log.path}: ${r.log.frames} frames, ${r.log.size} bytes, head ${r.log.head.hash.slice(0, 16)}… at byte ${r.log.head.size}`,
    `store: ${r.store.layersCommitted} layers committed by the log, ${r.store.layersOnDisk} layer directories, ` +
    `${r.store.refs} refs, ${r.store.refViews} ref views`,
  ]
  if (r.log.readable < r.log.frames) lines.push(`note:  the store was checked against the ${r.log.readable} frames that could be read`)
  if (r.since?.grewBy) {
    lines.push(`since: the log only grew since ${r.since.checkpoint}: +${r.since.grewBy.frames} frames, +${r.since.grewBy.bytes} bytes`)
  }
  if (r.checkpoint) {
    lines.push(
      r.checkpoint.written
        ? `checkpoint: wrote ${r.checkpoint.file} (${r.checkpoint.value!.frames} frames, ${r.checkpoint.value!.size} bytes)`
        : `checkpoint: NOT written to ${r.checkpoint.file}: the log is damaged`,
    )
  }
  if (r.ok) lines.push("clean: the log is intact and the store is what the log says")
  else {
    lines.push(`${r.problems.length + r.problemsOmitted} problem${r.problems.length + r.problemsOmitted === 1 ? "" : "s"}:`)
    for (const p of r.problems) lines.push(`  ${describeProblem(p)}`)
    if (r.problemsOmitted) lines.push(`  … and ${r.problemsOmitted} more log problems`)
  }
  return lines.join("\n")
}

export const auditCommand = Command.make(
  "audit",
  { root: opt.root, json: opt.json, deep, checkpoint, since },
  (a) => {
    const root = path.resolve(opt.resolveRoot(a.root))
    // the root is an existing store (StorePolicy.ts, before this runs); the files are checked here
    return Effect.gen(function*() {
      const checkpoint = yield* asUsage(Either.all(Option.toArray(a.checkpoint).map((f) => parsePathArg(f, "--checkpoint"))))
      const since = yield* asUsage(Either.all(Option.toArray(a.since).map((f) => parsePathArg(f, "--since"))))
      // before any work: the file a checkpoint would replace (Checkpoint.ts)
      const refused = checkpoint[0] === undefined ? undefined : checkpointTargetProblem(checkpoint[0])
      if (refused !== undefined) return yield* new UsageError({ message: `--checkpoint ${safeText(checkpoint[0]!, 400)}: ${refused}` })
      const report = yield* auditStore(root, {
        deep: a.deep,
        checkpoint: checkpoint[0],
        since: since[0],
      }).pipe(Effect.provide(EventLogFile(root).pipe(Layer.provide(IdsLive))))
      // paths and problems name what is on disk and in the log: shown safe (SafeText.ts)
      yield* Console.log(a.json ? JSON.stringify(report, null, 2) : safeLines(render(report), undefined, Infinity))
      if (!report.ok || report.checkpoint?.written === false) setExitCode(ExitCode.notFound)
    })
  },
).pipe(Command.withDescription(
  "Check the log (every frame's checksum, the hash chain) and that the store is what the log says:\n" +
    "every committed layer present with its digests, nothing unexplained, every link resolving.\n" +
    "Exit 0 when clean, 1 when problems are found (each named: log frame and byte, or layer and path).\n" +
    "A checkpoint saved now proves later that the log only grew since.\n\n" +
    "Examples:\n" +
    "  als audit --root /var/lib/als --checkpoint /safe/als.checkpoint\n" +
    "  als audit --root /var/lib/als --since /safe/als.checkpoint",
))
