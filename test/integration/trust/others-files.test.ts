// Class 4 (issue 11), files others made beyond the pool and the log: registries.conf
// (CONTAINERS_REGISTRIES_CONF), auth files (REGISTRY_AUTH_FILE, --authfile), a certs.d
// directory (--cert-dir), `audit --since` and a replay's recording. Each named as a FIFO or as
// /dev/zero must end at once with a clear message: read with a blocking open it would hang als
// for good (SIGINT and SIGTERM unheard, --timeout not applied), read whole it would fill memory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { als, alsCommand, alsOk, describeResult, type AlsResult } from "../../lib/als.ts"
import { run } from "../../lib/sh.ts"
import { buildLayer, pushLayout, startRegistry, writeOciImage, type RegistryHandle } from "../../lib/registry.ts"

const MIN = 60_000
let base: string
let store: string
let fifo: string
let plain: RegistryHandle
let authed: RegistryHandle

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "als-others-files-"))
  store = join(base, "store")
  fifo = join(base, "fifo")
  execFileSync("mkfifo", [fifo])
  ;[plain, authed] = await Promise.all([startRegistry(), startRegistry({ htpasswd: { user: "u", pass: "p" } })])
  const layout = join(mkdtempSync(join(base, "img-")), "l")
  writeOciImage(layout, "one", { os: "linux", architecture: "amd64" }, [await buildLayer({ "etc/one": "one\n" })])
  await Promise.all([
    pushLayout(layout, "one", `${plain.host}/t/one:1`),
    pushLayout(layout, "one", `${authed.host}/t/one:1`, { creds: "u:p" }),
  ])
  await alsCommand()
  await alsOk(["init", "--root", store])
}, 5 * MIN)

afterAll(async () => {
  await Promise.all([plain?.stop(), authed?.stop()])
  rmSync(base, { recursive: true, force: true })
}, MIN)

/** Ends by itself, fast, with `code` and `text` on stderr (a hang would hit the 20 s bound). */
const refusedPromptly = (r: AlsResult, ms: number, code: number, text: string | RegExp) => {
  expect(r.exitCode, describeResult(r)).toBe(code)
  if (typeof text === "string") expect(r.stderr, describeResult(r)).toContain(text)
  else expect(r.stderr, describeResult(r)).toMatch(text)
  expect(ms).toBeLessThan(15_000)
}

const timed = async (args: ReadonlyArray<string>, env?: Record<string, string>) => {
  const t = performance.now()
  const r = await als(args, { env, timeoutMs: 20_000 })
  return [r, performance.now() - t] as const
}

