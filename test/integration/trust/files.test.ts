// Issue 11, class 4 (the store's own log) and class 9 (permissions), through the real CLI and a
// real docker-registry on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, statSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { als, alsCommand, alsOk, describeResult } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { run } from "../../lib/sh.ts"
import { layerBlob, rawTar } from "../../lib/tars.ts"
import { b64, pushLayers, TempDirs } from "./support.ts"

let registry: RegistryHandle
const dirs = new TempDirs()
const MIN = 60_000
const L1 = layerBlob(rawTar([{ name: "etc/", type: "dir", mode: 0o755 }, { name: "etc/one", content: "one\n" }]), "gzip")
const L2 = layerBlob(rawTar([{ name: "two", content: "two\n" }]), "gzip")
let ref = ""

beforeAll(async () => {
  registry = await startRegistry()
  await pushLayers(registry.url, "trust/files", "1", [{ ...L1, annotations: {} }, { ...L2, annotations: {} }])
  ref = `${registry.host}/trust/files:1`
}, 5 * MIN)

afterAll(async () => {
  dirs.cleanup()
  await registry?.stop()
})

describe("the store's log is refused when it is not a regular file (exit 6)", () => {
  const storeWithLog = async (name: string) => {
    const root = dirs.make(name)
    await alsOk(["pull", "--root", root, "--tls-verify=false", ref])
    return root
  }

  test("a log that is a symlink: `als log` exits 6 with the reason, prints no table, and the target is untouched", async () => {
    const root = await storeWithLog("log-symlink")
    const log = join(root, ".als", "log")
    const elsewhere = join(dirs.make("elsewhere"), "log")
    renameSync(log, elsewhere)
    symlinkSync(elsewhere, log)
    const before = statSync(elsewhere)
    const r = await als(["log", "--root", root])
    expect(r.exitCode, describeResult(r)).toBe(6)
    expect(r.stderr).toContain("symlink")
    expect(r.stdout.trim()).toBe("")
    const j = await als(["log", "--json", "--root", root])
    expect(j.exitCode, describeResult(j)).toBe(6)
    expect(j.stdout.trim()).toBe("")
    // a pull does not append through the symlink either
    const p = await als(["pull", "--root", root, "--tls-verify=false", ref])
    expect(p.exitCode, describeResult(p)).toBe(6)
    expect(statSync(elsewhere).size).toBe(before.size)
    expect(statSync(elsewhere).mtimeMs).toBe(before.mtimeMs)
  }, 5 * MIN)

  test("a log that is a FIFO: `als log` exits 6 at once instead of waiting for a writer", async () => {
    const root = await storeWithLog("log-fifo")
    const log = join(root, ".als", "log")
    renameSync(log, `${log}.old`)
    execFileSync("mkfifo", [log])
    const t0 = Date.now()
    const r = await als(["log", "--root", root], { timeoutMs: 60_000 })
    expect(r.exitCode, describeResult(r)).toBe(6)
    expect(r.stderr).toContain("FIFO")
    expect(Date.now() - t0).toBeLessThan(60_000)
  }, 5 * MIN)

  test("a log that is a directory: exit 6", async () => {
    const root = await storeWithLog("log-dir")
    const log = join(root, ".als", "log")
    renameSync(log, `${log}.old`)
    mkdirSync(log)
    const r = await als(["log", "--root", root])
    expect(r.exitCode, describeResult(r)).toBe(6)
  }, 5 * MIN)
})

