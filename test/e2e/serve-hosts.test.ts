// Issue 13, "Many hosts, one store": two `als serve` processes in their own UTS and mount
// namespaces (two "hosts", hostA and hostB, each with its own FUSE mount, visible only inside
// its namespace) over ONE store directory. Looked up through both mounts at once, every layer
// is fetched and committed once; a layer lock recorded for the other host is never taken over
// while its holder lives, even when its pid means nothing here (the hosts share one pid
// namespace, so only the recorded host name can tell). Real docker-registry on 127.0.0.1.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { join } from "node:path"
import { als, alsLog, type AlsLogEvent } from "../lib/als.ts"
import { startFaultProxy, type FaultProxy } from "../lib/faultProxy.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { run } from "../lib/sh.ts"
import { b64, MIN, Resources } from "./support.ts"
import { fetchesPerLayer, layerOf, pushLayers, type Serving, startServe } from "./serveSupport.ts"

let registry: RegistryHandle
let proxy: FaultProxy
const res = new Resources()
const servers: Serving[] = []
const sleepers: Array<ReturnType<typeof Bun.spawn>> = []

/** `als serve` on its own "host": new UTS and mount namespaces, hostname `host`, mount at `mnt`. */
const serveOnHost = async (host: string, root: string, mnt: string): Promise<Serving> => {
  const wrap = ["unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c", `hostname ${host} && exec "$@"`, "sh"]
  const s = await startServe(root, mnt, ["--lazy=false", "--timeout", "300"], wrap)
  servers.push(s)
  return s
}

/** Runs `cmd` inside the mount (and UTS) namespaces of `s`, where its mount is visible. */
const inHost = (s: Serving, cmd: ReadonlyArray<string>) => run(["nsenter", "-t", String(s.pid), "-m", "-u", "--", ...cmd], { timeoutMs: 5 * MIN })

const committedPerLayer = (events: ReadonlyArray<AlsLogEvent>): Map<string, number> => {
  const n = new Map<string, number>()
  for (const e of events) {
    if (e.type !== "LayerCommitted") continue
    const layer = (e as unknown as { layer: string }).layer
    n.set(layer, (n.get(layer) ?? 0) + 1)
  }
  return n
}

const lockPathOf = (root: string, digest: string) => join(root, ".als", "locks", `${digest.replace(":", "-")}.lock`)

const waitFor = async (what: string, cond: () => boolean, ms: number) => {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(50)
  }
}

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startFaultProxy(registry.url)
}, 10 * MIN)

afterAll(async () => {
  for (const t of sleepers) t.kill("SIGKILL")
  for (const s of servers) {
    s.stop("SIGTERM")
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 15_000))])
  }
  // a serve that would not stop: its namespace (and the mount in it) goes with it
  for (const s of servers) if ((await Promise.race([s.exited.then(() => true), Bun.sleep(100).then(() => false)])) === false) await s.stop("SIGKILL")
  await res.cleanup()
  await proxy?.stop()
  await registry?.stop()
}, 5 * MIN)

