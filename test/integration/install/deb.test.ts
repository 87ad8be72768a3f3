// `bun run package` builds a .deb with dpkg-deb; dpkg installs it on this machine (als in
// /usr/bin runs, man finds its pages), then removes and purges it leaving no file behind.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { alsCommand, DIST_ALS, REPO_ROOT } from "../../lib/als.ts"
import { run, type RunResult } from "../../lib/sh.ts"

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version
const show = (r: RunResult): string => `$ ${r.cmd.join(" ")}\nexit ${r.exitCode}\n${r.stdout}\n${r.stderr}`
const sh = (cmd: ReadonlyArray<string>, env: Record<string, string | undefined> = {}) =>
  run(cmd, { env, timeoutMs: 5 * 60_000, cwd: REPO_ROOT })

/** dpkg with a wait while another dpkg/apt (another test, an install job) holds its lock. */
const dpkg = async (args: ReadonlyArray<string>): Promise<RunResult> => {
  const deadline = Date.now() + 5 * 60_000
  for (;;) {
    const r = await sh(["dpkg", ...args], { DEBIAN_FRONTEND: "noninteractive" })
    if (r.exitCode === 0 || !/lock/i.test(r.stderr) || Date.now() > deadline) return r
    await Bun.sleep(2000)
  }
}

let work: string
let deb: string
let bin: string

beforeAll(async () => {
  const cmd = await alsCommand()
  expect(cmd[0]).toBe(DIST_ALS)
  work = mkdtempSync(join(tmpdir(), "als-deb-test-"))
  // a private copy: other test processes may rebuild dist/als while this runs
  bin = join(work, "als")
  copyFileSync(DIST_ALS, bin)
  chmodSync(bin, 0o755)
}, 10 * 60_000)

afterAll(async () => {
  // never leave the package installed, whatever failed
  // dpkg knows the package (installed, or removed with its maintainer scripts kept): purge it
  if ((await sh(["dpkg-query", "-W", "-f=${Status}", "als"])).exitCode === 0) await dpkg(["-P", "als"])
  if (work) rmSync(work, { recursive: true, force: true })
}, 5 * 60_000)

describe("the .deb", () => {
  test("bun run package builds it with the version, architecture and files expected", async () => {
    // no compression here: what is packed is the same, and the test stays quick on a busy machine
    const r = await sh(["npx", "bun", "run", "package", "--bin", bin, "--out", join(work, "out"), "--compress", "none"])
    expect(r.exitCode, show(r)).toBe(0)
    const arch = (await sh(["dpkg", "--print-architecture"])).stdout.trim()
    deb = join(work, "out", `als_${VERSION}_${arch}.deb`)
    expect(r.stdout.trim().split("\n").at(-1)).toBe(deb)

    const field = async (name: string) => (await sh(["dpkg-deb", "-f", deb, name])).stdout.trim()
    expect(await field("Package")).toBe("als")
    expect(await field("Version")).toBe(VERSION)
    expect(await field("Architecture")).toBe(arch)
    expect(await field("Recommends")).toBe("podman")
    expect(await field("Depends")).toMatch(/^(libc6 \(>= 2\.\d+\))?$/)

    const list = (await sh(["dpkg-deb", "-c", deb])).stdout
    for (const path of [
      "./usr/bin/als",
      "./usr/share/bash-completion/completions/als",
      "./usr/share/zsh/vendor-completions/_als",
      "./usr/share/fish/vendor_completions.d/als.fish",
      "./usr/share/man/man1/als.1.gz",
      "./usr/share/man/man1/als-pull.1.gz",
      "./usr/share/doc/als/copyright",
    ]) expect({ path, packed: list.includes(` ${path}\n`) }).toEqual({ path, packed: true })
    // every entry owned by root, whoever built it
    for (const line of list.trim().split("\n")) expect(line).toMatch(/^\S+ root\/root /)
    const units = list.match(/\.\/lib\/systemd\/system\/\S+/g) ?? []
    const repoUnits = existsSync(join(REPO_ROOT, "contrib/systemd")) ? (await sh(["bash", "-c", "cd contrib/systemd && ls *.service *.socket *.path *.timer 2>/dev/null || true"])).stdout.trim().split("\n").filter(Boolean) : []
    expect(units.map((u) => u.replace("./lib/systemd/system/", "")).sort()).toEqual(repoUnits.sort())
  }, 10 * 60_000)

  test("dpkg installs it: /usr/bin/als runs, man finds its pages; dpkg -r and -P leave no file", async () => {
    expect(deb, "the package was not built").toBeDefined()
    const i = await dpkg(["-i", deb])
    expect(i.exitCode, show(i)).toBe(0)
    const v = await sh(["/usr/bin/als", "--version"])
    expect(v.exitCode, show(v)).toBe(0)
    expect(v.stdout.trim().split("\n")[0]!.split(/\s+/).at(-1)).toBe(VERSION)
    // man finds the page where man-db is installed; the page is there either way
    if (Bun.which("man") !== null) expect((await sh(["man", "-w", "als-pull"])).stdout.trim()).toBe("/usr/share/man/man1/als-pull.1.gz")
    expect(existsSync("/usr/share/man/man1/als-pull.1.gz")).toBe(true)
    const status = await sh(["dpkg-query", "-W", "-f=${Status}", "als"])
    expect(status.stdout).toBe("install ok installed")

    const listed = (await sh(["dpkg", "-L", "als"])).stdout.trim().split("\n").filter((p) => p.startsWith("/") && p !== "/.")
    // (a directory may be a symlink to one on a merged-/usr system: /lib → usr/lib)
    const files = listed.filter((p) => !statSync(p).isDirectory())
    expect(files).toContain("/usr/bin/als")
    expect(files).toContain("/usr/share/man/man1/als.1.gz")

    const removed = await dpkg(["-r", "als"])
    expect(removed.exitCode, show(removed)).toBe(0)
    expect((await sh(["dpkg-query", "-W", "-f=${Status}", "als"])).stdout).not.toMatch(/ installed$/)
    expect(files.filter((f) => existsSync(f))).toEqual([])
    const purged = await dpkg(["-P", "als"])
    expect(purged.exitCode, show(purged)).toBe(0)
    expect((await sh(["dpkg-query", "-W", "-f=${Status}", "als"])).stdout).not.toMatch(/ installed$|config-files/)
    // a directory the package listed stays only when another package owns it too
    for (const dir of listed.filter((p) => existsSync(p))) {
      const owner = await sh(["dpkg", "-S", dir])
      expect({ dir, ownedByAnother: owner.exitCode === 0 }).toEqual({ dir, ownedByAnother: true })
    }
    expect(existsSync("/usr/share/doc/als")).toBe(false)
  }, 10 * 60_000)
})
