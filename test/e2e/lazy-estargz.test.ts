// Issue 14, eStargz through podman 4.3.1: an eStargz image (built by test/lib/estargz.ts, with a
// prefetch list) pushed to the real docker-registry and run through `als serve` (lazy by
// default) on an empty store. `podman run` reads one small file while the bytes fetched from
// the registry (a counting proxy in front of it) are a small fraction of the image; the
// prefetch list's file is fetched though nobody reads it; the background pull then completes
// the layers, whose trees equal a plain pull's, and `als audit --deep` is clean.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { join } from "node:path"
import { alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { type CountingProxy, startCountingProxy } from "../lib/countingProxy.ts"
import { ESTARGZ_TOC_ANNOTATION, ESTARGZ_UNCOMPRESSED_SIZE, type EstargzLayer, toEstargz } from "../lib/estargz.ts"
import { compareTrees } from "../lib/podman.ts"
import { pushLayout, startRegistry, tagLayout, writeImage, type RegistryHandle } from "../lib/registry.ts"
import { b64, MIN, Resources } from "./support.ts"
import { busyboxLayer, layerOf, type Serving, startServe, stopServers } from "./serveSupport.ts"

let registry: RegistryHandle
let proxy: CountingProxy
let layers: EstargzLayer[]
let ref: string
const res = new Resources()
/** podman sessions, released before the servers stop */
const podmen = new Resources()
const servers: Serving[] = []

const MOTD = "hello from a lazily served eStargz layer\n"
const HOT = new Uint8Array(randomBytes(96 * 1024))

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startCountingProxy(registry.url)
  // 64 MiB of incompressible data, one small file read by the container, one small file on the prefetch list
  const data: Record<string, Uint8Array> = {}
  for (let i = 0; i < 4; i++) data[`data/random-${i}.bin`] = new Uint8Array(randomBytes(16 << 20))
  const big = await layerOf({ "etc/motd": MOTD, "etc/hot.conf": HOT, ...data })
  layers = [toEstargz((await busyboxLayer()).tar), toEstargz(big.tar, 64 * 1024, ["etc/hot.conf"])]
  const layout = join(res.tempDir("lazy-estargz-img"), "layout")
  const img = writeImage(
    layout,
    { os: "linux", architecture: "amd64" },
    layers,
    layers.map((l) => ({ [ESTARGZ_TOC_ANNOTATION]: l.tocDigest, [ESTARGZ_UNCOMPRESSED_SIZE]: String(l.tar.length) })),
  )
  tagLayout(layout, "1", "application/vnd.oci.image.manifest.v1+json", img.manifestDigest, img.manifestSize)
  await pushLayout(layout, "1", `${registry.host}/lazy/estargz-run:1`)
  ref = `${proxy.host}/lazy/estargz-run:1`
}, 20 * MIN)

afterAll(async () => {
  // podman first (its overlay mounts hold the stores' diffs), then the servers, then the dirs
  await podmen.cleanup().catch(() => undefined)
  await stopServers(servers)
  await res.cleanup()
  await proxy?.stop()
  await registry?.stop()
}, 5 * MIN)

const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms: number) => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

