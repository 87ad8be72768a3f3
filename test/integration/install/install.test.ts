// scripts/install.sh and scripts/uninstall.sh into temporary prefixes, with the real dist/als:
// what lands where, that the installed als, man pages and completions work, that uninstall takes
// back exactly what install put (foreign files stay, a changed file stays unless --force, a
// manifest naming anything outside the prefix is refused), and the systemd unit's handling.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { alsCommand, DIST_ALS, REPO_ROOT } from "../../lib/als.ts"
import { run, type RunResult } from "../../lib/sh.ts"

const INSTALL = join(REPO_ROOT, "scripts", "install.sh")
const UNINSTALL = join(REPO_ROOT, "scripts", "uninstall.sh")
const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version
const ESC = "\x1b"

const show = (r: RunResult): string => `$ ${r.cmd.join(" ")}\nexit ${r.exitCode}\n${r.stdout}\n${r.stderr}`
const sh = (cmd: ReadonlyArray<string>, env: Record<string, string | undefined> = {}, cwd?: string) =>
  run(cmd, { env, timeoutMs: 5 * 60_000, ...(cwd ? { cwd } : {}) })
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex")

/** Every file and directory below `dir`, relative, sorted ("" when dir does not exist). */
const tree = (dir: string): string[] => {
  if (!existsSync(dir)) return []
  const out: string[] = []
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      out.push(relative(dir, p) + (e.isDirectory() ? "/" : ""))
      if (e.isDirectory()) walk(p)
    }
  }
  walk(dir)
  return out.sort()
}

/**
 * A man page as text: `man -l` where man is installed; else (a machine without man-db) the
 * troff read crudely here, so the same assertions apply to what the page says.
 */
