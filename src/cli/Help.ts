/**
 * `als --help` and `als CMD --help`, laid out as podman users read help: usage lines that
 * start `als CMD`, text wrapped to the terminal (80 columns when piped), optional and
 * repeatable flags marked, booleans spelled `--tls-verify[=true|false]`, the exit statuses
 * listed, and @effect/cli's generated flags that duplicate `als completion` (`--wizard`,
 * `--completions`) left out (they still work). The sections keep @effect/cli's headings
 * (USAGE, DESCRIPTION, ARGUMENTS, OPTIONS, COMMANDS): scripts/gen-man.ts reads them.
 *
 * The flags are read from the command tree itself, as ArgvGuard.ts reads them, so the help
 * cannot drift from what the parser takes. @effect/cli (pinned, 0.77) exposes no public view
 * of an option's name, type, default and repetition: `describe` reads its descriptor objects
 * by their `_tag`, and test/unit/cli/Help.test.ts checks that every flag the parser knows is
 * in the help.
 */
import { Command, HelpDoc } from "@effect/cli"
import { HashMap, Option } from "effect"
import { stripStyles } from "./Colour.ts"

/** One flag as the help shows it. */
export interface FlagDoc {
  readonly names: ReadonlyArray<string>
  /** the value's placeholder; undefined for a switch */
  readonly value: string | undefined
  /** `--tls-verify[=true|false]`: the value may be left out (bin/als.ts reads a bare flag as true) */
  readonly optionalValue: boolean
  readonly description: string
  readonly optional: boolean
  readonly repeatable: boolean
  readonly default: string | undefined
}

export interface ArgDoc {
  readonly name: string
  readonly description: string
  readonly optional: boolean
  readonly repeatable: boolean
}

export interface CommandDoc {
  readonly name: string
  readonly description: string
  readonly flags: ReadonlyArray<FlagDoc>
  readonly args: ReadonlyArray<ArgDoc>
}

/** Placeholders podman's help uses (or would), by flag; other values are named by their type. */
const PLACEHOLDER: Readonly<Record<string, string>> = {
  root: "DIR",
  pool: "DIR",
  "cert-dir": "DIR",
  record: "DIR",
  platform: "OS/ARCH[/VARIANT]",
  os: "OS",
  arch: "ARCH",
  variant: "VARIANT",
  creds: "USER[:PASSWORD]",
  authfile: "FILE",
  name: "REF",
  jobs: "N",
  timeout: "SECONDS",
}

interface Node {
  readonly _tag: string
  readonly [k: string]: unknown
}
const isNode = (u: unknown): u is Node => typeof u === "object" && u !== null && typeof (u as { _tag?: unknown })._tag === "string"

const text = (doc: unknown): string => {
  if (!isNode(doc)) return ""
  try {
    return stripStyles(HelpDoc.toAnsiText(doc as unknown as HelpDoc.HelpDoc)).trim()
  } catch {
    return ""
  }
}

const typeName = (primitive: unknown): { value: string | undefined; choices?: ReadonlyArray<string> } => {
  if (!isNode(primitive)) return { value: "TEXT" }
  switch (primitive._tag) {
    case "Bool":
      return { value: undefined }
    case "Integer":
      return { value: "N" }
    case "Float":
      return { value: "NUMBER" }
    case "Choice": {
      const alternatives = Array.isArray(primitive.alternatives) ? primitive.alternatives.map((a) => String((a as [unknown])[0])) : []
      return { value: alternatives.join("|"), choices: alternatives }
    }
    case "Path":
      return { value: "PATH" }
    default:
      return { value: "TEXT" }
  }
}

interface Wrapping {
  optional: boolean
  repeatable: boolean
  default: string | undefined
}

