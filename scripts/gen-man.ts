// Man pages from the help text: `als --help` becomes als.1 and each command's `als CMD --help`
// becomes als-CMD.1, plain troff (man(7) macros) so the pages say exactly what the binary says.
//
//   bun scripts/gen-man.ts --als dist/als --out DIR [--date YYYY-MM-DD]
//
// Prints the files written, one per line. The date defaults to $SOURCE_DATE_EPOCH (reproducible
// packages), else today. The help is read with NO_COLOR=1 through a pipe; an escape code that
// still comes through is removed and said on stderr.

import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { mkdirSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"

// ---------------------------------------------------------------- the help text, parsed

/** One help screen: its sections in order, each a list of raw lines (blank lines kept). */
export interface HelpText {
  readonly sections: ReadonlyArray<{ readonly name: string; readonly lines: ReadonlyArray<string> }>
}

/** A command listed in the top-level help: `  pull        put every layer…`. */
export interface CommandEntry {
  readonly name: string
  readonly summary: string
}

// @effect/cli's section headings: a line of capitals alone (USAGE, DESCRIPTION, OPTIONS, …).
const HEADING = /^[A-Z][A-Z ]*[A-Z]$/
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g

export const stripAnsi = (s: string): string => s.replace(ANSI, "")

export const parseHelp = (text: string): HelpText => {
  const sections: Array<{ name: string; lines: string[] }> = []
  for (const raw of text.replace(/\r\n?/g, "\n").split("\n")) {
    const line = raw.trimEnd()
    if (HEADING.test(line)) sections.push({ name: line, lines: [] })
    else if (sections.length > 0) sections[sections.length - 1]!.lines.push(line)
    // lines before the first heading are the name/version banner: the page header says those
  }
  if (!sections.some((s) => s.name === "USAGE")) throw new Error("help text has no USAGE section")
  return { sections }
}

const section = (help: HelpText, name: string): ReadonlyArray<string> =>
  help.sections.find((s) => s.name === name)?.lines ?? []

/** Blank-line separated paragraphs, each a list of lines (leading indentation kept). */
export const paragraphs = (lines: ReadonlyArray<string>): Array<Array<string>> => {
  const out: Array<Array<string>> = []
  let cur: Array<string> = []
  for (const l of lines) {
    if (l.trim() === "") {
      if (cur.length > 0) out.push(cur)
      cur = []
    } else cur.push(l)
  }
  if (cur.length > 0) out.push(cur)
  return out
}

const COMMAND_NAME = /^[a-z][a-z0-9-]*$/

/**
 * The commands the top-level help lists: the names from its COMMANDS section (`  - pull …`),
 * else from its description's `  name  summary` lines; each summary from the description's line
 * for it (`  pull put every layer…`, with its more-indented continuation lines), else "".
 */
export const listedCommands = (help: HelpText): Array<CommandEntry> => {
  const description = section(help, "DESCRIPTION")
  const summaries = new Map<string, string>()
  description.forEach((line, i) => {
    const m = /^ {2}([a-z][a-z0-9-]*) +(\S.*)$/.exec(line)
    if (!m || summaries.has(m[1]!)) return
    const parts = [m[2]!.trim()]
    for (let j = i + 1; j < description.length && /^ {3,}\S/.test(description[j]!); j++) parts.push(description[j]!.trim())
    summaries.set(m[1]!, parts.join(" "))
  })
  const fromCommands = section(help, "COMMANDS")
    .map((l) => /^\s+- ([a-z][a-z0-9-]*)(?:\s|$)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined)
  const names = fromCommands.length > 0 ? fromCommands : [...summaries.keys()]
  const seen = new Set<string>()
  const out: Array<CommandEntry> = []
  for (const name of names) {
    if (seen.has(name) || !COMMAND_NAME.test(name)) continue
    seen.add(name)
    out.push({ name, summary: summaries.get(name) ?? "" })
  }
  return out
}

// ---------------------------------------------------------------- troff

/** Text safe in a troff line: backslashes, hyphens as \- (copyable options), non-ASCII as \[uXXXX]. */
export const escapeTroff = (s: string): string => {
  let out = ""
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (ch === "\\") out += "\\e"
    else if (ch === "-") out += "\\-"
    else if (cp === 9) out += " "
    else if (cp < 32 || cp === 127) continue
    else if (cp > 126) out += `\\[u${cp.toString(16).toUpperCase().padStart(4, "0")}]`
    else out += ch
  }
  return out
}