test("podman 4.3.1 runs an eStargz image through als serve (lazy by default): the small file is printed after a small fraction of the image was fetched, the prefetch list's file is fetched unread, the background pull completes the layers (trees equal a plain pull's, audit --deep clean)", async () => {
  const total = layers.reduce((a, l) => a + l.size, 0)
  expect(total).toBeGreaterThan(64 << 20)
  const root = res.tempDir("lazy-estargz-store")
  const mnt = res.tempDir("lazy-estargz-mnt")
  const delayS = 60
  const server = await startServe(root, mnt, ["--lazy-delay", String(delayS)])
  servers.push(server)
  const started = Date.now()
  const podman = await podmen.podman4()
  // the proxy speaks plain HTTP
  fs.appendFileSync(join(podman.dir, "registries.conf"), `\n[[registry]]\nlocation = "${proxy.host}"\ninsecure = true\n`)
  const before = await proxy.blobBytes()
  const out = await podman.run(ref, ["/bin/cat", "/etc/motd"], { als: { root: mnt } }).catch(async (e) => {
    throw new Error(`${(e as Error).message}\nals: ${JSON.stringify(eventsOf(await alsLog(root), "LazyReadFailed"))}\n${server.stderr()}`)
  })
  const fetched = (await proxy.blobBytes()) - before
  expect(out.stdout).toBe(MOTD)
  // measured before any background pull could start
  expect(Date.now() - started).toBeLessThan(delayS * 1000)
  console.log(`lazy eStargz podman run: ${Date.now() - started} ms, ${fetched} of ${total} blob bytes fetched (${(100 * fetched / total).toFixed(2)} %)`)
  expect(fetched).toBeLessThan(total / 20)
  expect(podman.additionalLayers().length).toBe(layers.length)
  expect(eventsOf(await alsLog(root), "LayerServedLazily").map((e) => [e.layer, e.format]).sort())
    .toEqual(layers.map((l) => [l.digest, "estargz"]).sort())
  // the prefetch list: etc/hot.conf's chunks were asked for by bounded Range requests, though nothing read it
  const big = layers[1]!
  const toc = big.toc as { entries: Array<{ name: string; offset?: number }> }
  const hotOffsets = toc.entries.filter((e) => e.name === "etc/hot.conf" && e.offset).map((e) => e.offset!)
  expect(hotOffsets.length).toBe(2)
  await waitFor("the prefetch list fetched", async () => {
    const asked = (await proxy.requests()).filter((r) => r.path.includes(big.digest) && r.status === 206).map((r) => r.range ?? "")
    return hotOffsets.every((o) => asked.some((a) => a.startsWith(`bytes=${o}-`)))
  }, 2 * MIN)
  // every chunk request was bounded, and was answered with no more than it asked for
  for (const r of (await proxy.requests()).filter((r) => r.path.includes("/blobs/") && r.range !== undefined)) {
    const m = /^bytes=(\d+)-(\d+)$/.exec(r.range!)
    expect({ range: r.range, bounded: m !== null }).toEqual({ range: r.range, bounded: true })
    expect(r.sent).toBeLessThanOrEqual(Number(m![2]) - Number(m![1]) + 1)
  }

  // the background pull completes every layer into the store
  await waitFor("every layer committed", () => layers.every((l) => fs.existsSync(join(root, l.digest, "blob"))), delayS * 1000 + 10 * MIN)
  // fetching only what was not fetched yet: the blob bytes in all are about the blobs' size (the
  // config blob and short held stretches fetched again with their neighbours on top), not that
  // plus what the run and the prefetch list fetched
  const fetchedAll = (await proxy.blobBytes()) - before
  console.log(`eStargz: ${fetched} blob bytes fetched before completion, ${fetchedAll} in all, blobs ${total}`)
  expect(fetchedAll).toBeGreaterThanOrEqual(total)
  expect(fetchedAll).toBeLessThan(total + Math.max(64 << 10, fetched / 2))
  const plainRoot = res.tempDir("lazy-estargz-plain")
  await alsOk(["pull", "--root", plainRoot, "--tls-verify=false", ref])
  for (const l of layers) {
    const diffs = (await compareTrees(join(plainRoot, l.digest, "diff"), join(root, l.digest, "diff"))).filter((d) => !d.startsWith("overlay whiteout"))
    expect({ layer: l.digest, diffs }).toEqual({ layer: l.digest, diffs: [] })
  }
  // and, looked up again, the committed layer is what the mount serves
  expect(fs.readFileSync(join(mnt, b64(ref), big.digest, "diff", "etc", "motd"), "utf8")).toBe(MOTD)
  await alsOk(["audit", "--deep", "--root", root])
  await podman.removeImage(ref)
  expect(await server.stop()).toBe(0)
}, 30 * MIN)
