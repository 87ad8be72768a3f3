// Issue 3: a zstd:chunked image pulled by `als pull` is served to both client generations:
// podman 5.4.2 (Debian 13 chroot, looks layers up by TOC digest) and podman 4.3.1 (by compressed
// digest). The store names each layer under both digests, one copy on disk.
// Missing tools (podman, the chroot's setup, skopeo, docker-registry) fail these tests.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { lstatSync, readlinkSync, realpathSync } from "node:fs"
import { join } from "node:path"
import { alsLog, eventsOf } from "../lib/als.ts"
import { buildFeatureImage, push, type FeatureImage, type PushedImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { ensurePodman5, TOC_LOOKUP_LOG } from "../lib/podman5.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { alsPull, b64, expectAllSkipped, expectCompleteLayer, MIN, readInfo, Resources, stagingEntries } from "./support.ts"

const TOC = "io.github.containers.zstd-chunked.manifest-checksum"

let registry: RegistryHandle
let feature: FeatureImage
let pushed: PushedImage
let root: string
const res = new Resources()

beforeAll(async () => {
  const info = await ensurePodman5()
  expect(info.version).toContain("podman version 5.")
  registry = await startRegistry()
  feature = await buildFeatureImage()
  pushed = await push(feature, registry.host, "e2e/feature-chunked", "1", { compress: "zstd:chunked" })
  // The image really is zstd:chunked: every layer has a TOC digest annotation.
  expect(pushed.layers.length).toBe(4)
  for (const l of pushed.layers) {
    expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd")
    expect(l.annotations[TOC]).toMatch(/^sha256:[0-9a-f]{64}$/)
  }
  root = res.tempDir("store5")
  await alsPull(root, pushed.ref)
}, 20 * MIN)

afterAll(async () => {
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

describe("zstd:chunked image pulled by als", () => {
  test("the store names each layer by blob digest and by TOC digest; info has toc-digest and the DiffID flag", async () => {
    expect(stagingEntries(root)).toEqual([])
    for (const l of pushed.layers) {
      const toc = l.annotations[TOC]!
      const real = join(root, l.digest)
      expect(lstatSync(real).isDirectory()).toBe(true)
      expectCompleteLayer(real, l.digest, l.diffId, l.size)
      const info = readInfo(real)
      expect({ layer: l.digest, toc: info["toc-digest"], flag: info.flags?.["expected-layer-diffid"], compression: info.compression }).toEqual({
        layer: l.digest,
        toc,
        flag: l.diffId,
        compression: 4,
      })
      // <root>/sha256:<toc hex> is a symlink to the one copy, not a second copy.
      const alias = join(root, toc)
      expect({ alias, symlink: lstatSync(alias).isSymbolicLink() }).toEqual({ alias, symlink: true })
      expect(realpathSync(alias)).toBe(realpathSync(real))
      expect(readlinkSync(alias)).not.toContain("/tmp/") // relative: the store can move (and be bind-mounted)
      // The `:ref` view answers to both keys.
      expect(realpathSync(join(root, b64(pushed.ref), toc))).toBe(realpathSync(real))
      expect(realpathSync(join(root, b64(pushed.ref), l.digest))).toBe(realpathSync(real))
    }
    const committed = eventsOf(await alsLog(root), "LayerCommitted")
    expect(committed.map((e) => [e.layer, e.tocDigest, e.source]).sort()).toEqual(
      pushed.layers.map((l) => [l.digest, l.annotations[TOC], "pull"]).sort(),
    )
  }, 2 * MIN)

  test("podman 5.4.2 looks the layers up by TOC in the store (no partial pull, nothing copied); trees match", async () => {
    const withStore = await res.podman5()
    const r = await withStore.pull(pushed.ref, { als: { root } })
    expect(r.stderr).toContain(TOC_LOOKUP_LOG)
    expect(r.lookedUpByToc).toBe(true)
    expect(r.partialPull).toBe(false)
    expect(r.copied).toEqual([])
    const used = withStore.additionalLayers()
    expect(used.length).toBe(pushed.layers.length)
    for (const u of used) expect(u.startsWith(`${root}/`)).toBe(true)

    const plain = await res.podman5()
    const p = await plain.pull(pushed.ref)
    expect(p.lookedUpByToc).toBe(false)
    expect([...p.copied].sort()).toEqual(pushed.layers.map((l) => l.digest).sort())
    const mergedAls = await withStore.imageMount(pushed.ref)
    const mergedPlain = await plain.imageMount(pushed.ref)
    expect(await compareTrees(mergedPlain, mergedAls)).toEqual([])
    expect(await compareTrees(feature.rootfsDir, mergedAls)).toEqual([])
  }, 10 * MIN)

  test("podman 4.3.1 on the same zstd:chunked image skips every blob; trees match", async () => {
    const withStore = await res.podman4()
    const r = await withStore.pull(pushed.ref, { als: { root } })
    expectAllSkipped(r, pushed.layers.map((l) => l.digest), "podman 4 pull of the zstd:chunked image through the store")
    const plain = await res.podman4()
    await plain.pull(pushed.ref)
    expect(await compareTrees(await plain.imageMount(pushed.ref), await withStore.imageMount(pushed.ref))).toEqual([])
  }, 5 * MIN)
})
