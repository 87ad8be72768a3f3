// Help that teaches: `als --help` lists the commands by task, every command's --help exits 0
// with an example, and `als completion SHELL` prints a completion script.
import { describe, expect, test } from "bun:test"
import { als, describeResult } from "../../lib/als.ts"

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
})
