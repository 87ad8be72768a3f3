/** given(events) / when(event) / then(state): the projection is pure, so no IO here. */
import { describe, expect, test } from "bun:test"
import { HashMap, HashSet, Option } from "effect"
import type { Event } from "../../../src/events/Events.ts"
import { evolve, initialState, project, type StoreState } from "../../../src/events/Projection.ts"

const A = `sha256:${"a".repeat(64)}`
const B = `sha256:${"b".repeat(64)}`
const C = `sha256:${"c".repeat(64)}`
const REF = "registry.example/app:1"

let clock = 1_000
const given = (...events: ReadonlyArray<Event>): StoreState => project(events.map((event) => ({ envelope: { time: clock++ }, event })))
const when = (state: StoreState, event: Event, time = 9_999): StoreState => evolve(state, { envelope: { time }, event })

const commit = (layer: string, extra: Partial<Extract<Event, { _tag: "LayerCommitted" }>> = {}): Event => ({
  _tag: "LayerCommitted",
  layer,
  diffId: layer.replace("sha256:", "sha256:d"),
  diffSize: 100,
  blobSize: 40,
  source: "pull",
  ...extra,
})
const layer = (s: StoreState, d: string) => Option.getOrThrow(HashMap.get(s.layers, d))
const refsOf = (s: StoreState, d: string) => [...layer(s, d).refs].sort()

