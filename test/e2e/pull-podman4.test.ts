// Issue 3: `als pull` fills a store that real podman 4.3.1 (a compressed-digest ALS client) uses
// for every layer: it logs "Skipping blob … (already present)" for each one, downloads none, and
// the image's merged tree is entry by entry the tree a plain `podman pull` makes.
// Missing podman, skopeo or docker-registry make these tests fail, never skip.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { readFileSync } from "node:fs"
import { alsLog, eventsOf } from "../lib/als.ts"
import { buildFeatureImage, buildMultiArchIndex, push, type FeatureImage, type MultiArchImage, type PushedImage, type PushedLayer } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { alsPull, b64, expectAllSkipped, expectCompleteLayer, MIN, Resources, stagingEntries } from "./support.ts"

let registry: RegistryHandle
let feature: FeatureImage
let multi: MultiArchImage
const res = new Resources()

beforeAll(async () => {
  registry = await startRegistry()
  feature = await buildFeatureImage()
  multi = await buildMultiArchIndex()
}, 10 * MIN)

afterAll(async () => {
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

const MT = {
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
}
const COMPRESSION_CODE = { gzip: 2, zstd: 4 }

/**
 * The whole check for one image: als pull → store layout → podman 4 through the store skips
 * every layer → its mount equals a plain podman pull's (and, for amd64, umoci's reference).
 */
const pullAndCompare = async (
  pushed: PushedImage,
  layers: ReadonlyArray<PushedLayer>,
  opts: { platform?: string; arch?: string; compression: "gzip" | "zstd"; extra?: ReadonlyArray<string>; env?: Record<string, string> },
) => {
  const root = res.tempDir("store4")
  await alsPull(root, pushed.ref, [...(opts.platform ? ["--platform", opts.platform] : []), ...(opts.extra ?? [])], opts.env)
  expect(stagingEntries(root)).toEqual([])
  for (const l of layers) {
    expectCompleteLayer(join(root, l.digest), l.digest, l.diffId, l.size)
    const info = JSON.parse(readFileSync(join(root, l.digest, "info"), "utf8")) as { compression: number }
    expect({ layer: l.digest, compression: info.compression }).toEqual({ layer: l.digest, compression: COMPRESSION_CODE[opts.compression] })
    // The `:ref` view podman 4 reads: <root>/<base64(ref)>/<blob digest>/
    expectCompleteLayer(join(root, b64(pushed.ref), l.digest), l.digest, l.diffId, l.size)
  }

  const withStore = await res.podman4()
  const r = await withStore.pull(pushed.ref, { als: { root }, ...(opts.arch ? { arch: opts.arch } : {}) })
  expectAllSkipped(r, layers.map((l) => l.digest), `podman 4 pull of ${pushed.ref} through the store`)
  const used = withStore.additionalLayers()
  expect(used.length).toBe(layers.length)
  for (const u of used) expect(u.startsWith(`${root}/`)).toBe(true)

  const plain = await res.podman4()
  const p = await plain.pull(pushed.ref, opts.arch ? { arch: opts.arch } : {})
  expect([...p.copied].sort()).toEqual(layers.map((l) => l.digest).sort()) // it really pulled
  const [mergedAls, mergedPlain] = [await withStore.imageMount(pushed.ref), await plain.imageMount(pushed.ref)]
  expect(await compareTrees(mergedPlain, mergedAls)).toEqual([])
  return { root, mergedAls }
}

describe("als pull → podman 4.3.1 through the store", () => {
  for (const compression of ["gzip", "zstd"] as const) {
    test(`feature image (${compression}): podman skips every blob; the tree equals a plain pull's`, async () => {
      const pushed = await push(feature, registry.host, `e2e/feature-${compression}`, "1", { compress: compression })
      expect(pushed.layers.length).toBe(4)
      expect(pushed.layers.every((l) => l.mediaType === MT[compression])).toBe(true)
      const { mergedAls } = await pullAndCompare(pushed, pushed.layers, { compression })
      // And the expected tree itself (setuid, owners, whiteouts, opaque dir …): umoci's unpack.
      expect(await compareTrees(feature.rootfsDir, mergedAls)).toEqual([])
    }, 5 * MIN)
  }

  // ALS_INGEST_THREADS=all ingests every layer on a thread of its own while one is free
  // (src/extract/IngestOffThread.ts): with one layer at a time, all of them.
  test("feature image (zstd), every layer ingested on an ingest thread: podman skips every blob; the same tree", async () => {
    const pushed = await push(feature, registry.host, "e2e/feature-threads", "1", { compress: "zstd" })
    const { mergedAls } = await pullAndCompare(pushed, pushed.layers, {
      compression: "zstd",
      extra: ["--jobs", "1"],
      env: { ALS_INGEST_THREADS: "all" },
    })
    expect(await compareTrees(feature.rootfsDir, mergedAls)).toEqual([])
  }, 5 * MIN)

  test("multi-arch index with --platform linux/arm64: podman --arch arm64 skips every blob; arm64 tree", async () => {
    const pushed = await push(multi, registry.host, "e2e/multi", "1")
    const arm = pushed.manifests?.find((m) => m.platform?.architecture === "arm64")
    const amd = pushed.manifests?.find((m) => m.platform?.architecture === "amd64")
    expect(arm).toBeDefined()
    expect(amd).toBeDefined()
    const { root, mergedAls } = await pullAndCompare(pushed, arm!.layers, { platform: "linux/arm64", arch: "arm64", compression: "gzip" })
    expect(readFileSync(join(mergedAls, "arch.txt"), "utf8")).toBe("arm64\n")
    // Only the arm64 image's layers were stored: the amd64-only layer was not fetched.
    const amdOnly = amd!.layers.map((l) => l.digest).filter((d) => !arm!.layers.some((l) => l.digest === d))
    expect(amdOnly.length).toBe(1)
    const log = await alsLog(root)
    const resolved = eventsOf(log, "ManifestResolved")
    expect(resolved.length).toBe(1)
    expect(resolved[0]!.platform).toBe("linux/arm64")
    expect(resolved[0]!.manifestDigest).toBe(arm!.digest)
    expect(eventsOf(log, "BlobFetched").map((e) => e.layer).sort()).toEqual(arm!.layers.map((l) => l.digest).sort())
  }, 5 * MIN)

  test("a second als pull of the same ref finds every layer and downloads nothing", async () => {
    const pushed = await push(feature, registry.host, "e2e/feature-gzip", "again")
    const root = res.tempDir("again")
    await alsPull(root, pushed.ref)
    const first = eventsOf(await alsLog(root), "PullCompleted")
    expect(first.map((e) => [e.found, e.pulled])).toEqual([[0, 4]])
    const again = await alsPull(root, pushed.ref)
    expect(again.stderr).toMatch(/\b4 found\b.*\b0 pulled\b/)
    const log = await alsLog(root)
    const done = eventsOf(log, "PullCompleted")
    expect(done.length).toBe(2)
    expect({ found: done[1]!.found, linked: done[1]!.linked, pulled: done[1]!.pulled, bytes: done[1]!.bytesFetched }).toEqual({
      found: 4,
      linked: 0,
      pulled: 0,
      bytes: 0,
    })
    const second = log.filter((e) => e.workflow === done[1]!.workflow)
    expect(eventsOf(second, "BlobFetched", "LayerExtracted", "LayerCommitted")).toEqual([])
    expect(eventsOf(second, "LayerFound").map((e) => e.layer).sort()).toEqual(pushed.layers.map((l) => l.digest).sort())
    // Still served: podman skips every blob after the second pull too.
    const p = await res.podman4()
    expectAllSkipped(await p.pull(pushed.ref, { als: { root } }), pushed.layers.map((l) => l.digest), "after a second als pull")
  }, 5 * MIN)
})
