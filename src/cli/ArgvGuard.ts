/**
 * The command line checked before @effect/cli parses it.
 *
 * @effect/cli takes a word it does not know as a positional argument when the command has
 * one: `als rm --bogus` removed a ref named "--bogus", `als pull --bogus` created the store and
 * then failed on an image named "--bogus". Here every `-`-word must be a flag the command
 * declares (read from the command tree itself, so the table cannot drift from the options),
 * and no word may carry control characters (@effect/cli echoes unknown words raw in its
 * errors). Pure: the table in, a message or nothing out.
 */
import { Command, CommandDescriptor, type Usage } from "@effect/cli"
import { HashMap, Option } from "effect"
import { isPlainText, safeText } from "../domain/SafeText.ts"

/** Per command: each flag spelling, and whether it takes a value in the next word. */
export type FlagTable = ReadonlyMap<string, ReadonlyMap<string, boolean>>

/** @effect/cli's own flags, on every command. */
const BUILT_IN: ReadonlyArray<readonly [string, boolean]> = [
  ["--help", false],
  ["-h", false],
  ["--version", false],
  ["--wizard", false],
  ["--completions", true],
  ["--log-level", true],
]
/** Words after which @effect/cli prints help or a script instead of running the command. */
const HANDS_OFF = new Set(["--help", "-h", "--version", "--wizard", "--completions"])

const namedIn = (u: Usage.Usage, into: Map<string, boolean>): void => {
  switch (u._tag) {
    case "Named":
      for (const n of u.names) if (n.startsWith("-")) into.set(n, Option.isSome(u.acceptedValues))
      return
    case "Optional":
    case "Repeated":
      return namedIn(u.usage, into)
    case "Alternation":
    case "Concat":
      namedIn(u.left, into)
      return namedIn(u.right, into)
    default:
      return
  }
}

/** The flags of every subcommand of `root`, from their declared options. */
export const flagTable = <N extends string, R, E, A>(root: Command.Command<N, R, E, A>): FlagTable => {
  const table = new Map<string, ReadonlyMap<string, boolean>>()
  for (const [name, sub] of HashMap.toEntries(Command.getSubcommands(root))) {
    const flags = new Map<string, boolean>(BUILT_IN)
    namedIn(CommandDescriptor.getUsage(sub as CommandDescriptor.Command<unknown>), flags)
    table.set(name, flags)
  }
  return table
}

/** Flags whose value is KEY=VALUE (Options.keyValueMap). */
const KEY_VALUE_FLAGS: ReadonlySet<string> = new Set(["--annotation"])

/**
 * Undefined when `argv` (the words after `als`) may go to @effect/cli; else the usage error.
 * An unknown subcommand, and help, are left to @effect/cli.
 */
export const checkArgv = (table: FlagTable, argv: ReadonlyArray<string>): string | undefined => {
  for (let i = 0; i < argv.length; i++) {
    if (!isPlainText(argv[i]!)) {
      return `argument ${i + 1} ("${safeText(argv[i]!, 200)}") contains control characters`
    }
  }
  const command = argv[0]
  const flags = command === undefined ? undefined : table.get(command)
  if (command === undefined || flags === undefined) return undefined
  const end = argv.indexOf("--")
  const words = argv.slice(1, end === -1 ? undefined : end)
  if (words.some((w) => HANDS_OFF.has(w.split("=")[0]!))) return undefined
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!
    if (!w.startsWith("-") || w === "-") continue
    const eq = w.indexOf("=")
    const name = eq === -1 ? w : w.slice(0, eq)
    const takesValue = flags.get(name)
    if (takesValue === undefined) {
      return `unknown flag ${safeText(name, 200)} for \`als ${command}\` (see als ${command} --help)`
    }
    if (takesValue) {
      if (eq === -1 && i + 1 >= words.length) return `${name} needs a value (see als ${command} --help)`
      // @effect/cli drops an empty value of a repeatable flag without a word: refused here
      const v = eq === -1 ? words[i + 1]! : w.slice(eq + 1)
      if (v.trim() === "") return `${name} "${v}" ${v === "" ? "is empty" : "is only whitespace"} (see als ${command} --help)`
      // @effect/cli's own word for a KEY=VALUE flag without "=" does not say what is wrong
      if (KEY_VALUE_FLAGS.has(name) && v.indexOf("=") <= 0) {
        return `${name} ${safeText(v, 200)}: expected KEY=VALUE with a non-empty key (see als ${command} --help)`
      }
      if (eq === -1) i++
    }
  }
  return undefined
}
