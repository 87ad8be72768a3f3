import { Command, Options } from "@effect/cli"
import { Chunk, Clock, Console, Effect, Option, Stream } from "effect"
import * as fs from "node:fs"
import { groupByWorkflow, renderStats, renderWorkflow, statsOf, statsStart, statsStep } from "../audit/LogReview.ts"
import { EventLog, type LogEntry, logPath } from "../events/EventLog.ts"
import { ReporterSilent } from "../events/Journal.ts"
import { makeMatcher, TABLE_HEADER, tableRow } from "../events/LogQuery.ts"
import { safeText } from "../domain/SafeText.ts"
import { asUsage, parseEventTypes, parseLayerFilter, parseRefArg, parseSinceArg } from "./Arguments.ts"
import { storeLayer } from "../Layers.ts"
import { entryJson } from "./Reporters.ts"
import { UsageError } from "../domain/UsageError.ts"
import * as opt from "./options.ts"

const type = Options.text("type").pipe(
  Options.withDescription("only these event types (repeatable or comma-separated), e.g. PullFailed,LayerLinked"),
  Options.repeated,
)
const layer = Options.text("layer").pipe(Options.withDescription("only events about this layer (digest or hex prefix)"), Options.optional)
const ref = Options.text("ref").pipe(
  Options.withDescription("only the workflows that name this image reference (shown grouped, as with --group)"),
  Options.optional,
)
const since = Options.text("since").pipe(Options.withDescription("only events newer than 90m, 2h, 3d … or a date/time"), Options.optional)
const follow = Options.boolean("follow").pipe(
  Options.withAlias("f"),
  Options.withDescription("keep printing events as they are appended, until interrupted (Ctrl-C)"),
)
const group = Options.boolean("group").pipe(
  Options.withDescription("each workflow (one pull, one lookup) under a headline, its steps at +ms, each layer's duration"),
)
const flat = Options.boolean("flat").pipe(Options.withDescription("one row per event even with --ref"))
const stats = Options.boolean("stats").pipe(
  Options.withDescription("counts instead of events: pulls, layers, bytes fetched against bytes served from the store or pools, failures by reason"),
)

const widths = [23, 16, 12, 40]
// cells hold refs, reasons and paths from outside: each made safe (SafeText.ts) before padding
const line = (cols: ReadonlyArray<string>) =>
  cols.map((c, i) => (i < widths.length ? safeText(c, 1024).padEnd(widths[i]!) : safeText(c))).join("  ").trimEnd()

const POLL = "200 millis"

/** --type, --since, --layer and --ref as typed values, or the usage error naming what is valid. */
const parseFilters = (a: { type: ReadonlyArray<string>; since: Option.Option<string>; layer: Option.Option<string>; ref: Option.Option<string> }) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const types = yield* asUsage(parseEventTypes(a.type))
    const sinceMs = Option.isSome(a.since) ? yield* asUsage(parseSinceArg(a.since.value, now)) : undefined
    const layer = Option.isSome(a.layer) ? Option.some(yield* asUsage(parseLayerFilter(a.layer.value))) : Option.none()
    // the log records normalized refs: `--ref alpine:3.19` finds docker.io/library/alpine:3.19
    const ref = Option.isSome(a.ref) ? Option.some(yield* asUsage(parseRefArg(a.ref.value, "--ref"))) : Option.none()
    return { types, sinceMs, layer, ref }
  })

export const logCommand = Command.make(
  "log",
  { type, layer, ref, since, follow, group, flat, stats, root: opt.root, json: opt.json },
  (a) =>
    // every filter parsed before the log is opened
    Effect.flatMap(parseFilters(a), ({ types, sinceMs, layer, ref }) => Effect.gen(function*() {
      const log = yield* EventLog

      if (a.stats) {
        if (types.length > 0 || Option.isSome(layer) || Option.isSome(ref) || a.follow) {
          return yield* new UsageError({ message: "--stats counts the whole log (or from --since on); it does not take --type, --layer, --ref or --follow" })
        }
        const st = statsOf(yield* log.fold(statsStart(sinceMs), statsStep))
        yield* Console.log(a.json ? JSON.stringify(st, null, 2) : renderStats(st).join("\n"))
        return
      }

      const matches = makeMatcher({
        types: types.length > 0 ? new Set(types) : undefined,
        layer: Option.getOrUndefined(layer),
        ref: Option.getOrUndefined(ref),
        since: sinceMs,
      })
      const grouped = !a.json && !a.follow && !a.flat && (a.group || Option.isSome(ref))
      if (grouped) {
        const picked = yield* Stream.runCollect(log.stream().pipe(Stream.filter(matches)))
        const blocks = groupByWorkflow(Chunk.toReadonlyArray(picked)).map((g) =>
          g.kind === "workflow" ? renderWorkflow(g.entries).join("\n") : line(tableRow(g.entry))
        )
        yield* Console.log(blocks.join("\n\n"))
        return
      }

      const print = (e: LogEntry) => Console.log(a.json ? JSON.stringify(entryJson(e)) : line(tableRow(e)))
      if (!a.json) yield* Console.log(line(TABLE_HEADER))
      let last: LogEntry | undefined
      const printFrom = (from: LogEntry | undefined) =>
        log.stream(from ? { fromOffset: from.offset } : undefined).pipe(
          // reading from the last entry printed: skip it, print what came after
          Stream.filter((e) => from === undefined || e.offset !== from.offset),
          Stream.tap((e) =>
            Effect.sync(() => {
              last = e
            })
          ),
          Stream.filter(matches),
          Stream.runForEach(print),
        )
      yield* printFrom(undefined)
      if (!a.follow) return

      // --follow: poll the file's size; read only what was appended
      const file = logPath(opt.resolveRoot(a.root))
      const sizeOf = () => {
        try {
          return fs.statSync(file).size
        } catch {
          return 0
        }
      }
      let seen = sizeOf()
      const poll = Effect.gen(function*() {
        for (;;) {
          yield* Effect.sleep(POLL)
          const size = sizeOf()
          if (size === seen) continue
          seen = size
          yield* printFrom(last)
        }
      })
      // until SIGINT/SIGTERM: bin/als.ts interrupts the command and exits 130/143
      yield* poll
    }).pipe(Effect.provide(storeLayer(opt.resolveRoot(a.root), ReporterSilent)))),
).pipe(Command.withDescription(
  "Review the audit log: one row per event (time, event, layer, ref, outcome), or NDJSON with --json.\n" +
    "--ref REF (or --group) shows each workflow grouped: a headline (what, outcome, duration), its steps at +ms\n" +
    "from its start, layer steps indented under the layer, and each layer's time from lookup to commit.\n" +
    "--follow keeps printing new events until Ctrl-C; --stats prints counts instead of events.\n\n" +
    "Defaults: every event, oldest first (filters --type, --layer, --ref, --since combine); --root DIR (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise).\n\n" +
    "Example: als log --ref docker.io/library/alpine:3.19 --since 2h",
))