const flagsOf = (o: unknown, w: Wrapping, into: Array<FlagDoc>): void => {
  if (!isNode(o)) return
  switch (o._tag) {
    case "Single": {
      const full = String(o.fullName)
      const name = String(o.name)
      const aliases = Array.isArray(o.aliases) ? o.aliases.map((a) => (String(a).length === 1 ? `-${a}` : `--${a}`)) : []
      const t = typeName(o.primitiveType)
      const boolChoice = t.choices?.length === 2 && t.choices.includes("true") && t.choices.includes("false")
      into.push({
        names: [...aliases, full],
        value: boolChoice ? "true|false" : t.value === undefined ? undefined : PLACEHOLDER[name] ?? t.value,
        optionalValue: boolChoice,
        description: text(o.description),
        optional: w.optional,
        repeatable: w.repeatable,
        // a switch is off unless given: no default worth saying
        default: t.value === undefined ? undefined : w.default,
      })
      return
    }
    case "Map":
      return flagsOf(o.options, w, into)
    case "Both":
    case "OrElse":
      flagsOf(o.left, w, into)
      return flagsOf(o.right, w, into)
    case "Variadic": {
      const min = Option.isOption(o.min) ? Option.getOrElse(o.min as Option.Option<number>, () => 0) : 0
      return flagsOf(o.argumentOption, { ...w, repeatable: true, optional: w.optional || min === 0 }, into)
    }
    case "KeyValueMap":
      return flagsOf(o.argumentOption, { ...w, repeatable: true }, into)
    case "WithDefault": {
      const fb = o.fallback
      const shown = Option.isOption(fb) ? undefined : typeof fb === "string" || typeof fb === "number" ? String(fb) : undefined
      return flagsOf(o.options, { ...w, optional: true, default: shown }, into)
    }
    case "WithFallback":
      return flagsOf(o.options, { ...w, optional: true }, into)
    default:
      return
  }
}

const argsOf = (a: unknown, w: Omit<Wrapping, "default">, into: Array<ArgDoc>): void => {
  if (!isNode(a)) return
  switch (a._tag) {
    case "Single":
      into.push({ name: String(a.name).replace(/^<(.*)>$/, "$1"), description: text(a.description), optional: w.optional, repeatable: w.repeatable })
      return
    case "Map":
      return argsOf(a.args, w, into)
    case "Both":
      argsOf(a.left, w, into)
      return argsOf(a.right, w, into)
    case "Variadic": {
      const min = Option.isOption(a.min) ? Option.getOrElse(a.min as Option.Option<number>, () => 0) : 0
      return argsOf(a.args, { optional: w.optional || min === 0, repeatable: true }, into)
    }
    case "WithDefault":
    case "WithFallbackConfig":
      return argsOf(a.args, { ...w, optional: true }, into)
    default:
      return
  }
}

const standardOf = (d: unknown): Node | undefined => {
  if (!isNode(d)) return undefined
  switch (d._tag) {
    case "Standard":
    case "GetUserInput":
      return d
    case "Map":
      return standardOf(d.command)
    case "Subcommands":
      return standardOf(d.parent)
    default:
      return undefined
  }
}

/** A command descriptor (one value of Command.getSubcommands) as the help shows it. */
export const describe = (descriptor: unknown): CommandDoc | undefined => {
  const s = standardOf(descriptor)
  if (s === undefined) return undefined
  const flags: Array<FlagDoc> = []
  const args: Array<ArgDoc> = []
  flagsOf(s.options, { optional: false, repeatable: false, default: undefined }, flags)
  argsOf(s.args, { optional: false, repeatable: false }, args)
  return { name: String(s.name), description: text(s.description), flags, args }
}

// ---------------------------------------------------------------- layout

/** Where help wraps: the terminal's width on a terminal, 80 columns otherwise. */
export const helpWidth = (stream: { readonly isTTY?: boolean; readonly columns?: number }): number =>
  stream.isTTY === true && typeof stream.columns === "number" && stream.columns >= 20 ? Math.min(stream.columns, 200) : 80

/**
 * One line cut at spaces to `width`, continuation lines indented as the line is (plus
 * `hang`). A word longer than the line stays whole on a line of its own.
 */
export const wrapLine = (line: string, width: number, hang = 0): Array<string> => {
  if (line.length <= width) return [line.trimEnd()]
  const indent = line.length - line.trimStart().length
  // `  name    what it does`: the text goes on under "what", aligned, as it was laid out
  const column = /^( +\S+ {2,})\S/.exec(line)?.[1]
  const lead = column ?? " ".repeat(indent)
  const next = " ".repeat(column !== undefined && column.length < width / 2 ? column.length : indent + hang)
  const words = line.slice(lead.length).trim().split(/ +/)
  const out: Array<string> = []
  let cur = lead
  let curHasWord = column !== undefined
  for (const w of words) {
    if (curHasWord && cur.length + 1 + w.length > width) {
      out.push(cur)
      cur = next + w
    } else cur = curHasWord && cur !== lead ? `${cur} ${w}` : cur + w
    curHasWord = true
  }
  out.push(cur)
  return out.map((l) => l.trimEnd())
}

