// Issue 14 with podman 5.4.2 (Debian 13 chroot, a TOC-digest client): a zstd:chunked image
// pulled through `als serve` (lazy by default) on an empty store is served from its TOCs (the
// layers are not in the store yet: no background pull during the test), `podman image mount`
// shows it, a file reads right, and the merged tree equals a plain pull's.

import { afterAll, beforeAll, expect, test } from "bun:test"
import * as fs from "node:fs"
import { join } from "node:path"
import { alsLog, eventsOf } from "../lib/als.ts"
import { buildFeatureImage, push, type FeatureImage, type PushedImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { bindIntoChroot, ensurePodman5, unbindFromChroot } from "../lib/podman5.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { MIN, Resources } from "./support.ts"
import { type Serving, startServe, stopServers } from "./serveSupport.ts"

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
  pushed = await push(feature, registry.host, "lazy5/feature-chunked", "1", { compress: "zstd:chunked" })
}, 20 * MIN)

afterAll(async () => {
  // podman first (its overlay mounts hold the stores' diffs), then the servers, the chroot binds, the dirs
  await podmen.cleanup().catch(() => undefined)
  await stopServers(servers)
  for (const b of bound) await unbindFromChroot(b).catch(() => undefined)
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

test("podman 5.4.2 pulls a zstd:chunked image through als serve (lazy by default, no flag) by TOC digest: nothing copied, every layer served lazily (none in the store yet), image mount shows the plain pull's tree and a file reads right", async () => {
  const root = res.tempDir("lazy5-store")
  const mnt = res.tempDir("lazy5-mnt")
  const server = await startServe(root, mnt, ["--lazy-delay", "3600"])
  servers.push(server)
  if (await bindIntoChroot(root)) bound.push(root)

  const withStore = await podmen.podman5()
  const r = await withStore.pull(pushed.ref, { als: { root: mnt } })
  expect(r.lookedUpByToc).toBe(true)
  expect(r.copied).toEqual([])
  const events = await alsLog(root)
  expect(eventsOf(events, "LayerServedLazily").map((e) => [e.layer, e.tocDigest]).sort())
    .toEqual(pushed.layers.map((l) => [l.digest, l.annotations[TOC]]).sort())
  // served from the TOCs: the store holds none of the layers
  for (const l of pushed.layers) expect(fs.existsSync(join(root, l.digest))).toBe(false)

  const merged = await withStore.imageMount(pushed.ref)
  const plain = await podmen.podman5()
  await plain.pull(pushed.ref)
  const plainMerged = await plain.imageMount(pushed.ref)
  expect(fs.readFileSync(join(merged, "etc", "os-release"))).toEqual(fs.readFileSync(join(plainMerged, "etc", "os-release")))
  expect(await compareTrees(plainMerged, merged)).toEqual([])
  expect(eventsOf(await alsLog(root), "LazyReadFailed")).toEqual([])
  await withStore.imageUnmount(pushed.ref)
  expect(await server.stop()).toBe(0)
}, 15 * MIN)
