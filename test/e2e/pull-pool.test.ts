// Issue 3: `als pull --pool OTHER_STORE` links the layers another ALS store already has (their
// `diff` is a symlink into that store, nothing is downloaded for them) and pulls the rest; real
// podman 4.3.1 then takes every layer from the store, and the tree is a plain pull's.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { lstatSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { alsLog, eventsOf, type AlsLogEvent } from "../lib/als.ts"
import { buildFeatureImage, buildMultiArchIndex, push, type FeatureImage, type MultiArchImage, type PushedLayer } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { runOk } from "../lib/sh.ts"
import { alsPull, expectAllSkipped, expectCompleteLayer, layerNames, MIN, resolvesInto, Resources, stagingEntries } from "./support.ts"

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

/** The events of the last pull workflow in a store's log. */
const lastPull = (log: ReadonlyArray<AlsLogEvent>): AlsLogEvent[] => {
  const done = eventsOf(log, "PullCompleted").pop()
  expect(done).toBeDefined()
  return log.filter((e) => e.workflow === done!.workflow)
}

/** One layer linked from `pool`, the others pulled, as the store and the log tell it. */
const expectLinkedOne = async (root: string, pool: string, layers: ReadonlyArray<PushedLayer>, shared: PushedLayer) => {
  expect(stagingEntries(root)).toEqual([])
  const others = layers.filter((l) => l.digest !== shared.digest)
  for (const l of layers) expectCompleteLayer(join(root, l.digest), l.digest, l.diffId, l.size)
  // The linked layer: diff is a symlink into the pool (no copy of the tree); the others are real.
  const diff = join(root, shared.digest, "diff")
  expect(lstatSync(diff).isSymbolicLink()).toBe(true)
  expect(resolvesInto(diff, pool)).toBe(true)
  for (const l of others) expect({ l: l.digest, symlink: lstatSync(join(root, l.digest, "diff")).isSymbolicLink() }).toEqual({ l: l.digest, symlink: false })

  const events = lastPull(await alsLog(root))
  const linked = eventsOf(events, "LayerLinked")
  expect(linked.map((e) => e.layer)).toEqual([shared.digest])
  expect(linked[0]!.pool).toBe(pool)
  const committed = eventsOf(events, "LayerCommitted").find((e) => e.layer === shared.digest)
  expect(committed).toMatchObject({ source: "link", pool })
  // Nothing downloaded for the linked layer; every other layer downloaded.
  expect(eventsOf(events, "BlobFetched").map((e) => e.layer).sort()).toEqual(others.map((l) => l.digest).sort())
  const done = eventsOf(events, "PullCompleted")[0]!
  expect({ found: done.found, linked: done.linked, pulled: done.pulled }).toEqual({ found: 0, linked: 1, pulled: others.length })
  expect(done.bytesFetched).toBe(others.reduce((a, l) => a + l.size, 0))
}

describe("als pull --pool OTHER_STORE", () => {
  test("a store holding one layer of the feature image: that layer is linked, the others pulled; podman 4 skips all", async () => {
    const pushed = await push(feature, registry.host, "e2e/pool-feature", "1")
    // OTHER_STORE: one layer dir copied from a complete store (layer 3: whiteouts and an opaque dir,
    // so podman must read overlay metadata through the link).
    const full = res.tempDir("full")
    await alsPull(full, pushed.ref)
    const shared = pushed.layers[2]!
    const other = res.tempDir("other")
    await runOk(["cp", "-a", join(full, shared.digest), join(other, shared.digest)])
    expect(layerNames(other)).toEqual([shared.digest])

    const root = res.tempDir("root")
    const r = await alsPull(root, pushed.ref, ["--pool", other])
    expect(r.stderr).toMatch(/\b1 linked\b.*\b3 pulled\b/)
    await expectLinkedOne(root, other, pushed.layers, shared)

    const withStore = await res.podman4()
    expectAllSkipped(await withStore.pull(pushed.ref, { als: { root } }), pushed.layers.map((l) => l.digest), "podman 4 through a store with a linked layer")
    // podman's layer for the linked one uses our layer dir (whose diff points into the pool).
    expect(withStore.additionalLayers().filter((p) => p.endsWith(shared.digest)).length).toBe(1)
    const plain = await res.podman4()
    await plain.pull(pushed.ref)
    const mergedAls = await withStore.imageMount(pushed.ref)
    expect(await compareTrees(await plain.imageMount(pushed.ref), mergedAls)).toEqual([])
    expect(await compareTrees(feature.rootfsDir, mergedAls)).toEqual([])
  }, 5 * MIN)

  test("a store holding the amd64 image links the base layer the arm64 image shares and pulls only the arm64 layer", async () => {
    const pushed = await push(multi, registry.host, "e2e/pool-multi", "1")
    const amd = pushed.manifests!.find((m) => m.platform?.architecture === "amd64")!
    const arm = pushed.manifests!.find((m) => m.platform?.architecture === "arm64")!
    const shared = arm.layers.find((l) => amd.layers.some((a) => a.digest === l.digest))!
    expect(shared).toBeDefined()

    const other = res.tempDir("other-amd64")
    await alsPull(other, pushed.ref, ["--platform", "linux/amd64"])
    const root = res.tempDir("root-arm64")
    await alsPull(root, pushed.ref, ["--platform", "linux/arm64", "--pool", other])
    await expectLinkedOne(root, other, arm.layers, shared)

    const withStore = await res.podman4()
    expectAllSkipped(await withStore.pull(pushed.ref, { als: { root }, arch: "arm64" }), arm.layers.map((l) => l.digest), "podman 4 --arch arm64")
    const plain = await res.podman4()
    await plain.pull(pushed.ref, { arch: "arm64" })
    const mergedAls = await withStore.imageMount(pushed.ref)
    expect(readFileSync(join(mergedAls, "arch.txt"), "utf8")).toBe("arm64\n")
    expect(await compareTrees(await plain.imageMount(pushed.ref), mergedAls)).toEqual([])
  }, 5 * MIN)
})