/** A line that starts a new line of its own: indented (lists, examples) or labelled (`Exit status: …`). */
const startsLine = (l: string): boolean => l.startsWith(" ") || /^[A-Z][A-Za-z ]{0,30}:/.test(l)

/**
 * `text` refilled to `width`: the lines of a paragraph are joined, except indented lines
 * (list items, examples, kept as written) and labelled ones (`Exit status: …`, which
 * scripts/gen-man.ts reads at the start of a line).
 */
export const wrapText = (text: string, width: number, indent = 0): string => {
  const lines: Array<string> = []
  for (const l of text.split("\n")) {
    const prev = lines.length - 1
    if (l.trim() !== "" && !startsLine(l) && prev >= 0 && lines[prev]!.trim() !== "" && !lines[prev]!.startsWith(" ")) {
      lines[prev] = `${lines[prev]!.trimEnd()} ${l.trim()}`
    } else lines.push(l)
  }
  return lines
    .flatMap((l) => (l.trim() === "" ? [""] : wrapLine(" ".repeat(indent) + l, width, l.startsWith(" ") ? 2 : 0)))
    .join("\n")
}

const flagSpelling = (f: FlagDoc): string => {
  const names = f.names.join(", ")
  if (f.value === undefined) return names
  return f.optionalValue ? `${names}[=${f.value}]` : `${names} ${f.value}`
}

/** `[--pool DIR]...`, `--name REF`: one flag in a synopsis. */
const synopsisFlag = (f: FlagDoc): string => {
  const main = f.names[f.names.length - 1]!
  const one = f.value === undefined ? main : f.optionalValue ? `${main}[=${f.value}]` : `${main} ${f.value}`
  return `${f.optional ? `[${one}]` : one}${f.repeatable ? "..." : ""}`
}

const synopsisArg = (a: ArgDoc): string => {
  if (a.repeatable) return a.optional ? `[${a.name}...]` : `${a.name} [${a.name}...]`
  return a.optional ? `[${a.name}]` : a.name
}

const STATUS_END = "130 interrupted (SIGINT); 143 terminated (SIGTERM)"

/** Exit statuses per command, for descriptions that do not list them. */
const EXIT_STATUS: Readonly<Record<string, string>> = {
  lookup: "0 found; 1 not found; 2 usage (or not a store); 5 store I/O; 6 log damaged",
  ls: "0 ok; 2 usage (or not a store); 5 store I/O; 6 log damaged",
  log: "0 ok; 2 usage (or not a store); 6 log damaged",
  audit: "0 ok; 1 problems found; 2 usage (or not a store); 6 log damaged",
  rm: "0 ok; 1 a ref was not there; 2 usage (or not a store); 5 store I/O; 6 log damaged",
  gc: "0 ok; 2 usage (or not a store); 5 store I/O; 6 log damaged",
  doctor: "0 ready; 1 problems found; 2 usage",
  init: "0 ok; 2 usage; 5 store I/O",
  replay: "0 the replay matched; 1 it differed; 2 usage; 5 store I/O; 6 log damaged",
  serve: "0 stopped by SIGTERM or SIGINT; 2 usage; 5 store I/O",
  completion: "0 ok; 2 usage",
}

const exitStatusLine = (command: string, description: string): string | undefined => {
  if (/^Exit status:/m.test(description)) return undefined
  const own = EXIT_STATUS[command] ?? "0 ok; 2 usage; 3 registry; 4 layer rejected; 5 store I/O; 6 log damaged"
  return `Exit status: ${own}; ${command === "serve" ? "" : STATUS_END}`.replace(/; $/, "")
}

const HELP_FLAG: FlagDoc = {
  names: ["-h", "--help"],
  value: undefined,
  optionalValue: false,
  description: "show this help",
  optional: true,
  repeatable: false,
  default: undefined,
}

const attributes = (f: FlagDoc): string | undefined => {
  const parts = [
    f.optional ? "optional" : "required",
    ...(f.repeatable ? ["repeatable"] : []),
    ...(f.default !== undefined ? [`default: ${f.default}`] : []),
  ]
  return f === HELP_FLAG ? undefined : `(${parts.join("; ")})`
}

