import { Command, Options } from "@effect/cli"
import { Clock, Console, Effect, Option, Stream } from "effect"
import { EventLog } from "../events/EventLog.ts"
import { ReporterSilent } from "../events/Journal.ts"
import { makeMatcher, parseSince, TABLE_HEADER, tableRow } from "../events/LogQuery.ts"
import { storeLayer } from "../Layers.ts"
import { entryJson } from "./Reporters.ts"
import { UsageError } from "./UsageError.ts"
import * as opt from "./options.ts"

const type = Options.text("type").pipe(
  Options.withDescription("only these event types (repeatable or comma-separated), e.g. PullFailed,LayerLinked"),
  Options.repeated,
)
const layer = Options.text("layer").pipe(Options.withDescription("only events about this layer (digest or hex prefix)"), Options.optional)
const ref = Options.text("ref").pipe(Options.withDescription("only events of workflows that name this image reference"), Options.optional)
const since = Options.text("since").pipe(Options.withDescription("only events newer than 90m, 2h, 3d … or a date/time"), Options.optional)

const widths = [23, 16, 12, 40]
const line = (cols: ReadonlyArray<string>) =>
  cols.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join("  ").trimEnd()

export const logCommand = Command.make(
  "log",
  { type, layer, ref, since, root: opt.root, json: opt.json },
  (a) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const sinceMs = yield* Option.match(a.since, {
        onNone: () => Effect.succeed(undefined),
        onSome: (s) => {
          const t = parseSince(s, now)
          return t === undefined
            ? Effect.fail(new UsageError({ message: `--since ${s}: expected a duration like 90m, 2h, 3d or a date` }))
            : Effect.succeed(t)
        },
      })
      const types = a.type.flatMap((t) => t.split(",")).map((t) => t.trim()).filter((t) => t !== "")
      const matches = makeMatcher({
        types: types.length > 0 ? new Set(types) : undefined,
        layer: Option.getOrUndefined(a.layer),
        ref: Option.getOrUndefined(a.ref),
        since: sinceMs,
      })
      const log = yield* EventLog
      if (!a.json) yield* Console.log(line(TABLE_HEADER))
      yield* log.stream().pipe(
        Stream.filter(matches),
        Stream.runForEach((e) => Console.log(a.json ? JSON.stringify(entryJson(e)) : line(tableRow(e)))),
      )
    }).pipe(Effect.provide(storeLayer(opt.resolveRoot(a.root), ReporterSilent))),
).pipe(Command.withDescription(
  "Review the audit log: one row per event (time, event, layer, ref, outcome), or NDJSON with --json.\n" +
    "Example: als log --ref docker.io/library/alpine:3.19 --since 2h",
))
