// Issue 11 class 5, for a layer lock: a pull waiting on another live process's lock says whom
// it waits for (layer, pid) and gives up after 30 × its --timeout (store/LayerLock.ts,
// documented in docs/security.md#locks), where it used to wait a fixed 30 min. The notice goes
// through the Reporter: `-q` and `--json` print none of it, the error at the end they do.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { mkdirSync, utimesSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { als, alsCommand, type AlsResult } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { gzipLayer, Leftovers, MIN, pushTestImage, refOf, type TestImage } from "../crash/support.ts"

let registry: RegistryHandle
let img: TestImage
const left = new Leftovers()
const refreshers: ReturnType<typeof setInterval>[] = []

beforeAll(async () => {
  registry = await startRegistry()
  img = await pushTestImage(registry.url, "locks/app", "1", [gzipLayer([{ name: "etc/held", content: "held by another\n" }])])
  // the binary built (when src/ is newer) before any pull is timed
  await alsCommand()
}, 5 * MIN)

afterAll(async () => {
  for (const t of refreshers) clearInterval(t)
  await left.cleanup()
  await registry?.stop()
}, MIN)

const TIMEOUT_S = 1
/** 30 × --timeout */
const BOUND_MS = 30 * TIMEOUT_S * 1000
/** room for a busy machine: process start, the manifest, the last poll, the exit */
const MARGIN_MS = 20_000

/**
 * A store whose only layer is locked by a live process that never lets go: the lock names this
 * test's own pid (alive, and not the pull's) and its mtime is refreshed as a holder does, so it
 * never goes stale.
 */
const heldStore = async (name: string): Promise<string> => {
  const root = left.tempDir(name)
  const init = await als(["init", "--root", root])
  expect(init.exitCode).toBe(0)
  const lock = join(root, ".als", "locks", `${img.layers[0]!.digest.replace(":", "-")}.lock`)
  mkdirSync(lock, { recursive: true, mode: 0o700 })
  writeFileSync(join(lock, "owner"), `${hostname()} ${process.pid}\n`, { mode: 0o600 })
  refreshers.push(setInterval(() => {
    const now = new Date()
    utimesSync(lock, now, now)
  }, 1_000))
  return root
}

const pullHeld = async (root: string, flags: ReadonlyArray<string>): Promise<{ r: AlsResult; ms: number }> => {
  const started = Date.now()
  const r = await als(["pull", "--root", root, "--tls-verify=false", "--timeout", String(TIMEOUT_S), ...flags, refOf(registry.host, img)], { timeoutMs: 3 * MIN })
  return { r, ms: Date.now() - started }
}

test("a live holder that never lets go: the pull gives up after 30 × --timeout naming layer and pid; the wait is told, but not under -q or --json", async () => {
  const [plain, quiet, json] = await Promise.all([
    heldStore("lock-plain").then((root) => pullHeld(root, [])),
    heldStore("lock-quiet").then((root) => pullHeld(root, ["-q"])),
    heldStore("lock-json").then((root) => pullHeld(root, ["--json"])),
  ])
  const layer = img.layers[0]!.digest
  for (const [what, { r, ms }] of Object.entries({ plain, quiet, json })) {
    console.log(`${what}: exit ${r.exitCode} after ${ms} ms; stderr: ${r.stderr.trim().split("\n").join(" | ")}`)
    // the store's error: a layer kept locked (exit 5), naming the layer, the holder and the bound
    expect({ what, exit: r.exitCode }).toEqual({ what, exit: 5 })
    expect(r.stderr).toContain(`another als (pid ${process.pid} on ${hostname()}) has been working on layer ${layer} for longer than 30 s`)
    expect(r.stderr).toContain("30 × --timeout")
    expect(ms).toBeGreaterThanOrEqual(BOUND_MS - 1_000)
    expect(ms).toBeLessThan(BOUND_MS + MARGIN_MS)
  }
  // the wait itself is told once, with layer, pid and bound, where the user asked for talk
  const told = (r: AlsResult) => r.stderr.split("\n").filter((l) => l.startsWith("als: waiting for layer"))
  expect(told(plain.r)).toEqual([
    expect.stringMatching(new RegExp(`^als: waiting for layer ${layer}: another als \\(pid ${process.pid} on .+\\) is working on it \\(\\d+ s so far; giving up after 30 s\\)$`)),
  ])
  expect(told(quiet.r)).toEqual([])
  expect(told(json.r)).toEqual([])
  // --json: stdout stays NDJSON, one event a line
  for (const line of json.r.stdout.trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow()
}, 3 * MIN)