const entries = (items: ReadonlyArray<{ heading: string; body: ReadonlyArray<string> }>, width: number): string =>
  items
    .map(({ heading, body }) => [wrapLine(heading, width, 4).join("\n"), ...body.map((b) => wrapText(b, width, 2))].join("\n"))
    .join("\n\n")

/** `als CMD --help`. */
export const renderCommandHelp = (doc: CommandDoc, width: number): string => {
  const flags = [...doc.flags, HELP_FLAG]
  const args = doc.args.map(synopsisArg).join(" ")
  const full = ["$ als", doc.name, ...doc.flags.map(synopsisFlag), args].filter((s) => s !== "").join(" ")
  // the whole synopsis when it fits; else podman's short form, the flags listed below
  const usage = full.length <= width ? full : ["$ als", doc.name, "[OPTIONS]", args].filter((s) => s !== "").join(" ")
  const status = exitStatusLine(doc.name, doc.description)
  const sections: Array<string> = [
    `als ${doc.name}`,
    `USAGE\n\n${usage}`,
    `DESCRIPTION\n\n${wrapText(doc.description + (status ? `\n\n${status}` : ""), width)}`,
  ]
  if (doc.args.length > 0) {
    sections.push(`ARGUMENTS\n\n${entries(doc.args.map((a) => ({
      heading: synopsisArg(a),
      body: [a.description, `(${a.optional ? "optional" : "required"}${a.repeatable ? "; repeatable" : ""})`],
    })), width)}`)
  }
  sections.push(`OPTIONS\n\n${entries(flags.map((f) => ({
    heading: flagSpelling(f),
    body: [f.description, ...(attributes(f) ? [attributes(f)!] : [])].filter((b) => b !== ""),
  })), width)}`)
  return sections.join("\n\n") + "\n"
}

/** `als --help`: the root description (commands by task), each command's usage, the global flags. */
export const renderRootHelp = (description: string, commands: ReadonlyArray<CommandDoc>, version: string, width: number): string => {
  const usageOf = (c: CommandDoc) => [c.name, c.flags.length > 0 ? "[OPTIONS]" : "", ...c.args.map(synopsisArg)].filter((s) => s !== "").join(" ")
  const globals: ReadonlyArray<FlagDoc> = [
    HELP_FLAG,
    { ...HELP_FLAG, names: ["--version"], description: "print als's version" },
    {
      ...HELP_FLAG,
      names: ["--log-level"],
      value: "all|trace|debug|info|warning|error|fatal|none",
      description: "the least level of log lines printed",
    },
  ]
  return [
    `als ${version}`,
    "USAGE\n\n$ als COMMAND [OPTIONS]",
    `DESCRIPTION\n\n${wrapText(description, width)}`,
    `COMMANDS\n\n${commands.map((c) => wrapLine(`  - ${usageOf(c)}`, width, 4).join("\n")).join("\n")}`,
    `OPTIONS\n\n${entries(globals.map((f) => ({ heading: flagSpelling(f), body: [f.description] })), width)}`,
  ].join("\n\n") + "\n"
}

/** The help `argv` (the words after `als`) asks for, or undefined when it asks for none. */
export const helpFor = <N extends string, R, E, A>(
  root: Command.Command<N, R, E, A>,
  rootDescription: string,
  version: string,
  argv: ReadonlyArray<string>,
  width: number,
): string | undefined => {
  const end = argv.indexOf("--")
  const words = end === -1 ? argv : argv.slice(0, end)
  if (!words.some((w) => w === "--help" || w === "-h")) return undefined
  const subs = Command.getSubcommands(root)
  const first = words[0]
  if (first === undefined || first.startsWith("-")) {
    const docs = [...HashMap.values(subs)].map(describe).filter((d): d is CommandDoc => d !== undefined)
    docs.sort((a, b) => a.name.localeCompare(b.name))
    return renderRootHelp(rootDescription, docs, version, width)
  }
  const sub = HashMap.get(subs, first)
  if (Option.isNone(sub)) return undefined
  const doc = describe(sub.value)
  return doc === undefined ? undefined : renderCommandHelp(doc, width)
}