/** Runs als with the given umask (through sh, so the umask is the process's own). */
const alsUmask = async (umask: string, args: ReadonlyArray<string>) => {
  const cmd = [...(await alsCommand()), ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")
  return run(["sh", "-c", `umask ${umask} && exec ${cmd}`], { env: { NO_COLOR: "1" }, timeoutMs: 5 * MIN })
}

const mode = (p: string) => lstatSync(p).mode & 0o7777
const octal = (m: number) => m.toString(8).padStart(4, "0")

describe("modes are the same whatever the caller's umask (docs/security.md)", () => {
  for (const umask of ["000", "077"]) {
    test(`umask ${umask}: root and layer dirs 0755, info/blob 0644, .als 0700, staging and locks 0700, log 0600`, async () => {
      const root = join(dirs.make(`umask-${umask}`), "store")
      const r = await alsUmask(umask, ["pull", "--root", root, "--tls-verify=false", ref])
      expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0)
      const got: Record<string, string> = {
        root: octal(mode(root)),
        ".als": octal(mode(join(root, ".als"))),
        ".als/staging": octal(mode(join(root, ".als", "staging"))),
        ".als/locks": octal(mode(join(root, ".als", "locks"))),
        ".als/log": octal(mode(join(root, ".als", "log"))),
        ".pool": octal(mode(join(root, ".pool"))),
        "ref view": octal(mode(join(root, b64(ref)))),
      }
      for (const l of [L1, L2]) {
        got[`${l.digest.slice(0, 12)} dir`] = octal(mode(join(root, l.digest)))
        got[`${l.digest.slice(0, 12)} diff`] = octal(mode(join(root, l.digest, "diff")))
        got[`${l.digest.slice(0, 12)} info`] = octal(mode(join(root, l.digest, "info")))
        got[`${l.digest.slice(0, 12)} blob`] = octal(mode(join(root, l.digest, "blob")))
      }
      const want: Record<string, string> = {
        root: "0755",
        ".als": "0700",
        ".als/staging": "0700",
        ".als/locks": "0700",
        ".als/log": "0600",
        ".pool": "0755",
        "ref view": "0755",
      }
      for (const l of [L1, L2]) {
        want[`${l.digest.slice(0, 12)} dir`] = "0755"
        want[`${l.digest.slice(0, 12)} diff`] = "0755"
        want[`${l.digest.slice(0, 12)} info`] = "0644"
        want[`${l.digest.slice(0, 12)} blob`] = "0644"
      }
      expect(got).toEqual(want)
      // the tree keeps the tar's modes (etc/ 0755 in the tar), not the umask's
      expect(octal(mode(join(root, L1.digest, "diff", "etc")))).toBe("0755")
      // nothing under .als is group- or world-writable
      const walk = (d: string): string[] =>
        readdirSync(d).flatMap((n) => {
          const p = join(d, n)
          const st = lstatSync(p)
          return [...((st.mode & 0o022) !== 0 && !st.isSymbolicLink() ? [p] : []), ...(st.isDirectory() ? walk(p) : [])]
        })
      expect(walk(join(root, ".als"))).toEqual([])
    }, 5 * MIN)
  }

  test("a lock directory is never world-writable, even with umask 000", async () => {
    const root = join(dirs.make("umask-lock"), "store")
    await alsOk(["init", "--root", root])
    // a lock taken while a pull runs: watch for any lock dir during the pull
    const seen: number[] = []
    const watcher = setInterval(() => {
      for (const dir of [join(root, ".als", "locks"), join(root, ".als")]) {
        if (!existsSync(dir)) continue
        for (const n of readdirSync(dir)) {
          try {
            const st = lstatSync(join(dir, n))
            if (st.isDirectory() && /lock/.test(n)) seen.push(st.mode & 0o777)
          } catch {
            // gone meanwhile
          }
        }
      }
    }, 5)
    const r = await alsUmask("000", ["pull", "--root", root, "--tls-verify=false", ref])
    clearInterval(watcher)
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0)
    expect(seen.filter((m) => (m & 0o002) !== 0)).toEqual([])
    expect(octal(mode(join(root, ".als", "locks")))).toBe("0700")
  }, 5 * MIN)
})

// the layer tree must be readable by podman running as another user of the host
test("store files written with umask 077 stay readable by others (blob, info)", async () => {
  const root = join(dirs.make("umask-read"), "store")
  const r = await alsUmask("077", ["pull", "--root", root, "--tls-verify=false", ref])
  expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0)
  for (const l of [L1, L2]) {
    expect(mode(join(root, l.digest, "blob")) & 0o004).toBe(0o004)
    expect(mode(join(root, l.digest, "info")) & 0o004).toBe(0o004)
  }
}, 5 * MIN)

describe("hostile pools through `als lookup` (LinkRefused with the reason; nothing linked)", () => {
  test("a FIFO info does not hang the lookup; a diff symlinked to /etc is not linked", async () => {
    const pool = dirs.make("hostile-pool")
    await alsOk(["pull", "--root", pool, "--tls-verify=false", ref])
    const root = dirs.make("hostile-root")
    await alsOk(["init", "--root", root])
    // L1: its info replaced by a FIFO (a plain read would wait for a writer forever)
    const info = join(pool, L1.digest, "info")
    renameSync(info, `${info}.real`)
    execFileSync("mkfifo", [info])
    const t0 = Date.now()
    const r1 = await als(["lookup", L1.digest, "--root", root, "--pool", `store:${pool}`], { timeoutMs: 120_000 })
    expect(r1.exitCode, describeResult(r1)).toBe(1)
    expect(Date.now() - t0).toBeLessThan(120_000)
    // L2: its diff replaced by a symlink to the host's /etc
    const diff = join(pool, L2.digest, "diff")
    renameSync(diff, `${diff}.real`)
    symlinkSync("/etc", diff)
    const r2 = await als(["lookup", L2.digest, "--root", root, "--pool", `store:${pool}`])
    expect(r2.exitCode, describeResult(r2)).toBe(1)
    expect(existsSync(join(root, L1.digest))).toBe(false)
    expect(existsSync(join(root, L2.digest))).toBe(false)
    const log = await alsOk(["log", "--json", "--root", root, "--type", "LinkRefused"])
    const reasons = log.stdout.trim().split("\n").map((l) => JSON.parse(l) as { layer: string; reason: string })
    expect(reasons.map((e) => [e.layer, /FIFO/.test(e.reason) ? "FIFO" : /symlink/.test(e.reason) ? "symlink" : e.reason])).toEqual([
      [L1.digest, "FIFO"],
      [L2.digest, "symlink"],
    ])
  }, 5 * MIN)
})