/** A text line troff will not read as a request (a leading `.` or `'`). */
const textLine = (s: string): string => (/^[.']/.test(s) ? `\\&${s}` : s)

const filled = (lines: ReadonlyArray<string>): Array<string> => lines.map((l) => textLine(escapeTroff(l.trim())))

const preformatted = (lines: ReadonlyArray<string>): Array<string> => {
  const indent = Math.min(...lines.map((l) => l.length - l.trimStart().length))
  return [".nf", ...lines.map((l) => textLine(escapeTroff(l.slice(indent)))), ".fi"]
}

/** A paragraph: filled text, or kept line by line when any line is indented (lists, tables). */
const renderParagraph = (lines: ReadonlyArray<string>): Array<string> =>
  lines.some((l) => /^\s/.test(l)) ? preformatted(lines) : filled(lines)

// @effect/cli's generic sentences under each option: the heading already says the type.
const BOILERPLATE = [
  /^A user-defined piece of text\.$/,
  /^An integer\.$/,
  /^A floating point number\.$/,
  /^A true or false value\.$/,
  /^This setting is optional\.$/,
  /^One of the following: .*$/,
]

// Generated flags the help hides as duplicates of `als completion` (issue 15): not documented.
const HIDDEN_OPTIONS = new Set(["--wizard", "--completions"])

/** `--name text`, `(-h, --help)`, `<REF> 1+` → bold flags, italic values. */
const entryHeading = (heading: string): string => {
  const h = heading.replace(/^\((.*)\)$/, "$1")
  return h
    .split(/(\s+)/)
    .map((tok) => {
      if (/^\s+$/.test(tok) || tok === "|") return tok
      const flag = /^(-{1,2}[A-Za-z0-9][A-Za-z0-9-]*)(,?)$/.exec(tok)
      if (flag) return `\\fB${escapeTroff(flag[1]!)}\\fR${flag[2]}`
      const arg = /^<(.+)>(\.\.\.)?$/.exec(tok)
      if (arg) return `\\fI${escapeTroff(arg[1]!)}\\fR${arg[2] ?? ""}`
      return `\\fI${escapeTroff(tok)}\\fR`
    })
    .join("")
}

/** ARGUMENTS / OPTIONS: each entry a heading at column 0 and its indented description. */
const renderEntries = (lines: ReadonlyArray<string>): Array<string> => {
  const entries: Array<{ heading: string; body: Array<string> }> = []
  for (const l of lines) {
    if (l.trim() === "") {
      if (entries.length > 0) entries[entries.length - 1]!.body.push("")
    } else if (!/^\s/.test(l)) entries.push({ heading: l.trim(), body: [] })
    else if (entries.length > 0) entries[entries.length - 1]!.body.push(l)
  }
  const out: Array<string> = []
  for (const e of entries) {
    const firstFlag = /(--?[A-Za-z0-9][A-Za-z0-9-]*)/.exec(e.heading)?.[1]
    if (firstFlag && HIDDEN_OPTIONS.has(firstFlag)) continue
    out.push(".TP", entryHeading(e.heading))
    const paras = paragraphs(e.body).filter((p) => !(p.length === 1 && BOILERPLATE.some((b) => b.test(p[0]!.trim()))))
    paras.forEach((p, i) => {
      if (i > 0) out.push(".sp")
      out.push(...renderParagraph(p.map((l) => l.replace(/^ {2}/, ""))))
    })
  }
  return out
}

export interface PageInput {
  /** "als" or "pull" */
  readonly command: string | undefined
  readonly help: HelpText
  readonly summary: string
  readonly version: string
  readonly date: string
  /** for als.1: the commands, listed under COMMANDS and SEE ALSO */
  readonly commands: ReadonlyArray<CommandEntry>
}

const SEE_ALSO_EXTERNAL = ["podman(1)", "containers-storage.conf(5)", "containers-registries.conf(5)"]

/** One man page (man(7) macros) from one help screen. */
export const renderManPage = (p: PageInput): string => {
  const name = p.command === undefined ? "als" : `als-${p.command}`
  const out: Array<string> = [
    `.\\" ${name}(1): generated by scripts/gen-man.ts from \`als${p.command ? ` ${p.command}` : ""} --help\`; do not edit.`,
    `.TH ${escapeTroff(name.toUpperCase())} 1 ${escapeTroff(p.date)} "als ${escapeTroff(p.version)}" "User Commands"`,
    ".nh", // no hyphenation: option names stay whole
    ".ad l",
    ".SH NAME",
    `${escapeTroff(name)} \\- ${escapeTroff(p.summary)}`,
    ".SH SYNOPSIS",
  ]
  // Usage: "$ pull [--flag …] <ARG>" (older help) or "$ als pull …": always shown as `als pull …`.
  // one usage per "$ " line; a usage wrapped to the terminal continues on lines without it
  const usage: Array<string> = []
  for (const l of section(p.help, "USAGE").map((l) => l.trim()).filter((l) => l !== "")) {
    if (l.startsWith("$") || usage.length === 0) usage.push(l.replace(/^\$\s*/, ""))
    else usage[usage.length - 1] += ` ${l}`
  }
  for (const u of usage.length > 0 ? usage : [""]) {
    const words = u.split(/\s+/).filter(Boolean)
    if (words[0] === "als") words.shift()
    if (p.command !== undefined && words[0] === p.command) words.shift()
    const rest = p.command === undefined && words.length === 0 ? ["COMMAND", "[OPTIONS]"] : words
    out.push(`.B ${p.command === undefined ? "als" : `als ${escapeTroff(p.command)}`}`)
    if (rest.length > 0) out.push(textLine(escapeTroff(rest.join(" "))))
    out.push(".br")
  }
  out.pop()

  // The description, with its "Example(s):" and "Exit status:" lines moved to their own sections.
  const description: Array<Array<string>> = []
  const examples: Array<string> = []
  const exit: Array<string> = []
  for (const para of paragraphs(section(p.help, "DESCRIPTION"))) {
    let target: "description" | "examples" | "exit" = "description"
    const kept: Array<string> = []
    for (const line of para) {
      const ex = /^Examples?:\s*(.*)$/.exec(line)
      const st = /^Exit status:\s*(.*)$/.exec(line)
      if (ex) {
        target = "examples"
        if (ex[1]) examples.push(ex[1])
      } else if (st) {
        target = "exit"
        if (st[1]) exit.push(st[1])
      } else if (target === "examples") examples.push(line.trim())
      else if (target === "exit") exit.push(line.trim())
      else kept.push(line)
    }
    if (kept.length > 0) description.push(kept)
  }
  if (description.length > 0) {
    out.push(".SH DESCRIPTION")
    description.forEach((para, i) => {
      if (i > 0) out.push(".PP")
      out.push(...renderParagraph(para))
    })
  }
  for (const s of p.help.sections) {
    if (s.name === "USAGE" || s.name === "DESCRIPTION") continue
    // The top-level COMMANDS section repeats every command's whole help on one line: the page
    // lists the commands with their summaries instead, each with its own page.
    const body =
      s.name === "COMMANDS" && p.command === undefined
        ? p.commands.flatMap((c) => [".TP", `\\fBals ${escapeTroff(c.name)}\\fR`, textLine(escapeTroff(c.summary)), ".br", `See \\fBals\\-${escapeTroff(c.name)}\\fR(1).`])
        : s.name === "ARGUMENTS" || s.name === "OPTIONS" || s.name === "COMMANDS"
          ? renderEntries(s.lines)
          : paragraphs(s.lines).flatMap((para, i) => [...(i > 0 ? [".PP"] : []), ...renderParagraph(para)])
    if (body.length > 0) out.push(`.SH ${escapeTroff(s.name)}`, ...body)
  }
  if (exit.length > 0) out.push(".SH EXIT STATUS", ...filled(exit))
  if (examples.length > 0) out.push(".SH EXAMPLES", ".nf", ...examples.map((e) => textLine(escapeTroff(e))), ".fi")
  const seeAlso = p.command === undefined ? p.commands.map((c) => `als-${c.name}(1)`) : ["als(1)"]
  out.push(".SH SEE ALSO", [...seeAlso, ...SEE_ALSO_EXTERNAL].map((r) => `\\fB${escapeTroff(r.replace(/\(\d\)$/, ""))}\\fR${/\(\d\)$/.exec(r)![0]}`).join(",\n"))
  return out.join("\n") + "\n"
}

// ---------------------------------------------------------------- running the binary

const execFileP = promisify(execFile)

const readHelp = async (als: string, args: ReadonlyArray<string>): Promise<string> => {
  // BUN_BE_BUN=1 lets install.sh run this script with the compiled als itself (no bun needed);
  // the als it asks for help must run as als.
  const { BUN_BE_BUN: _, ...env } = process.env
  const { stdout: raw } = await execFileP(als, [...args], {
    encoding: "utf8",
    env: { ...env, NO_COLOR: "1", TERM: "dumb", COLUMNS: "80" },
    maxBuffer: 16 * 1024 * 1024,
  })
  const clean = stripAnsi(raw)
  if (clean !== raw) process.stderr.write(`gen-man: \`als ${args.join(" ")}\` printed escape codes into a pipe; removed\n`)
  return clean
}

const isoDate = (): string => {
  const epoch = process.env.SOURCE_DATE_EPOCH
  if (epoch !== undefined) {
    if (!/^\d+$/.test(epoch)) throw new Error(`SOURCE_DATE_EPOCH is not a number of seconds: ${epoch}`)
    return new Date(Number(epoch) * 1000).toISOString().slice(0, 10)
  }
  return new Date().toISOString().slice(0, 10)
}

/** "An Additional Layer Store for podman, …: fills …" → "an Additional Layer Store for podman, …" */
const firstSentenceOf = (help: HelpText): string =>
  (section(help, "DESCRIPTION").find((l) => l.trim() !== "") ?? "")
    .split(/[:.]/)[0]!
    .trim()
    .replace(/^(A|An|The) /, (w) => w.toLowerCase())

/** Writes als.1 and als-CMD.1 for every listed command into `outDir`; returns the paths. */
export const generate = async (als: string, outDir: string, date: string): Promise<Array<string>> => {
  // "0.1.0", or "als 0.1.0": the last word of the first line
  const version = (await readHelp(als, ["--version"])).trim().split("\n")[0]!.trim().split(/\s+/).at(-1) ?? ""
  if (!/^[0-9][0-9A-Za-z.+~-]*$/.test(version)) throw new Error(`\`als --version\` printed no version: ${JSON.stringify(version)}`)
  const top = parseHelp(await readHelp(als, ["--help"]))
  const commands = listedCommands(top)
  if (commands.length === 0) throw new Error("`als --help` lists no commands")
  const firstSentence = firstSentenceOf(top)
  mkdirSync(outDir, { recursive: true })
  const written: Array<string> = []
  const write = (file: string, text: string) => {
    const path = join(outDir, file)
    writeFileSync(path, text, { mode: 0o644 })
    written.push(path)
  }
  // all at once: each run is mostly the binary starting up
  const helps = await Promise.all(commands.map(async (c) => parseHelp(await readHelp(als, [c.name, "--help"]))))
  // a command the top-level description does not summarize: its own description's first sentence
  const summarized = commands.map((c, i) => ({ ...c, summary: c.summary || firstSentenceOf(helps[i]!) || c.name }))
  write(
    "als.1",
    renderManPage({ command: undefined, help: top, summary: firstSentence || "an Additional Layer Store", version, date, commands: summarized }),
  )
  summarized.forEach((c, i) => {
    write(`als-${c.name}.1`, renderManPage({ command: c.name, help: helps[i]!, summary: c.summary, version, date, commands: [] }))
  })
  return written
}

const main = async (argv: ReadonlyArray<string>): Promise<void> => {
  let als: string | undefined
  let out: string | undefined
  let date: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    if (a === "--als") als = value()
    else if (a === "--out") out = value()
    else if (a === "--date") date = value()
    else throw new Error(`unknown argument: ${a} (usage: gen-man.ts --als BIN --out DIR [--date YYYY-MM-DD])`)
  }
  if (!als || !out) throw new Error("usage: gen-man.ts --als BIN --out DIR [--date YYYY-MM-DD]")
  if (date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new Error(`--date is not YYYY-MM-DD: ${date}`)
  for (const f of await generate(resolve(als), resolve(out), date ?? isoDate())) process.stdout.write(f + "\n")
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`gen-man: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exit(1)
  })
}
