// Help that teaches: `als --help` lists the commands by task, every command's --help exits 0
// with an example, and `als completion SHELL` prints a completion script.
import { describe, expect, test } from "bun:test"
import { als, alsCommand, describeResult } from "../../lib/als.ts"
import { run } from "../../lib/sh.ts"

const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "")

/** The subcommands @effect/cli lists under COMMANDS in `als --help` (`  - name …`). */
const listedCommands = (help: string): string[] => {
  const at = help.indexOf("COMMANDS")
  expect(at).toBeGreaterThan(-1)
  return [...help.slice(at).matchAll(/^\s+- ([a-z][a-z-]*)\b/gm)].map((m) => m[1]!)
}

describe("help", () => {
  test("als --help groups every command by task", async () => {
    const r = await als(["--help"])
    expect(r.exitCode, describeResult(r)).toBe(0)
    const help = plain(r.stdout)
    for (const group of ["Getting layers:", "Inspecting:", "Maintenance:", "Other:"]) expect(help).toContain(group)
    const commands = listedCommands(help)
    for (const c of ["pull", "lookup", "log", "doctor", "init", "completion"]) expect(commands).toContain(c)
    const description = help.slice(0, help.indexOf("COMMANDS"))
    for (const c of commands) expect({ c, grouped: new RegExp(`^  ${c} +\\S`, "m").test(description) }).toEqual({ c, grouped: true })
  }, 60_000)

  test("every command's --help exits 0 and shows an example", async () => {
    const commands = listedCommands(plain((await als(["--help"])).stdout))
    for (const c of commands) {
      const r = await als([c, "--help"])
      const out = plain(r.stdout)
      expect({ c, exit: r.exitCode, example: /Example/.test(out) }).toEqual({ c, exit: 0, example: true })
    }
  }, 120_000)

  test("als completion prints a script for bash, zsh and fish", async () => {
    const bash = await als(["completion", "bash"])
    expect(bash.exitCode, describeResult(bash)).toBe(0)
    expect(bash.stdout).toContain("_als_bash_completions")
    expect(bash.stdout).toMatch(/complete .*als/)
    expect(bash.stdout).toContain("doctor")
    const zsh = await als(["completion", "zsh"])
    expect(zsh.stdout).toContain("#compdef als")
    const fish = await als(["completion", "fish"])
    expect(fish.stdout).toContain("complete -c als")
    const bad = await als(["completion", "tcsh"])
    expect(bad.exitCode).not.toBe(0)
  }, 60_000)

  test("help is wrapped to 80 columns in a pipe and to the terminal's width on one", async () => {
    const widest = (s: string) => Math.max(...s.split(/\r?\n/).map((l) => [...l].length))
    const piped = await als(["pull", "--help"], { env: { COLUMNS: "200" } })
    expect(piped.exitCode, describeResult(piped)).toBe(0)
    expect(widest(piped.stdout)).toBeLessThanOrEqual(80)
    expect(widest(piped.stdout)).toBeGreaterThan(70)
    expect(piped.stdout).toContain("$ als pull [OPTIONS] REF [REF...]")
    expect(piped.stdout).not.toContain("als als")
    expect(piped.stdout).toContain("--tls-verify[=true|false]")
    for (const hidden of ["--wizard", "--completions"]) expect(piped.stdout).not.toContain(hidden)
    const bin = (await alsCommand()).join(" ")
    for (const cols of [60, 120]) {
      const tty = await run(["script", "-qec", `stty cols ${cols}; ${bin} pull --help`, "/dev/null"], { timeoutMs: 60_000, env: { NO_COLOR: "1" } })
      // the first line may carry a launcher's spinner when not run from dist/als
      const body = tty.stdout.slice(tty.stdout.indexOf("USAGE"))
      expect({ cols, widest: widest(body) <= cols, used: widest(body) > cols - 15 }).toEqual({ cols, widest: true, used: true })
    }
  }, 120_000)

  test("--wizard and --completions are left out of help but still work", async () => {
    const completions = await als(["--completions", "bash"])
    expect(completions.exitCode, describeResult(completions)).toBe(0)
    expect(completions.stdout).toContain("_als_bash_completions")
    const root = await als(["--help"])
    for (const hidden of ["--wizard", "--completions"]) expect(root.stdout).not.toContain(hidden)
  }, 60_000)
})
