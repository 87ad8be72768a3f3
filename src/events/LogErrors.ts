/** What can go wrong with the event log. Each carries its data and says what to do. */
import { Schema } from "effect"
import { IoFailureFields, ioFailureFields, ioHint } from "../domain/IoFailure.ts"

/** A read, write, sync or lock operation on the log file failed. */
export class LogIoError extends Schema.TaggedError<LogIoError>()("LogIoError", IoFailureFields) {
  override get message() {
    const hint = ioHint(this.code, {
      full: " The disk is full: free space and retry; the log keeps only whole frames.",
      access: " Check that you may write to the store's .als directory.",
    })
    return `event log: cannot ${this.op} ${this.path}: ${this.detail}.${hint}`
  }
}

export const ProblemKind = Schema.Literal("checksum", "chain", "truncated", "decode", "framing")
export type ProblemKind = typeof ProblemKind.Type

/** The log's bytes are damaged before its end: never skipped, never cut automatically. */
export class LogCorrupt extends Schema.TaggedError<LogCorrupt>()("LogCorrupt", {
  path: Schema.String,
  offset: Schema.Number,
  index: Schema.Number,
  kind: ProblemKind,
  problem: Schema.String,
}) {
  override get message() {
    return `event log ${this.path} is damaged at byte ${this.offset} (frame ${this.index}): ${this.problem}. ` +
      "Run `als audit` to see the damage; the log was not changed."
  }
}

/** A frame is intact but its event cannot be read: an unknown tag or a newer shape version. */
export class LogDecodeError extends Schema.TaggedError<LogDecodeError>()("LogDecodeError", {
  path: Schema.String,
  offset: Schema.Number,
  index: Schema.Number,
  problem: Schema.String,
}) {
  override get message() {
    return `cannot read the event at byte ${this.offset} (frame ${this.index}) of ${this.path}: ${this.problem}. ` +
      "If a newer als wrote it, use that version; the log was not changed."
  }
}

/** Another process kept the log's lock for longer than we were willing to wait. */
export class LogLocked extends Schema.TaggedError<LogLocked>()("LogLocked", {
  path: Schema.String,
  waitedMs: Schema.Number,
  holder: Schema.optional(Schema.String),
}) {
  override get message() {
    const who = this.holder ? `it is held by ${this.holder}` : "it is held by another process"
    return `event log lock ${this.path} not obtained after ${this.waitedMs} ms: ${who}. ` +
      "Wait for that process to finish; a lock left by a killed process is taken over once it is stale (10 s)."
  }
}

export type LogError = LogIoError | LogCorrupt | LogDecodeError | LogLocked

export const LogError = Schema.Union(LogIoError, LogCorrupt, LogDecodeError, LogLocked)

export const isLogError = (u: unknown): u is LogError =>
  u instanceof LogIoError || u instanceof LogCorrupt || u instanceof LogDecodeError || u instanceof LogLocked

export const logIoError = (op: string, path: string, e: unknown): LogIoError => new LogIoError(ioFailureFields(op, path, e))