describe("Projection.evolve", () => {
  test("given nothing, when a layer is committed from a pull, then it is stored with its metadata and time", () => {
    const then = when(given(), commit(A, { tocDigest: C }), 5_000)
    expect(layer(then, A)).toEqual({
      digest: A,
      diffId: A.replace("sha256:", "sha256:d"),
      diffSize: 100,
      blobSize: 40,
      tocDigest: C,
      source: "pull",
      committedAt: 5_000,
      refs: HashSet.empty(),
    })
    expect(then.counters.layersPulled).toBe(1)
    expect(then.events).toBe(1)
    expect(then.lastEventAt).toBe(5_000)
  })

  test("given a pool link, when the layer is committed from the link, then source and pool are kept and it is not counted as pulled", () => {
    const then = when(given({ _tag: "LayerLinked", layer: A, pool: "/pool", poolPath: "/pool/x" }), commit(A, { source: "link", pool: "/pool" }))
    expect(layer(then, A)).toMatchObject({ source: "link", pool: "/pool" })
    expect(then.counters).toMatchObject({ layersLinked: 1, layersPulled: 0 })
  })

  test("given committed layers, when a ref is indexed, then the ref lists them and each layer names the ref", () => {
    const state = given(
      { _tag: "ManifestResolved", ref: REF, manifestDigest: C, mediaType: "m", platform: "linux/amd64", configDigest: C, layers: [] },
      commit(A),
      commit(B),
    )
    const then = when(state, { _tag: "RefIndexed", ref: REF, layers: [A, B] }, 7_000)
    expect(Option.getOrThrow(HashMap.get(then.refs, REF))).toEqual({ ref: REF, manifestDigest: C, layers: [A, B], indexedAt: 7_000 })
    expect(refsOf(then, A)).toEqual([REF])
    expect(refsOf(then, B)).toEqual([REF])
  })

  test("given a ref over A and B, when it is re-indexed over B and C, then A no longer names it", () => {
    const state = given(commit(A), commit(B), commit(C), { _tag: "RefIndexed", ref: REF, layers: [A, B] })
    const then = when(state, { _tag: "RefIndexed", ref: REF, layers: [B, C] })
    expect(refsOf(then, A)).toEqual([])
    expect(refsOf(then, B)).toEqual([REF])
    expect(refsOf(then, C)).toEqual([REF])
  })

  test("given an indexed ref, when it is removed, then it is gone and its layers no longer name it", () => {
    const state = given(commit(A), commit(B), { _tag: "RefIndexed", ref: REF, layers: [A, B] }, { _tag: "RefIndexed", ref: "other:1", layers: [B] })
    const then = when(state, { _tag: "RefRemoved", ref: REF })
    expect(HashMap.has(then.refs, REF)).toBe(false)
    expect(refsOf(then, A)).toEqual([])
    expect(refsOf(then, B)).toEqual(["other:1"])
    // removing a ref that is not there changes nothing but the event count
    const again = when(then, { _tag: "RefRemoved", ref: REF })
    expect({ ...again, events: 0, lastEventAt: 0 }).toEqual({ ...then, events: 0, lastEventAt: 0 })
  })

  test("given an indexed ref, when a layer of it is committed again, then it keeps naming the ref", () => {
    const then = when(given(commit(A), { _tag: "RefIndexed", ref: REF, layers: [A] }), commit(A, { diffSize: 1 }))
    expect(layer(then, A)).toMatchObject({ diffSize: 1 })
    expect(refsOf(then, A)).toEqual([REF])
  })

  test("given a stored layer, when it is removed, then it moves to removed with its reason and last state", () => {
    const state = given(commit(A))
    const then = when(state, { _tag: "LayerRemoved", layer: A, reason: "gc" }, 8_000)
    expect(HashMap.has(then.layers, A)).toBe(false)
    expect(Option.getOrThrow(HashMap.get(then.removed, A))).toEqual({ digest: A, reason: "gc", removedAt: 8_000, last: layer(state, A) })
    expect(then.counters.layersRemoved).toBe(1)
    // and committing it again brings it back
    const again = when(then, commit(A))
    expect(HashMap.has(again.layers, A)).toBe(true)
    expect(HashMap.has(again.removed, A)).toBe(false)
  })

  test("given pulls, when they complete or fail, then counters, failure codes and the ref's manifest follow", () => {
    const state = given(
      { _tag: "PullRequested", ref: REF, platform: "linux/amd64" },
      { _tag: "BlobFetched", layer: A, bytes: 1_000, ms: 5 },
      { _tag: "BlobFetched", layer: B, bytes: 500, ms: 5 },
      commit(A),
      { _tag: "RefIndexed", ref: REF, layers: [A] },
      { _tag: "PullCompleted", ref: REF, manifestDigest: B, found: 0, linked: 0, pulled: 1, bytesFetched: 1_000, ms: 10 },
      { _tag: "PullRequested", ref: "other:1", platform: "linux/amd64" },
      { _tag: "PullFailed", ref: "other:1", reason: { code: "Unauthorized", message: "no" } },
    )
    const then = when(state, { _tag: "PullFailed", ref: "other:1", layer: C, reason: { code: "DigestMismatch", message: "bad" } })
    expect(then.counters).toMatchObject({
      pullsRequested: 2,
      pullsCompleted: 1,
      pullsFailed: 2,
      failuresByCode: { Unauthorized: 1, DigestMismatch: 1 },
      bytesFetched: 1_500,
      layersPulled: 1,
    })
    expect(Option.getOrThrow(HashMap.get(then.refs, REF)).manifestDigest).toBe(B)
  })

  test("lookups, pool probes, refusals, extractions, repairs and initialisation are counted", () => {
    const then = given(
      { _tag: "StoreInitialized", root: "/var/lib/als", alsVersion: "0.1.0" },
      { _tag: "LookupRequested", layer: A },
      { _tag: "LayerFound", layer: A, path: "/x" },
      { _tag: "LookupRequested", layer: B },
      { _tag: "LayerMissing", layer: B },
      { _tag: "PoolProbed", layer: B, pool: "/pool", kind: "seed", path: "/pool/b", hit: true },
      { _tag: "PoolProbed", layer: C, pool: "/pool", kind: "cvmfs", path: "/pool/c", hit: false },
      { _tag: "LinkRefused", layer: B, pool: "/pool", path: "/pool/b", reason: "not a directory" },
      { _tag: "LayerExtracted", layer: C, diffId: C, files: 3, bytes: 10 },
      { _tag: "LogRepaired", cutAt: 100, droppedBytes: 7 },
    )
    expect(then.initialized).toMatchObject({ root: "/var/lib/als", alsVersion: "0.1.0" })
    expect(then.counters).toMatchObject({
      lookups: 2,
      layersFound: 1,
      layersMissing: 1,
      poolProbes: 2,
      poolHits: 1,
      linksRefused: 1,
      layersExtracted: 1,
      logRepairs: 1,
    })
    expect(then.events).toBe(10)
  })

  test("evolve never changes the state it is given", () => {
    const before = given(commit(A), { _tag: "RefIndexed", ref: REF, layers: [A] })
    const snapshot = JSON.stringify({ layers: [...before.layers].map(([k, v]) => [k, { ...v, refs: [...v.refs] }]), c: before.counters, n: before.events })
    when(before, { _tag: "LayerRemoved", layer: A, reason: "gc" })
    when(before, { _tag: "RefIndexed", ref: REF, layers: [] })
    when(before, { _tag: "PullFailed", ref: REF, reason: { code: "X", message: "" } })
    expect(JSON.stringify({ layers: [...before.layers].map(([k, v]) => [k, { ...v, refs: [...v.refs] }]), c: before.counters, n: before.events })).toBe(snapshot)
    expect(initialState.events).toBe(0)
  })
})
