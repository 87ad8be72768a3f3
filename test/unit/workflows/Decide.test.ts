/** given(store, pools, descriptor) / when decide / then the plan: the choice is pure, so no IO here. */
import { describe, expect, test } from "bun:test"
import type { Digest } from "../../../src/domain/Digest.ts"
import type { PoolHit } from "../../../src/pool/Pool.ts"
import { decide, NO_BLOB_SOURCE, type PoolAnswer, type Situation } from "../../../src/workflows/Decide.ts"

const D = `sha256:${"a".repeat(64)}` as Digest
const OTHER = `sha256:${"b".repeat(64)}` as Digest
const DIFF = `sha256:${"d".repeat(64)}` as Digest
const DIFF2 = `sha256:${"e".repeat(64)}` as Digest
const layer = { size: 10, diffId: DIFF, compression: "gzip" as const }

const given = (over: Partial<Situation> = {}): Situation => ({
  digest: D,
  answers: [],
  pools: 0,
  canFetchBlob: false,
  canPull: false,
  ...over,
})
const miss = (pool: string): PoolAnswer => ({ pool, path: `${pool}/x` })
const hit = (pool: string, h: PoolHit): PoolAnswer => ({ pool, path: `${pool}/x`, hit: h })
const full: PoolHit = { diff: "/p/diff", blob: { path: "/p/blob", size: 10 }, info: { digest: D, size: 10, diffId: DIFF, diffSize: 99 } }
const treeOnly: PoolHit = { diff: "/p/diff" }

describe("decide", () => {
  test("given the layer is stored, when deciding, then it is used whatever the pools and source", () => {
    expect(decide(given({ stored: "/s/overlay/x", pools: 2, canPull: true, layer }))).toEqual({ _tag: "UseStored", path: "/s/overlay/x" })
  })

  test("given the store finds it under its TOC alias (store.find answered by the alias), then the stored layer is used", () => {
    // the workflow asks the store by the looked-up key; an alias hit is a stored path like any other
    expect(decide(given({ stored: "/s/overlay/toc-alias", pools: 1 }))._tag).toBe("UseStored")
  })

  test("given not stored and pools not asked yet, then the next pool is asked", () => {
    expect(decide(given({ pools: 2 }))).toEqual({ _tag: "AskNextPool", refused: [] })
    expect(decide(given({ pools: 2, answers: [miss("/p1")] }))).toEqual({ _tag: "AskNextPool", refused: [] })
  })

  test("given every pool missed and an image to pull from, then pull; without one, missing", () => {
    expect(decide(given({ pools: 1, answers: [miss("/p1")], canPull: true }))).toEqual({ _tag: "Pull", refused: [] })
    expect(decide(given({ pools: 1, answers: [miss("/p1")] }))).toEqual({ _tag: "Missing", refused: [] })
    expect(decide(given({ canPull: true }))._tag).toBe("Pull")
  })

  test("given a pool with the tree, blob and an info naming this layer, then link its blob with the facts the descriptor gives", () => {
    const plan = decide(given({ pools: 1, answers: [hit("/p1", full)], layer }))
    expect(plan).toMatchObject({
      _tag: "Link",
      pool: "/p1",
      poolPath: "/p1/x",
      blob: { _tag: "PoolBlob", path: "/p/blob" },
      facts: { digest: D, size: 10, diffId: DIFF, diffSize: 99, compression: "gzip" },
      refused: [],
    })
  })

  test("given a pool whose facts disagree with the descriptor (DiffID), then it is refused and the next way is taken", () => {
    const wrong = { ...full, info: { ...full.info, diffId: DIFF2 } }
    const plan = decide(given({ pools: 2, answers: [hit("/p1", wrong)], layer }))
    expect(plan._tag).toBe("AskNextPool")
    expect(plan._tag !== "UseStored" && plan.refused[0]).toMatchObject({ pool: "/p1", path: "/p1/x", reason: expect.stringContaining("DiffID") })
    const last = decide(given({ pools: 1, answers: [hit("/p1", wrong)], layer, canPull: true }))
    expect(last._tag).toBe("Pull")
  })

  test("given a pool whose info names another layer, then it is refused even without a descriptor", () => {
    const plan = decide(given({ pools: 1, answers: [hit("/p1", { ...full, info: { ...full.info, digest: OTHER } })] }))
    expect(plan).toMatchObject({ _tag: "Missing", refused: [{ pool: "/p1", reason: expect.stringContaining(OTHER) }] })
  })

  test("given a hit the pool check refused (symlink, outside the pool), then it is refused with that reason", () => {
    const plan = decide(given({ pools: 1, answers: [hit("/p1", { diff: "/p/diff", refused: "diff is a symlink" })], layer }))
    expect(plan).toMatchObject({ _tag: "Missing", refused: [{ reason: "diff is a symlink" }] })
  })

  test("given a pool with only the tree, then link it with the blob fetched when the source can fetch it; else refuse", () => {
    expect(decide(given({ pools: 1, answers: [hit("/p1", treeOnly)], layer, canFetchBlob: true }))).toMatchObject({
      _tag: "Link",
      blob: { _tag: "FetchBlob" },
      facts: { size: 10, diffId: DIFF, diffSize: -1 },
    })
    expect(decide(given({ pools: 1, answers: [hit("/p1", treeOnly)], layer }))).toMatchObject({
      _tag: "Missing",
      refused: [{ pool: "/p1", reason: NO_BLOB_SOURCE }],
    })
  })

  test("given a tree-only pool and no descriptor, then refused: DiffID and size are unknown", () => {
    const plan = decide(given({ pools: 1, answers: [hit("/p1", treeOnly)], canFetchBlob: true }))
    expect(plan).toMatchObject({ _tag: "Missing", refused: [{ reason: expect.stringContaining("no info") }] })
  })

  test("given a refused pool then a usable one, then the second is linked and the refusal kept (told once, in order)", () => {
    const plan = decide(given({ pools: 3, answers: [hit("/p1", { diff: "/q", refused: "no" }), miss("/p2"), hit("/p3", full)], layer }))
    expect(plan).toMatchObject({ _tag: "Link", pool: "/p3", refused: [{ pool: "/p1", reason: "no" }] })
  })

  test("given two usable pools answered, then the first is linked (cheapest first, pools in order)", () => {
    const plan = decide(given({ pools: 2, answers: [hit("/p1", full), hit("/p2", full)], layer }))
    expect(plan).toMatchObject({ _tag: "Link", pool: "/p1" })
  })
})
