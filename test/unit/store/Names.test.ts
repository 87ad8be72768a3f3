// Issue 11, class 2: no name in the store (TOC alias, :ref view key) ever replaces or shadows
// another layer's. The real LayerStore on a temp dir; each case fails without its guard.
import { afterAll, describe, expect, test } from "bun:test"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Digest, parseDigest } from "../../../src/domain/Digest.ts"
import type { VerifiedLayer } from "../../../src/domain/LayerDescriptor.ts"
import { encodeRef } from "../../../src/domain/StorePaths.ts"
import { makeLayerStore } from "../../../src/store/LayerStore.ts"
import { StoreConfig, storeConfigFor } from "../../../src/store/StoreConfig.ts"
import { SyscallsLive } from "../../../src/sys/Syscalls.ts"

const roots: string[] = []
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true })
})

const d = (c: string): Digest => parseDigest(`sha256:${c.repeat(64)}`)
const A = d("a")
const B = d("b")
const T = d("7")

const withStore = <A>(f: (store: Effect.Effect.Success<typeof makeLayerStore>, root: string) => Effect.Effect<A, unknown>) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "als-names-"))
  roots.push(root)
  const env = Layer.merge(Layer.succeed(StoreConfig, storeConfigFor(root)), SyscallsLive)
  return Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* makeLayerStore
      yield* store.init()
      return yield* f(store, root)
    }).pipe(Effect.provide(env)) as Effect.Effect<A, unknown, never>,
  )
}

const facts = (blobDigest: Digest, tocDigest?: Digest): VerifiedLayer => ({
  digest: blobDigest,
  size: 1,
  diffId: d("f"),
  diffSize: 1,
  compression: "zstd",
  ...(tocDigest ? { tocDigest } : {}),
})

/** Stages a complete layer (diff/, blob) and commits it. */
const commit = (store: Effect.Effect.Success<typeof makeLayerStore>, f: VerifiedLayer) =>
  Effect.scoped(Effect.gen(function*() {
    const dir = yield* store.stage(f.digest)
    fs.mkdirSync(path.join(dir, "diff"))
    fs.writeFileSync(path.join(dir, "blob"), "x")
    return yield* store.commit(dir, f)
  }))

describe("TOC aliases", () => {
  test("a TOC digest that is another layer's digest is not made an alias over its directory", async () => {
    await withStore((store, root) =>
      Effect.gen(function*() {
        yield* commit(store, facts(A))
        expect(store.aliasTaken(A, B)).toContain("another layer")
        const r = yield* commit(store, facts(B, A))
        expect(r.aliasRefused).toContain("another layer")
        expect(fs.lstatSync(path.join(root, A)).isDirectory()).toBe(true)
        expect(yield* store.find(A)).toBe(path.join(root, A))
      })
    )
  })

  test("an alias already naming one layer is not repointed to another", async () => {
    await withStore((store, root) =>
      Effect.gen(function*() {
        yield* commit(store, facts(A, T))
        expect(fs.readlinkSync(path.join(root, T))).toBe(A)
        const r = yield* commit(store, facts(B, T))
        expect(r.aliasRefused).toContain("already names another layer")
        expect(fs.readlinkSync(path.join(root, T))).toBe(A)
      })
    )
  })

  test("a layer committed under a digest an alias held takes its name back; find never answers through an alias", async () => {
    await withStore((store, root) =>
      Effect.gen(function*() {
        yield* commit(store, facts(B, A)) // B's TOC is A's digest, while A is not stored
        expect(fs.readlinkSync(path.join(root, A))).toBe(B)
        expect(yield* store.find(A)).toBeUndefined()
        yield* commit(store, facts(A))
        expect(fs.lstatSync(path.join(root, A)).isDirectory()).toBe(true)
        expect(yield* store.find(A)).toBe(path.join(root, A))
      })
    )
  })
})

describe(":ref view keys", () => {
  test("a TOC key equal to another layer's blob digest (in the batch or the store) is refused; blob keys always name their own layer", async () => {
    await withStore((store, root) =>
      Effect.gen(function*() {
        yield* commit(store, facts(A))
        const r = yield* store.indexRefReport("x/y:1", [
          { key: A, blobDigest: A },
          { key: B, blobDigest: B },
          { key: A, blobDigest: B }, // B's "TOC" is A's digest
        ])
        expect(r.refused.map((x) => [x.key, x.blobDigest])).toEqual([[A, B]])
        expect(fs.readlinkSync(path.join(root, encodeRef("x/y:1"), A))).toBe(`../${A}`)
        // and with A only in the store, not in the batch
        const r2 = yield* store.indexRefReport("x/z:1", [{ key: B, blobDigest: B }, { key: A, blobDigest: B }])
        expect(r2.refused.map((x) => x.reason)).toEqual([expect.stringContaining("another layer in the store")])
        expect(fs.existsSync(path.join(root, encodeRef("x/z:1"), A))).toBe(false)
      })
    )
  })

  test("storedToc reads the TOC digest only from an info naming this very layer", async () => {
    await withStore((store, root) =>
      Effect.gen(function*() {
        yield* commit(store, facts(A, T))
        expect(store.storedToc(path.join(root, A), A)).toBe(T)
        expect(store.storedToc(path.join(root, A), B)).toBeUndefined()
      })
    )
  })
})
