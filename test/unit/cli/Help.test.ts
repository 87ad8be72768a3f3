// als's help layout (src/cli/Help.ts), read from the real command tree: every flag the parser
// takes is in its command's help (so the help cannot drift from the options), the generated
// duplicates are not, usage lines read `als CMD …`, every line fits the width, optional and
// repeatable flags are marked, and every command lists its exit statuses.
import { describe, expect, test } from "bun:test"
import { Command } from "@effect/cli"
import { HashMap } from "effect"
import { flagTable } from "../../../src/cli/ArgvGuard.ts"
import { helpFor, helpWidth, wrapLine, wrapText } from "../../../src/cli/Help.ts"
import { als } from "../../../src/cli/Main.ts"

const HIDDEN = new Set(["--wizard", "--completions", "--log-level", "--version"])
const commands = [...HashMap.keys(Command.getSubcommands(als))]
const help = (args: ReadonlyArray<string>, width = 80) => helpFor(als, "ROOT DESCRIPTION\nExit status: 0 ok; 130 interrupted (SIGINT); 143 terminated (SIGTERM)", "9.9.9", args, width)!

describe("help", () => {
  test("every flag the parser takes is in its command's help; --wizard and --completions are not", () => {
    const table = flagTable(als)
    expect(commands.length).toBeGreaterThan(8)
    for (const c of commands) {
      const text = help([c, "--help"])
      for (const flag of table.get(c)!.keys()) {
        const shown = new RegExp(`^(-\\w, )?${flag}\\b|^-\\w, ${flag}\\b|^${flag}, `, "m").test(text)
        expect({ c, flag, shown }).toEqual({ c, flag, shown: !HIDDEN.has(flag) })
      }
    }
  })

  test("usage lines read `als CMD …`; the root's reads `als COMMAND`", () => {
    for (const c of commands) {
      const usage = help([c, "--help"]).split("USAGE\n\n")[1]!.split("\n")[0]!
      expect(usage.startsWith(`$ als ${c}`)).toBe(true)
      expect(usage).not.toContain("als als")
    }
    expect(help(["--help"])).toContain("\n$ als COMMAND [OPTIONS]\n")
  })

  test("every line fits the width; indented lists keep their column", () => {
    for (const width of [60, 80, 120]) {
      for (const args of [["--help"], ...commands.map((c) => [c, "--help"])]) {
        const long = help(args, width).split("\n").filter((l) => l.length > width && / /.test(l.trim()))
        expect({ args, width, long }).toEqual({ args, width, long: [] })
      }
    }
    expect(wrapLine("  pull        put an image's layers in the store", 30)).toEqual(["  pull        put an image's", "              layers in the", "              store"])
    expect(wrapText("one\ntwo\nExit status: 0 ok\n  kept   as is", 80)).toBe("one two\nExit status: 0 ok\n  kept   as is")
  })

  test("booleans as podman shows them, optional/repeatable/default marked", () => {
    const pull = help(["pull", "--help"])
    expect(pull).toContain("\n--tls-verify[=true|false]\n")
    expect(pull).toMatch(/\n--pool DIR\n(  .*\n)*  \(optional; repeatable\)\n/)
    expect(pull).toMatch(/\n--jobs N\n(  .*\n)*  \(optional; default: 4\)\n/)
    expect(pull).toMatch(/\n-q, --quiet\n/)
    expect(pull).toContain("\n$ als pull [OPTIONS] REF [REF...]\n")
    // a short synopsis is shown whole, optional flags in brackets
    expect(help(["rm", "--help"])).toContain("\n$ als rm [--root DIR] REF [REF...]\n")
    expect(help(["ls", "--help"], 200)).toContain("\n$ als ls [--root DIR] [--json]\n")
  })

  test("every command lists its exit statuses, 130 and 143 included (serve ends on a signal with 0)", () => {
    for (const c of commands) {
      const text = help([c, "--help"]).replace(/\s+/g, " ")
      expect({ c, status: /Exit status: 0 /.test(text) }).toEqual({ c, status: true })
      if (c !== "serve") expect({ c, signals: text.includes("130 interrupted (SIGINT); 143 terminated (SIGTERM)") }).toEqual({ c, signals: true })
    }
  })

  test("no help asked: nothing; an unknown command: left to @effect/cli; width is the terminal's, else 80", () => {
    expect(helpFor(als, "", "1", ["pull", "x"], 80)).toBeUndefined()
    expect(helpFor(als, "", "1", ["pull", "--", "--help"], 80)).toBeUndefined()
    expect(helpFor(als, "", "1", ["bogus", "--help"], 80)).toBeUndefined()
    expect(helpWidth({ isTTY: false, columns: 200 })).toBe(80)
    expect(helpWidth({ isTTY: true, columns: 132 })).toBe(132)
    expect(helpWidth({ isTTY: true })).toBe(80)
  })
})
