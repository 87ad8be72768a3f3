// SIGTERM while `als serve` is pulling (issue 13, robustness): a lookup makes serve pull a
// layer whose blob the registry (a fault proxy in front of a real docker-registry on 127.0.0.1)
// stops sending halfway. SIGTERM then: no new pull starts, the running one is cancelled after a
// short grace: its staging, lock and pin are gone, PullFailed "interrupted" names the layer,
// the waiting lookup is answered (not left hanging), the mount goes and serve exits 0 within
// a bound. The store audits clean, and a server started again pulls the layer.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { encodeRef } from "../../src/domain/StorePaths.ts"
import { alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { blobPath, type FaultProxy, startFaultProxy } from "../lib/faultProxy.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { run } from "../lib/sh.ts"
import { MIN, Resources } from "./support.ts"
import { layerOf, pushLayers, type Serving, startServe } from "./serveSupport.ts"

let registry: RegistryHandle
let proxy: FaultProxy
const res = new Resources()
const servers: Serving[] = []

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startFaultProxy(registry.url)
}, 5 * MIN)

afterAll(async () => {
  for (const s of servers) {
    s.stop("SIGKILL")
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 10_000))])
    await run(["umount", "-l", s.mountpoint]).catch(() => undefined)
  }
  await proxy?.stop()
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

const mounted = (mnt: string) => readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === mnt)
const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir) : [])

const waitFor = async (what: string, cond: () => boolean, ms = 2 * MIN) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe("als serve: SIGTERM with a pull in flight", () => {
  test("the pull is cancelled cleanly (staging, lock and pin gone, PullFailed interrupted), the waiting lookup answered, unmounted, exit 0", async () => {
    // incompressible, so the gzip blob is big enough to stop halfway
    const l = await layerOf({ "data/blob.bin": new Uint8Array(randomBytes(512 * 1024)) })
    const ref = await pushLayers(registry.host, "serve-sigterm/app", "1", [l])
    const viaProxy = ref.replace(registry.host, proxy.host)
    proxy.setRules([{ path: blobPath(l.digest), fault: { kind: "cut", afterBytes: 64 * 1024, end: "stall" } }])
    const root = res.tempDir("sigterm-store")
    const mnt = res.tempDir("sigterm-mnt")
    const server = await startServe(root, mnt, ["--lazy=false", "--timeout", "600"])
    servers.push(server)

    // a client's lookup, in its own process: it blocks until serve answers
    const lookup = Bun.spawn(["stat", join(mnt, encodeRef(viaProxy), l.digest, "diff")], { stdout: "ignore", stderr: "pipe" })
    const staging = join(root, ".als", "staging")
    await waitFor("the pull to be stalled in its staging", () =>
      proxy.requestsFor(blobPath(l.digest)).some((r) => r.bytesSent >= 64 * 1024) && entries(staging).length > 0)
    expect(entries(join(root, ".als", "locks")).length).toBeGreaterThan(0)

    const t0 = Date.now()
    expect(await server.stop("SIGTERM")).toBe(0)
    const tookMs = Date.now() - t0
    // the grace (2 s) and the clean-up, well inside bin/als.ts's 5 s bound for clean-up
    expect(tookMs).toBeLessThan(20_000)
    // the waiting lookup was answered (ENOENT, or ENOTCONN once unmounted), not left hanging
    expect(await Promise.race([lookup.exited, new Promise((r) => setTimeout(() => r("hung"), 30_000))])).not.toBe("hung")
    expect(lookup.exitCode).not.toBe(0)
    expect(mounted(mnt)).toBe(false)

    // cancelled cleanly: nothing of the pull is left, and the log says why it ended
    expect(entries(staging)).toEqual([])
    expect(entries(join(root, ".als", "locks"))).toEqual([])
    expect(entries(join(root, ".als", "pins"))).toEqual([])
    expect(existsSync(join(root, l.digest))).toBe(false)
    const failed = eventsOf(await alsLog(root), "PullFailed")
    expect(failed.map((e) => [e.layer, (e.reason as { code: string }).code])).toEqual([[l.digest, "interrupted"]])
    await alsOk(["audit", "--root", root])
    // its stderr is read by another task: give it a moment to drain after the exit
    await waitFor("serve's last lines", () => server.stderr().includes("pulls in flight"), 10_000).catch(() => undefined)
    expect(server.stderr()).toContain("pulls in flight at stop: 0 finished, 1 cancelled")

    // a server started again, the registry healthy: the same lookup gets the layer
    proxy.setRules([])
    const again = await startServe(root, mnt, ["--lazy=false"])
    servers.push(again)
    const ok = await run(["stat", join(mnt, encodeRef(viaProxy), l.digest, "diff")], { timeoutMs: 2 * MIN })
    expect(ok.exitCode).toBe(0)
    expect(existsSync(join(root, l.digest, "diff", "data", "blob.bin"))).toBe(true)
    expect(await again.stop("SIGTERM")).toBe(0)
    expect(mounted(mnt)).toBe(false)
  }, 10 * MIN)
})
