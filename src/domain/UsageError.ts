import { Schema } from "effect"

/** The command line asks for something that cannot be done as written. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String,
}) {}