describe("many hosts, one store: two als serve in their own UTS and mount namespaces", () => {
  test("the same image's layers looked up through both hosts' mounts at once: each layer fetched and committed once, both answer with the store's diff", async () => {
    // incompressible layers behind a throttled registry: each pull lasts long enough for the
    // other host's lookup of the same layer to arrive while it runs
    const layers = await Promise.all([0, 1, 2].map((i) => layerOf({ [`data${i}.bin`]: new Uint8Array(randomBytes(160 * 1024)) })))
    await pushLayers(registry.host, "hosts/img", "1", layers)
    const ref = `${proxy.host}/hosts/img:1`
    proxy.setRules([{ path: /\/blobs\/sha256:/, fault: { kind: "throttle", bytesPerSecond: 96 * 1024 } }])

    const root = res.tempDir("hosts-store")
    const a = await serveOnHost("hostA", root, res.tempDir("hosts-mntA"))
    const b = await serveOnHost("hostB", root, res.tempDir("hosts-mntB"))
    expect((await inHost(a, ["hostname"])).stdout.trim()).toBe("hostA")
    expect((await inHost(b, ["hostname"])).stdout.trim()).toBe("hostB")
    // each mount lives only in its own namespace
    expect((await inHost(a, ["mountpoint", "-q", b.mountpoint])).exitCode).not.toBe(0)
    expect((await inHost(b, ["mountpoint", "-q", a.mountpoint])).exitCode).not.toBe(0)

    // who the layer locks name while the lookups run
    const owners = new Set<string>()
    let watching = true
    const watch = (async () => {
      while (watching) {
        for (const l of layers) {
          try {
            // empty: read between the holder's exclusive create and its write (a waiter reads
            // that as "no one known" and takes nothing over: test/unit/sys/MkdirLock.test.ts)
            const owner = fs.readFileSync(join(lockPathOf(root, l.digest), "owner"), "utf8").trim()
            if (owner !== "") owners.add(owner)
          } catch {
            // not held now
          }
        }
        await Bun.sleep(20)
      }
    })()
    const lookups = [a, b].flatMap((s) => layers.map(async (l) => ({ host: s === a ? "A" : "B", layer: l.digest, r: await inHost(s, ["readlink", join(s.mountpoint, b64(ref), l.digest, "diff")]) })))
    const done = await Promise.all(lookups)
    watching = false
    await watch
    for (const d of done) expect({ host: d.host, layer: d.layer, exit: d.r.exitCode, target: d.r.stdout.trim() }).toEqual({ host: d.host, layer: d.layer, exit: 0, target: join(root, d.layer, "diff") })

    expect(await a.stop()).toBe(0)
    expect(await b.stop()).toBe(0)
    const events = await alsLog(root)
    const once = Object.fromEntries(layers.map((l) => [l.digest, 1]))
    expect(Object.fromEntries(fetchesPerLayer(events))).toEqual(once)
    expect(Object.fromEntries(committedPerLayer(events))).toEqual(once)
    // the registry was asked for each blob once
    for (const l of layers) expect(proxy.requests.filter((q) => q.method === "GET" && q.path.includes(`/blobs/${l.digest}`)).length).toBe(1)
    for (const l of layers) expect(fs.readFileSync(join(root, l.digest, "diff", `data${layers.indexOf(l)}.bin`)).equals(Buffer.from(l.tar.subarray(512, 512 + 160 * 1024)))).toBe(true)
    expect((await als(["audit", "--root", root])).exitCode).toBe(0)
    // only these two hosts' serving processes ever held a layer lock
    const allowed = new Set([`hostA ${a.pid}`, `hostB ${b.pid}`])
    expect(owners.size).toBeGreaterThan(0)
    for (const o of owners) expect({ owner: o, known: allowed.has(o) }).toEqual({ owner: o, known: true })
  }, 10 * MIN)

  for (const holder of ["a live process on hostB", "hostB with a pid that is dead here"] as const) {
    test(`a layer lock recorded for ${holder}: hostA's lookup waits, never takes it over, and proceeds once it is released`, async () => {
      proxy.setRules([])
      const layer = await layerOf({ "held.txt": `held by ${holder}\n` })
      const tag = holder.startsWith("a live") ? "live" : "deadhere"
      await pushLayers(registry.host, "hosts/held", tag, [layer])
      const ref = `${registry.host}/hosts/held:${tag}`
      const root = res.tempDir("hosts-held")

      // the holder: a process on "hostB" (its own UTS namespace), or a pid that exists on no
      // host here, as a holder on a real other host (another pid namespace) looks from hostA
      let pid: number
      if (holder.startsWith("a live")) {
        const sleeper = Bun.spawn(["unshare", "--uts", "sh", "-c", "hostname hostB && exec sleep 600"], { stdout: "ignore", stderr: "ignore" })
        sleepers.push(sleeper)
        pid = sleeper.pid
      } else {
        const gone = Bun.spawn(["true"])
        await gone.exited
        pid = gone.pid
        expect(() => process.kill(pid, 0)).toThrow()
      }
      const lock = lockPathOf(root, layer.digest)
      fs.mkdirSync(lock, { recursive: true, mode: 0o700 })
      fs.writeFileSync(join(lock, "owner"), `hostB ${pid}\n`)
      // the holder is alive and working: it keeps refreshing the lock, as MkdirLock's holder does
      const refresh = setInterval(() => {
        const now = new Date()
        try {
          fs.utimesSync(lock, now, now)
        } catch {
          // released
        }
      }, 500)
      try {
        const a = await serveOnHost("hostA", root, res.tempDir("hosts-mntA"))
        let settled = false
        const lookup = inHost(a, ["readlink", join(a.mountpoint, b64(ref), layer.digest, "diff")]).finally(() => (settled = true))
        // event-based: the serving process says whom it waits for (after a few seconds)
        await waitFor("hostA to say it waits for hostB", () => {
          if (settled) throw new Error(`hostA's lookup ended while hostB held the lock:\n${a.stderr()}`)
          return a.stderr().includes(`pid ${pid} on hostB`)
        }, 2 * MIN)
        // and keeps waiting past the lock's staleness period (10 s): the lock is still hostB's
        const t0 = Date.now()
        while (Date.now() - t0 < 12_000) {
          expect(fs.readFileSync(join(lock, "owner"), "utf8")).toBe(`hostB ${pid}\n`)
          expect(settled).toBe(false)
          await Bun.sleep(500)
        }
        expect(fetchesPerLayer(await alsLog(root)).get(layer.digest)).toBeUndefined()
        expect(fs.existsSync(join(root, layer.digest))).toBe(false)

        // hostB's holder releases: hostA proceeds and pulls the layer
        clearInterval(refresh)
        fs.rmSync(lock, { recursive: true })
        const r = await lookup
        expect({ exit: r.exitCode, target: r.stdout.trim() }).toEqual({ exit: 0, target: join(root, layer.digest, "diff") })
        expect(fs.readFileSync(join(root, layer.digest, "diff", "held.txt"), "utf8")).toBe(`held by ${holder}\n`)
        expect(await a.stop()).toBe(0)
        const events = await alsLog(root)
        expect(fetchesPerLayer(events).get(layer.digest)).toBe(1)
        expect(committedPerLayer(events).get(layer.digest)).toBe(1)
        expect((await als(["audit", "--root", root])).exitCode).toBe(0)
      } finally {
        clearInterval(refresh)
      }
    }, 10 * MIN)
  }
})
