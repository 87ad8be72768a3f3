/**
 * How workflows record what they do: `emit` appends an event to the log under the current
 * workflow's id and hands the written entry to the reporter (progress, NDJSON). Workflows
 * never touch the log or the terminal directly.
 */
import { Context, Effect, FiberRef, Layer } from "effect"
import type { Event } from "./Events.ts"
import { EventLog, Ids, type LogEntry } from "./EventLog.ts"

/** Receives every event as it is written; the CLI picks plain, TTY or NDJSON. */
export class Reporter extends Context.Tag("als/Reporter")<Reporter, {
  readonly event: (entry: LogEntry) => void
  /** bytes of a layer's blob received so far (not an event: far too frequent) */
  readonly progress?: (layer: string, bytes: number) => void
  /** a line for people that is no event (e.g. whom a wait is for); absent: stderr */
  readonly notice?: ((line: string) => void) | undefined
}>() {}

export const silentReporter: Context.Tag.Service<Reporter> = { event: () => undefined }
export const ReporterSilent = Layer.succeed(Reporter, silentReporter)

export const CurrentWorkflow = FiberRef.unsafeMake<string>("")

/** What the Journal service is made of (the lean lookup path builds it without layers). */
export const makeJournal = Effect.gen(function*() {
  const log = yield* EventLog
  const reporter = yield* Reporter
  const ids = yield* Ids

  const emitAll = Effect.fn("Journal.emit")(function*(events: ReadonlyArray<Event>) {
    const workflow = yield* FiberRef.get(CurrentWorkflow)
    const entries = yield* log.append(events, workflow)
    for (const e of entries) reporter.event(e)
    return entries
  })
  const emit = (event: Event) => emitAll([event])

  /** Runs `effect` as one workflow: its events share a fresh workflow id. */
  const workflow = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.locally(effect, CurrentWorkflow, ids.next())

  return { emit, emitAll, workflow } as const
})

export class Journal extends Effect.Service<Journal>()("als/Journal", { effect: makeJournal }) {}
