// Issue 13: podman 5.4.2 (Debian 13 chroot, a TOC-digest client) pulls a zstd:chunked image
// through `als serve` on an empty store: each layer is looked up by its TOC digest, als finds
// the layer whose TOC annotation it is, pulls it while the LOOKUP waits, and podman copies
// nothing. The chroot sees the mount (bound after it is made) and the store (same path, so the
// symlinks out of the mount resolve there too).

import { afterAll, beforeAll, expect, test } from "bun:test"
import { join } from "node:path"
import { alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { buildFeatureImage, push, type FeatureImage, type PushedImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { bindIntoChroot, ensurePodman5, TOC_LOOKUP_LOG, unbindFromChroot } from "../lib/podman5.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { b64, MIN, Resources } from "./support.ts"
import { fetchesPerLayer, type Serving, startServe, stopServers, useCounts } from "./serveSupport.ts"

const TOC = "io.github.containers.zstd-chunked.manifest-checksum"

let registry: RegistryHandle
let feature: FeatureImage
let pushed: PushedImage
const res = new Resources()
/** podman sessions, released before the servers stop */
const podmen = new Resources()
const servers: Serving[] = []
const bound: string[] = []

beforeAll(async () => {
  const info = await ensurePodman5()
  expect(info.version).toContain("podman version 5.")
  registry = await startRegistry()
  feature = await buildFeatureImage()
  pushed = await push(feature, registry.host, "serve5/feature-chunked", "1", { compress: "zstd:chunked" })
  for (const l of pushed.layers) expect(l.annotations[TOC]).toMatch(/^sha256:[0-9a-f]{64}$/)
}, 20 * MIN)

afterAll(async () => {
  // podman first (its overlay mounts hold the stores' diffs), then the servers, the chroot binds, the dirs
  await podmen.cleanup().catch(() => undefined)
  await stopServers(servers)
  for (const b of bound) await unbindFromChroot(b).catch(() => undefined)
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

test("podman 5.4.2 pulls a zstd:chunked image through als serve on an empty store: every layer looked up by TOC and pulled by als, nothing copied, the tree equals a plain pull's", async () => {
  const root = res.tempDir("serve5-store")
  const mnt = res.tempDir("serve5-mnt")
  // a zstd:chunked image (TOC layers): pulled whole, as this test is about, not served lazily
  const server = await startServe(root, mnt, ["--lazy=false"])
  servers.push(server)
  // the store at its own path in the chroot, so the mount's symlinks resolve there
  if (await bindIntoChroot(root)) bound.push(root)

  const withStore = await podmen.podman5()
  const r = await withStore.pull(pushed.ref, { als: { root: mnt } })
  expect(r.stderr).toContain(TOC_LOOKUP_LOG)
  expect(r.lookedUpByToc).toBe(true)
  expect(r.partialPull).toBe(false)
  expect(r.copied).toEqual([])
  // podman's layers are the mount's entries under the TOC digests
  expect(withStore.additionalLayers().sort()).toEqual(pushed.layers.map((l) => `${mnt}/${b64(pushed.ref)}/${l.annotations[TOC]}`).sort())

  const plain = await podmen.podman5()
  await plain.pull(pushed.ref)
  expect(await compareTrees(await plain.imageMount(pushed.ref), await withStore.imageMount(pushed.ref))).toEqual([])

  const events = await alsLog(root)
  // als fetched each layer once, and committed it with its checked TOC digest
  expect(Object.fromEntries(fetchesPerLayer(events))).toEqual(Object.fromEntries(pushed.layers.map((l) => [l.digest, 1])))
  expect(eventsOf(events, "LayerCommitted").map((e) => [e.layer, e.tocDigest]).sort())
    .toEqual(pushed.layers.map((l) => [l.digest, l.annotations[TOC]]).sort())
  // uses are counted per layer (blob digest), whatever name podman used
  const held = useCounts(events)
  for (const l of pushed.layers) expect({ layer: l.digest, held: (held.get(l.digest) ?? 0) > 0 }).toEqual({ layer: l.digest, held: true })

  // gc: with no ref naming them, podman's TOC-keyed paths in the mount (never stat'ed by gc)
  // and the use counts keep the layers; after podman rmi, gc frees them
  await withStore.imageUnmount(pushed.ref)
  const layers = pushed.layers.map((l) => l.digest).sort()
  const graphroot = join(withStore.dir, "root")
  const gc = async () => JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot, "--json"])).stdout) as { remove: Array<{ digest: string }>; keptInUse: string[] }
  const lsRows = async () => (await alsOk(["ls", "--root", root, "--json"])).stdout.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { digest: string; uses: number; refs: string[] })
  const until = async (ok: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 60_000
    while (!(await ok())) {
      if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(await lsRows())}`)
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  // removed again while the server's batched names of earlier lookups may still land
  await until(async () => {
    await alsOk(["rm", "--root", root, pushed.ref])
    return (await lsRows()).every((x) => x.refs.length === 0)
  }, "refs after als rm")
  let plan = await gc()
  expect(plan.remove).toEqual([])
  expect([...plan.keptInUse].sort()).toEqual(layers)
  await withStore.podman(["--storage-opt", `overlay.additionallayerstore=${mnt}:ref`, "rmi", pushed.ref])
  await until(async () => (await lsRows()).every((x) => x.uses === 0), "uses after podman rmi")
  plan = await gc()
  expect(plan.remove.map((x) => x.digest).sort()).toEqual(layers)
  expect(await server.stop()).toBe(0)
}, 15 * MIN)
