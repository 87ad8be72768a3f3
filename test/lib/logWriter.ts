/**
 * A child process for the multi-process event log test:
 *   bun test/lib/logWriter.ts ROOT WRITER COUNT [MAX_BATCH]
 * appends COUNT LookupRequested events (annotated with writer and sequence number) to
 * ROOT's log, in batches of 1..MAX_BATCH events, each batch under its own lock.
 */
import { Effect, Layer } from "effect"
import process from "node:process"
import { EventLog, EventLogFile, IdsLive } from "../../src/events/EventLog.ts"
import type { Event } from "../../src/events/Events.ts"

const [root, writer, countArg, maxBatchArg] = process.argv.slice(2)
if (!root || !writer || !countArg) {
  console.error("usage: logWriter.ts ROOT WRITER COUNT [MAX_BATCH]")
  process.exit(2)
}
const count = Number(countArg)
const maxBatch = Number(maxBatchArg ?? 1)
const layer = `sha256:${"0".repeat(63)}${Number(writer) % 10}`

const program = Effect.gen(function*() {
  const log = yield* EventLog
  let seq = 0
  while (seq < count) {
    const n = Math.min(count - seq, 1 + Math.floor(Math.random() * maxBatch))
    const batch: Array<Event> = []
    for (let i = 0; i < n; i++, seq++) {
      batch.push({ _tag: "LookupRequested", layer, annotations: { writer, seq: String(seq) } })
    }
    yield* log.append(batch, `writer-${writer}`)
  }
})

await Effect.runPromise(program.pipe(Effect.provide(EventLogFile(root, { sync: false }).pipe(Layer.provide(IdsLive)))))
