// Issue 11 class 6 under `als serve` and `als lookup`: a layer committed (or linked) and named
// by a ref only afterwards is pinned in between, so a gc at that instant keeps it.
// - serve's resolver: acquireLayer commits the layer, then its ref view names it;
// - `als lookup` with a pool: link, then the ref view.
// The store's link/indexRef are wrapped to look at the live pins at that very moment (the
// window gc could slip into). Real docker-registry on 127.0.0.1; everything else in-process.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { Effect, Layer } from "effect"
import * as os from "node:os"
import type { Digest } from "../../../src/domain/Digest.ts"
import { hostPlatform } from "../../../src/domain/Platform.ts"
import { Journal, ReporterSilent } from "../../../src/events/Journal.ts"
import { storeLayer } from "../../../src/Layers.ts"
import { Keychain } from "../../../src/registry/Keychain.ts"
import { RegistryClient } from "../../../src/registry/RegistryClient.ts"
import { defaultRegistryConfig, RegistryConfig } from "../../../src/registry/RegistryConfig.ts"
import { RegistryTransport } from "../../../src/registry/RegistryTransport.ts"
import { makeResolver } from "../../../src/serve/Resolver.ts"
import { LayerStore } from "../../../src/store/LayerStore.ts"
import { pinnedDigests } from "../../../src/store/Pins.ts"
import { lookupLayer } from "../../../src/workflows/Lookup.ts"
import { alsOk } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { layerBlob, rawTar } from "../../lib/tars.ts"
import { pushLayers, TempDirs } from "../trust/support.ts"

const MIN = 60_000
const dirs = new TempDirs()
let registry: RegistryHandle
let ref: string
let layer: Digest

beforeAll(async () => {
  registry = await startRegistry()
  const l = layerBlob(rawTar([{ name: "pinned.txt", content: "named a moment later\n" }]), "gzip")
  const pushed = await pushLayers(registry.url, "gc/pins", "1", [{ ...l, annotations: {} }])
  layer = pushed[0]!.digest as Digest
  ref = `${registry.host}/gc/pins:1`
}, MIN)

afterAll(async () => {
  dirs.cleanup()
  await registry?.stop()
}, MIN)

const registryLayer = RegistryClient.Default.pipe(
  Layer.provide(Layer.mergeAll(RegistryTransport.Live, Keychain.layer({}), Layer.succeed(RegistryConfig, { ...defaultRegistryConfig, tlsVerify: false }))),
)

/** The store with `link` and `indexRef` noting whether a live pin names the layer as they run. */
const watchedStore = (seen: Array<{ op: string; pinned: boolean }>) =>
  Effect.updateService(LayerStore, (s) => {
    const note = (op: string, d: Digest) =>
      Effect.map(pinnedDigests(s.paths.alsDir), (pins) => void seen.push({ op, pinned: pins.has(d) }))
    return {
      ...s,
      link: (...args: Parameters<typeof s.link>) => Effect.zipRight(note("link", args[0].digest), s.link(...args)),
      indexRef: (r: string, entries: Parameters<typeof s.indexRef>[1]) =>
        Effect.zipRight(note("indexRef", entries[0]!.blobDigest), s.indexRef(r, entries)),
      indexRefReport: (r: string, entries: Parameters<typeof s.indexRefReport>[1]) =>
        Effect.zipRight(note("indexRef", entries[0]!.blobDigest), s.indexRefReport(r, entries)),
    }
  })

describe("pins between commit and naming", () => {
  test("serve's resolver: a layer it pulls is pinned until its ref names it, and the pin is gone after", async () => {
    const root = dirs.make("resolver-pin")
    const seen: Array<{ op: string; pinned: boolean }> = []
    const program = Effect.gen(function*() {
      const store = yield* LayerStore
      yield* store.init()
      const resolver = yield* makeResolver({ platform: hostPlatform(os.arch()), pools: [], jobs: 2, timeoutMs: 2 * MIN })
      const served = yield* Effect.promise(() => resolver.resolve({ key: layer, ref }))
      // the batch of found-layer names may come later; the acquisition's own naming came first
      const atAnswer = [...seen]
      yield* Effect.promise(() => resolver.flush())
      return { served, atAnswer, pinsAfter: [...(yield* pinnedDigests(store.paths.alsDir))] }
    }).pipe(watchedStore(seen), Effect.provide(Layer.merge(storeLayer(root, ReporterSilent), registryLayer)))
    const r = await Effect.runPromise(program)
    expect(r.served?.layer).toBe(layer)
    expect(r.atAnswer).toEqual([{ op: "indexRef", pinned: true }])
    expect(r.pinsAfter).toEqual([])
  }, 5 * MIN)

  test("als lookup from a pool: the linked layer is pinned until the ref view names it, and the pin is gone after", async () => {
    const pool = dirs.make("lookup-pool")
    await alsOk(["pull", "--root", pool, "--tls-verify=false", ref])
    const root = dirs.make("lookup-pin")
    const seen: Array<{ op: string; pinned: boolean }> = []
    const program = Effect.gen(function*() {
      const store = yield* LayerStore
      const journal = yield* Journal
      yield* store.init()
      const found = yield* journal.workflow(lookupLayer({ digest: layer, ref, pools: [{ kind: "store", dir: pool }] }))
      return { found, pinsAfter: [...(yield* pinnedDigests(store.paths.alsDir))] }
    }).pipe(watchedStore(seen), Effect.provide(storeLayer(root, ReporterSilent)))
    const r = await Effect.runPromise(program)
    expect(r.found._tag).toBe("Linked")
    expect(seen).toEqual([{ op: "link", pinned: true }, { op: "indexRef", pinned: true }])
    expect(r.pinsAfter).toEqual([])
  }, 5 * MIN)
})