describe("files others made are read only when they are regular files", () => {
  test("registries.conf named by CONTAINERS_REGISTRIES_CONF: a FIFO or /dev/zero is refused (exit 2)", async () => {
    for (const conf of [fifo, "/dev/zero"]) {
      const [r, ms] = await timed(["pull", "--root", store, "--tls-verify=false", "--timeout", "3", `${plain.host}/t/one:1`], { CONTAINERS_REGISTRIES_CONF: conf })
      refusedPromptly(r, ms, 2, /cannot read it: it is a (FIFO|character device), not a regular file/)
    }
  }, 2 * MIN)

  test("an auth file (REGISTRY_AUTH_FILE, --authfile) that is a FIFO or /dev/zero fails the pull at once", async () => {
    const ref = `${authed.host}/t/one:1`
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, Record<string, string> | undefined]> = [
      [[], { REGISTRY_AUTH_FILE: fifo }],
      [["--authfile", fifo], undefined],
      [["--authfile", "/dev/zero"], undefined],
    ]
    for (const [flags, env] of cases) {
      const [r, ms] = await timed(["pull", "--root", store, "--tls-verify=false", "--timeout", "3", ...flags, ref], env)
      refusedPromptly(r, ms, 3, /cannot read credentials from .*: it is a (FIFO|character device), not a regular file/)
    }
  }, 2 * MIN)

  test("a certs.d file that is a FIFO, or a link to /dev/zero, fails the pull at once", async () => {
    const withFifo = join(base, "certs-fifo")
    const withZero = join(base, "certs-zero")
    mkdirSync(withFifo)
    mkdirSync(withZero)
    execFileSync("mkfifo", [join(withFifo, "ca.crt")])
    symlinkSync("/dev/zero", join(withZero, "ca.crt"))
    for (const dir of [withFifo, withZero]) {
      const [r, ms] = await timed(["pull", "--root", store, "--timeout", "3", "--cert-dir", dir, `${plain.host}/t/one:1`])
      refusedPromptly(r, ms, 3, /cannot read ca\.crt: it is a (FIFO|character device), not a regular file/)
    }
  }, 2 * MIN)

  test("audit --since a FIFO or /dev/zero reports an unreadable checkpoint", async () => {
    for (const since of [fifo, "/dev/zero"]) {
      const [r, ms] = await timed(["audit", "--root", store, "--since", since])
      // the audit's findings are its output (stdout)
      refusedPromptly({ ...r, stderr: r.stdout }, ms, 1, /cannot read the checkpoint: it is a (FIFO|character device), not a regular file/)
    }
  }, 2 * MIN)

  test("a recording whose recording.json is a FIFO is refused", async () => {
    const rec = join(base, "rec")
    mkdirSync(rec)
    execFileSync("mkfifo", [join(rec, "recording.json")])
    const [r, ms] = await timed(["replay", rec])
    refusedPromptly(r, ms, 1, "cannot read recording.json: it is a FIFO, not a regular file")
  }, 2 * MIN)
})

describe("audit --checkpoint FILE replaces only an earlier checkpoint (class 1, 4, 9)", () => {
  test("a device, a FIFO, a symlink or somebody's file is refused (exit 2) and left as it was", async () => {
    const dir = mkdtempSync(join(base, "cp-"))
    const victim = join(dir, "victim")
    writeFileSync(victim, "root:precious\n")
    const link = join(dir, "link")
    symlinkSync(victim, link)
    const dev = join(dir, "null")
    execFileSync("mknod", ["-m", "666", dev, "c", "1", "3"])
    for (const target of [dev, fifo, link, victim]) {
      const before = lstatSync(target)
      const r = await als(["audit", "--root", store, "--checkpoint", target], { timeoutMs: 20_000 })
      expect(r.exitCode, describeResult(r)).toBe(2)
      expect(r.stderr).toMatch(/--checkpoint .*: it (is a (character device|FIFO|symlink)|exists and is not an als checkpoint)/)
      const after = lstatSync(target)
      expect({ target, mode: after.mode, ino: after.ino }).toEqual({ target, mode: before.mode, ino: before.ino })
    }
    expect(readFileSync(victim, "utf8")).toBe("root:precious\n")
    expect(readdirSync(dir).sort()).toEqual(["link", "null", "victim"])
  }, 2 * MIN)

  test("a new file, then the same file again: mode 0644 under umask 000, no temporary file left", async () => {
    const dir = mkdtempSync(join(base, "cp-ok-"))
    const file = join(dir, "als.checkpoint")
    for (let i = 0; i < 2; i++) {
      const cmd = [...(await alsCommand()), "audit", "--root", store, "--checkpoint", file].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")
      const r = await run(["sh", "-c", `umask 000 && exec ${cmd}`], { timeoutMs: MIN })
      expect(r.exitCode, describeResult(r)).toBe(0)
      expect(statSync(file).mode & 0o777).toBe(0o644)
      expect(JSON.parse(readFileSync(file, "utf8")).format).toBe("als-log-checkpoint")
    }
    expect(readdirSync(dir)).toEqual(["als.checkpoint"])
    const since = await als(["audit", "--root", store, "--since", file])
    expect(since.exitCode, describeResult(since)).toBe(0)
  }, 2 * MIN)
})
