// Issue 14 with podman 4.3.1 on the host: `podman run` of a ~0.5 GB zstd:chunked image whose
// command reads one small file, through `als serve` (lazy by default) on an empty store, prints the
// file while the bytes fetched from the registry (counted by a proxy in front of it) are a
// small fraction of the image; the background pull then completes the layers, whose trees
// equal a plain pull's, and `als audit --deep` is clean.

import { afterAll, beforeAll, expect, test } from "bun:test"
import * as fs from "node:fs"
import { join } from "node:path"
import { alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { type CountingProxy, startCountingProxy } from "../lib/countingProxy.ts"
import { push, type PushedImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { MIN, Resources } from "./support.ts"
import { type Serving, startServe, stopServers } from "./serveSupport.ts"
import { type BigImage, buildBigLazyImage } from "./lazySupport.ts"

let registry: RegistryHandle
let proxy: CountingProxy
let big: BigImage
let pushed: PushedImage
const res = new Resources()
/** podman sessions, released before the servers stop */
const podmen = new Resources()
const servers: Serving[] = []

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startCountingProxy(registry.url)
  big = await buildBigLazyImage()
  pushed = await push(big, registry.host, "lazy/big", "1", { compress: "zstd:chunked" })
}, 30 * MIN)

afterAll(async () => {
  // podman first (its overlay mounts hold the stores' diffs), then the servers, then the dirs
  await podmen.cleanup().catch(() => undefined)
  await stopServers(servers)
  await res.cleanup()
  await proxy?.stop()
  await registry?.stop()
}, 5 * MIN)

const waitFor = async (what: string, cond: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

test("podman 4.3.1 runs a 0.5 GB zstd:chunked image through als serve (lazy by default, no flag): the small file is printed after a small fraction of the image was fetched; the background pull then completes the layers (trees equal a plain pull's, audit --deep clean)", async () => {
  const total = pushed.layers.reduce((a, l) => a + l.size, 0)
  expect(total).toBeGreaterThan(400 << 20)
  const ref = pushed.ref.replace(registry.host, proxy.host)
  const root = res.tempDir("lazy4-store")
  const mnt = res.tempDir("lazy4-mnt")
  const delayS = 60
  const server = await startServe(root, mnt, ["--lazy-delay", String(delayS)])
  servers.push(server)
  const started = Date.now()
  const podman = await podmen.podman4()
  // the proxy speaks plain HTTP
  fs.appendFileSync(join(podman.dir, "registries.conf"), `\n[[registry]]\nlocation = "${proxy.host}"\ninsecure = true\n`)
  const before = await proxy.blobBytes()
  const out = await podman.run(ref, ["/bin/cat", big.smallFile], { als: { root: mnt } }).catch(async (e) => {
    const failed = eventsOf(await alsLog(root), "LazyReadFailed")
    throw new Error(`${(e as Error).message}\nals: ${JSON.stringify(failed)}\n${server.stderr()}`)
  })
  const fetched = (await proxy.blobBytes()) - before
  const tookMs = Date.now() - started
  expect(out.stdout).toBe(big.smallContent)
  // measured before any background pull could start
  expect(tookMs).toBeLessThan(delayS * 1000)
  console.log(`lazy podman run: ${tookMs} ms, ${fetched} of ${total} blob bytes fetched (${(100 * fetched / total).toFixed(2)} %)`)
  expect(fetched).toBeLessThan(total / 20)
  // podman used the store's layers, served lazily
  expect(podman.additionalLayers().length).toBe(pushed.layers.length)
  const events = await alsLog(root)
  expect(eventsOf(events, "LayerServedLazily").map((e) => e.layer).sort()).toEqual(pushed.layers.map((l) => l.digest).sort())

  // the background pull completes every layer into the store
  await waitFor("every layer committed", () => pushed.layers.every((l) => fs.existsSync(join(root, l.digest, "blob"))), delayS * 1000 + 10 * MIN)
  // only what the run did not fetch is fetched: about the blobs' size in all, not that plus the run's
  const fetchedAll = (await proxy.blobBytes()) - before
  console.log(`lazy podman run: ${fetched} blob bytes before completion, ${fetchedAll} in all, blobs ${total}`)
  expect(fetchedAll).toBeGreaterThanOrEqual(total)
  expect(fetchedAll).toBeLessThan(total + Math.max(64 << 10, fetched / 2))
  const plainRoot = res.tempDir("lazy4-plain")
  await alsOk(["pull", "--root", plainRoot, "--tls-verify=false", pushed.ref])
  for (const l of pushed.layers) {
    const diffs = (await compareTrees(join(plainRoot, l.digest, "diff"), join(root, l.digest, "diff"))).filter((d) => !d.startsWith("overlay whiteout"))
    expect({ layer: l.digest, diffs }).toEqual({ layer: l.digest, diffs: [] })
  }
  await alsOk(["audit", "--deep", "--root", root])
  // chunk reads are logged aggregated per layer, not one event per read
  const fetchedEvents = eventsOf(await alsLog(root), "LazyChunksFetched")
  expect(fetchedEvents.reduce((a, e) => a + Number(e.chunks), 0)).toBeGreaterThan(0)
  expect(fetchedEvents.length).toBeLessThanOrEqual(pushed.layers.length * 20)
  await podman.removeImage(ref)
  expect(await server.stop()).toBe(0)
}, 30 * MIN)
