import { Effect } from "effect"

/** A line on stderr for people. (Bun colours console.error red on a TTY; these are not all errors.) */
export const errLine = (line: string) => Effect.sync(() => void process.stderr.write(line + "\n"))