const renderMan = async (page: string, width: number): Promise<RunResult> => {
  if (Bun.which("man") !== null) return sh(["man", "-l", page], { MANWIDTH: String(width), MAN_KEEP_FORMATTING: undefined, PAGER: "cat" })
  const text = readFileSync(page, "utf8")
    .split("\n")
    .filter((l) => !/^\.(\\"|TH|nh|ad|PP|TP|br|sp|nf|fi)( |$)/.test(l))
    .map((l) => l.replace(/^\.SH /, "").replace(/^\.B /, "").replace(/^\\&/, ""))
    .join("\n")
    .replace(/\\f[BIRP]/g, "")
    .replace(/\\-/g, "-")
    .replace(/\\e/g, "\\")
    .replace(/\\\[u([0-9A-F]{4,6})\]/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
  return { cmd: ["(troff read as text)", page], exitCode: 0, stdout: text, stderr: "", durationMs: 0 }
}

/** The help's commands, as @effect/cli lists them under COMMANDS (`  - pull …`). */
const commandsOf = (help: string): string[] => {
  const at = help.indexOf("\nCOMMANDS\n")
  expect(at).toBeGreaterThan(-1)
  return [...help.slice(at).matchAll(/^\s+- ([a-z][a-z0-9-]*)\b/gm)].map((m) => m[1]!)
}

let work: string
/** A private copy of dist/als: other test processes may rebuild dist/als while these run. */
let ALS: string

beforeAll(async () => {
  // dist/als built (or rebuilt) once, then copied
  const cmd = await alsCommand()
  expect(cmd[0]).toBe(DIST_ALS)
  work = mkdtempSync(join(tmpdir(), "als-install-test-"))
  ALS = join(work, "als")
  copyFileSync(DIST_ALS, ALS)
  chmodSync(ALS, 0o755)
}, 10 * 60_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe("install.sh into a temporary prefix", () => {
  let prefix: string
  let installed: RunResult

  beforeAll(async () => {
    prefix = join(work, "prefix") // missing: the install creates it, and the uninstall removes it
    installed = await sh(["bash", INSTALL, "--prefix", prefix + "/", "--bin", ALS])
  }, 10 * 60_000)

  test("puts the binary, completions, a man page per command and a manifest under the prefix", async () => {
    expect(installed.exitCode, show(installed)).toBe(0)
    const help = (await sh([ALS, "--help"], { NO_COLOR: "1" })).stdout
    const commands = commandsOf(help)
    expect(commands).toContain("pull")
    expect(commands).toContain("completion")
    const expected = [
      "bin/als",
      "share/als/install-manifest",
      "share/bash-completion/completions/als",
      "share/fish/vendor_completions.d/als.fish",
      "share/man/man1/als.1",
      ...commands.map((c) => `share/man/man1/als-${c}.1`),
      "share/zsh/site-functions/_als",
    ].sort()
    const units = tree(join(REPO_ROOT, "contrib", "systemd")).filter((f) => /\.(service|socket|path|timer)$/.test(f))
    expected.push(...units.map((u) => `lib/systemd/system/${u}`))
    expect(tree(prefix).filter((f) => !f.endsWith("/"))).toEqual(expected.sort())
    expect(statSync(join(prefix, "bin/als")).mode & 0o777).toBe(0o755)
    expect(statSync(join(prefix, "share/man/man1/als.1")).mode & 0o777).toBe(0o644)

    // the manifest names every file with its hash, and every directory the install made
    const manifest = readFileSync(join(prefix, "share/als/install-manifest"), "utf8")
    expect(manifest).toContain(`prefix ${prefix}\n`)
    expect(manifest).toContain(`version ${VERSION}\n`)
    for (const f of expected.filter((f) => f !== "share/als/install-manifest")) {
      expect(manifest).toContain(`file ${sha256(join(prefix, f))} ${join(prefix, f)}\n`)
    }
    for (const d of ["", "/bin", "/share", "/share/man/man1", "/share/als"]) expect(manifest).toContain(`dir ${prefix}${d}\n`)
  })

  test("the installed als runs and its help has no escape codes in a pipe", async () => {
    const bin = join(prefix, "bin", "als")
    const version = await sh([bin, "--version"])
    expect(version.exitCode, show(version)).toBe(0)
    expect(version.stdout.trim().split("\n")[0]!.split(/\s+/).at(-1)).toBe(VERSION)
    // NO_COLOR and TERM removed: a pipe alone must keep the help plain
    for (const args of [["--help"], ["pull", "--help"]]) {
      const r = await sh([bin, ...args], { NO_COLOR: undefined, TERM: "xterm-256color", FORCE_COLOR: undefined })
      expect(r.exitCode, show(r)).toBe(0)
      expect(r.stdout.includes(ESC)).toBe(false)
      expect(r.stdout).toContain("USAGE")
    }
  })

  test("the man pages render with man, and als-pull(1) documents every option of `als pull --help`", async () => {
    const manDir = join(prefix, "share", "man", "man1")
    for (const page of readdirSync(manDir)) {
      const src = readFileSync(join(manDir, page), "utf8")
      expect(src).toMatch(/^\.TH ALS(\\-[A-Z\\-]+)? 1 /m)
      expect(src.includes(ESC)).toBe(false)
      const r = await renderMan(join(manDir, page), 100)
      expect(r.exitCode, show(r)).toBe(0)
      expect(r.stderr, `${page}: troff said:\n${r.stderr}`).toBe("")
      for (const section of ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"]) expect({ page, section, has: r.stdout.includes(section) }).toEqual({ page, section, has: true })
    }
    const pull = (await renderMan(join(manDir, "als-pull.1"), 200)).stdout
    const pullHelp = (await sh([ALS, "pull", "--help"], { NO_COLOR: "1" })).stdout
    const options = [...pullHelp.slice(pullHelp.indexOf("\nOPTIONS")).matchAll(/^(?:\(-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]!)
    expect(options).toContain("--tls-verify")
    for (const o of options.filter((o) => o !== "--wizard" && o !== "--completions")) expect({ o, documented: pull.includes(o) }).toEqual({ o, documented: true })
    expect(pull).toMatch(/^SYNOPSIS\n\s+als pull\s/m)
    expect(pull).toContain("EXAMPLES")
    // the top page lists every command with its page
    const top = (await renderMan(join(manDir, "als.1"), 200)).stdout
    for (const c of readdirSync(manDir).filter((p) => p !== "als.1")) expect(top).toContain(c.replace(/\.1$/, "(1)"))
  })

  test("the completions parse and register for als", async () => {
    const bash = join(prefix, "share/bash-completion/completions/als")
    const syntax = await sh(["bash", "-n", bash])
    expect(syntax.exitCode, show(syntax)).toBe(0)
    const registered = await sh(["bash", "-c", `source '${bash}' && complete -p als`])
    expect(registered.exitCode, show(registered)).toBe(0)
    expect(registered.stdout).toContain("-F _als_bash_completions")
    expect(readFileSync(join(prefix, "share/zsh/site-functions/_als"), "utf8")).toMatch(/^#compdef als\n/)
    const fish = readFileSync(join(prefix, "share/fish/vendor_completions.d/als.fish"), "utf8")
    expect(fish).toMatch(/^complete -c als /m)
    for (const f of [bash, join(prefix, "share/zsh/site-functions/_als")]) expect(readFileSync(f, "utf8").includes(ESC)).toBe(false)
  })

  test("installing again changes nothing and keeps the directories it created recorded", async () => {
    const before = readFileSync(join(prefix, "share/als/install-manifest"), "utf8")
    const again = await sh(["bash", INSTALL, "--prefix", prefix, "--bin", ALS])
    expect(again.exitCode, show(again)).toBe(0)
    expect(readFileSync(join(prefix, "share/als/install-manifest"), "utf8")).toBe(before)
  }, 5 * 60_000)

  test("uninstall removes exactly what was installed: foreign files stay, the rest goes, and it says how to remove a store", async () => {
    writeFileSync(join(prefix, "share/man/man1/other.1"), ".TH OTHER 1\n")
    mkdirSync(join(prefix, "etc"))
    writeFileSync(join(prefix, "etc/keep.conf"), "x\n")
    const r = await sh(["bash", UNINSTALL, "--prefix", prefix])
    expect(r.exitCode, show(r)).toBe(0)
    expect(tree(prefix)).toEqual(["etc/", "etc/keep.conf", "share/", "share/man/", "share/man/man1/", "share/man/man1/other.1"])
    expect(r.stdout).toContain("rm -rf ROOT")
    expect(r.stdout).toContain("additionallayerstores")
    // nothing left to uninstall: said, and a failure
    const again = await sh(["bash", UNINSTALL, "--prefix", prefix])
    expect(again.exitCode, show(again)).toBe(1)
    expect(again.stderr).toContain("no als install under")
  }, 5 * 60_000)
})

describe("install.sh and uninstall.sh refuse what they should", () => {
  test("a relative prefix, or one with .. in it, is a usage error and creates nothing", async () => {
    const cwd = mkdtempSync(join(work, "cwd-"))
    for (const p of ["relative/prefix", "./p", `${work}/a/../b`, `${work}/a/./b`]) {
      for (const script of [INSTALL, UNINSTALL]) {
        const r = await sh(["bash", script, "--prefix", p], {}, cwd)
        expect({ p, script, exit: r.exitCode }).toEqual({ p, script, exit: 2 })
        expect(r.stderr).toMatch(/prefix must/)
      }
    }
    expect(readdirSync(cwd)).toEqual([])
    expect(existsSync(join(work, "b"))).toBe(false)
  }, 5 * 60_000)

  test("a manifest that names a file outside the prefix is refused whole: nothing is removed", async () => {
    const prefix = join(work, "hostile")
    const victim = join(work, "victim")
    writeFileSync(victim, "not als\n")
    const inside = join(prefix, "bin", "als")
    mkdirSync(join(prefix, "bin"), { recursive: true })
    mkdirSync(join(prefix, "share", "als"), { recursive: true })
    writeFileSync(inside, "x\n")
    for (const bad of [victim, `${prefix}/../victim`, `${prefix}2/x`]) {
      writeFileSync(
        join(prefix, "share/als/install-manifest"),
        `prefix ${prefix}\nfile ${sha256(inside)} ${inside}\nfile ${sha256(victim)} ${bad}\n`,
      )
      const r = await sh(["bash", UNINSTALL, "--prefix", prefix])
      expect({ bad, exit: r.exitCode }).toEqual({ bad, exit: 1 })
      expect(r.stderr).toMatch(/outside the prefix|not a plain path/)
      expect(existsSync(victim)).toBe(true)
      expect(existsSync(inside)).toBe(true)
    }
    // a manifest written for another prefix, or with a line it does not know
    for (const text of [`prefix /usr/local\nfile ${sha256(inside)} ${inside}\n`, `prefix ${prefix}\nrm -rf /\n`]) {
      writeFileSync(join(prefix, "share/als/install-manifest"), text)
      const r = await sh(["bash", UNINSTALL, "--prefix", prefix])
      expect(r.exitCode, show(r)).toBe(1)
      expect(existsSync(inside)).toBe(true)
    }
  }, 5 * 60_000)
})

describe("the systemd unit", () => {
  test("a unit in contrib/systemd is installed with its Exec lines pointing at the installed als, and removed; a changed file only with --force", async () => {
    // A copy of the scripts beside a made-up unit: the repo's own contrib/systemd may not exist yet.
    const repo = join(work, "repo")
    mkdirSync(join(repo, "scripts"), { recursive: true })
    mkdirSync(join(repo, "contrib", "systemd"), { recursive: true })
    mkdirSync(join(repo, "dist"), { recursive: true })
    for (const f of ["install.sh", "uninstall.sh", "install-lib.sh", "gen-man.ts"]) copyFileSync(join(REPO_ROOT, "scripts", f), join(repo, "scripts", f))
    symlinkSync(ALS, join(repo, "dist", "als")) // the default --bin: dist/als
    writeFileSync(
      join(repo, "contrib/systemd/als-serve.service"),
      "[Unit]\nDescription=als serve\n\n[Service]\nExecStart=/usr/local/bin/als serve --root /var/lib/als /run/als\nExecStopPost=-/usr/bin/als doctor\nExecReload=/bin/kill -HUP $MAINPID\n",
    )
    chmodSync(join(repo, "contrib/systemd/als-serve.service"), 0o644)
    const prefix = join(work, "unit-prefix")
    const r = await sh(["bash", join(repo, "scripts/install.sh"), "--prefix", prefix])
    expect(r.exitCode, show(r)).toBe(0)
    const unit = readFileSync(join(prefix, "lib/systemd/system/als-serve.service"), "utf8")
    expect(unit).toContain(`ExecStart=${prefix}/bin/als serve --root /var/lib/als /run/als\n`)
    expect(unit).toContain(`ExecStopPost=-${prefix}/bin/als doctor\n`)
    expect(unit).toContain("ExecReload=/bin/kill -HUP $MAINPID\n")
    // systemd reads only /usr and /usr/local's lib/systemd/system: the script says how to link it
    expect(r.stdout).toContain(`systemctl link ${prefix}/lib/systemd/system/als-serve.service`)

    // a changed file is kept (and still listed) unless --force
    const page = join(prefix, "share/man/man1/als.1")
    writeFileSync(page, readFileSync(page, "utf8") + ".\\\" local edit\n")
    const u = await sh(["bash", join(repo, "scripts/uninstall.sh"), "--prefix", prefix])
    expect(u.exitCode, show(u)).toBe(0)
    expect(u.stderr).toContain(`kept ${page}: changed since it was installed`)
    expect(tree(prefix).filter((f) => !f.endsWith("/"))).toEqual(["share/als/install-manifest", "share/man/man1/als.1"])
    const forced = await sh(["bash", join(repo, "scripts/uninstall.sh"), "--prefix", prefix, "--force"])
    expect(forced.exitCode, show(forced)).toBe(0)
    expect(existsSync(prefix)).toBe(false)
  }, 5 * 60_000)
})
