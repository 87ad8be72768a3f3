/**
 * `als gc`: removes the layers nothing needs: no ref in the store names them, no podman layer
 * uses them, and no running pull holds them (a pull names its layers only when it ends; until
 * then its pin keeps them, store/Pins.ts). A layer disappears in one step (renamed out of the
 * root into staging, then deleted), under its layer lock, and every removal is an event.
 *
 * The first scan only proposes. Each candidate is decided again holding its layer lock, which
 * every pull takes before it pins, finds or commits that layer: so either the pull pinned it
 * before gc looked (kept), or it comes after gc and finds the layer gone (and pulls it again).
 */
import { Effect } from "effect"
import type { Digest } from "../domain/Digest.ts"
import { EventLog } from "../events/EventLog.ts"
import { Journal } from "../events/Journal.ts"
import { evolve, initialState } from "../events/Projection.ts"
import { layersInUse, liveUses, refsNaming } from "../store/InUse.ts"
import { defaultLayerLock, withLayerLock } from "../store/LayerLock.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { livePinsOf, pinnedDigests } from "../store/Pins.ts"

export interface GcOptions {
  readonly dryRun: boolean
  readonly graphroots: ReadonlyArray<string>
  /** how long to wait for a layer another process is working on before leaving it (default: past the lock's stale time, so a dead holder's lock is taken over) */
  readonly lockWaitMs?: number
}

export interface GcPlan {
  readonly remove: ReadonlyArray<{ readonly digest: Digest; readonly reason: string }>
  readonly keptInUse: ReadonlyArray<Digest>
  /** held by a running pull (its pin), or locked by another process when gc came to it */
  readonly keptPinned: ReadonlyArray<Digest>
  readonly keptReferenced: number
}

type Verdict = "remove" | "pinned" | "referenced" | "in-use" | "gone"

/**
 * Layers an `als serve` client holds now: more LayerAcquired than LayerReleased in the log
 * (podman's `use` and `rmdir` through the mount). Its `additionallayer` files name paths in
 * the mount, which gc reads without following; this count is the serve's own word.
 */
const servedInUse = Effect.gen(function*() {
  const state = yield* (yield* EventLog).fold(initialState, evolve)
  // uses counted by serve processes gone from this host hold nothing (InUse.ts liveUses)
  return new Set(liveUses(state).keys()) as ReadonlySet<string>
})

export const gc = Effect.fn("gc")(function*(opts: GcOptions) {
  const store = yield* LayerStore
  const journal = yield* Journal
  const { root, alsDir, locks } = store.paths
  const layers = yield* store.list()
  const inUse = new Set<string>([...(yield* layersInUse(root, opts.graphroots)), ...(yield* servedInUse)])
  const pinned = yield* pinnedDigests(alsDir)
  const candidates: Array<{ digest: Digest; reason: string }> = []
  const keptInUse: Digest[] = []
  const keptPinned: Digest[] = []
  let keptReferenced = 0
  for (const l of layers) {
    if (l.refs.length > 0) keptReferenced++
    else if (inUse.has(l.digest)) keptInUse.push(l.digest)
    else if (pinned.has(l.digest)) keptPinned.push(l.digest)
    else candidates.push({ digest: l.digest, reason: l.complete ? "no ref names it, no pull holds it and podman does not use it" : "incomplete" })
  }
  if (opts.dryRun) return { remove: candidates, keptInUse, keptPinned, keptReferenced } satisfies GcPlan

  const removed: Array<{ digest: Digest; reason: string }> = []
  const decide = (digest: Digest) =>
    Effect.gen(function*() {
      // Pins before refs: a pull writes its refs before it drops its pin, so once the pin is
      // seen gone, the refs it wrote are there to be seen (the other order has a gap).
      if ((yield* livePinsOf(alsDir, digest)).length > 0) return "pinned" as Verdict
      if ((yield* refsNaming(root, digest)).length > 0) return "referenced" as Verdict
      // podman may have started using it since the scan
      if ((yield* layersInUse(root, opts.graphroots)).has(digest)) return "in-use" as Verdict
      if ((yield* servedInUse).has(digest)) return "in-use" as Verdict
      return (yield* store.remove(digest)) ? "remove" as Verdict : "gone" as Verdict
    })
  for (const c of candidates) {
    const verdict = yield* withLayerLock(locks, c.digest, decide(c.digest), {
      timeoutMs: opts.lockWaitMs ?? defaultLayerLock.staleMs + 5_000,
      staleMs: defaultLayerLock.staleMs,
    }).pipe(
      // someone is working on this layer right now: it is not garbage yet
      Effect.catchIf((e) => e._tag === "StoreIoError" && e.code === "ELOCKED", () => Effect.succeed<Verdict>("pinned")),
    )
    if (verdict === "remove") {
      removed.push(c)
      yield* journal.emit({ _tag: "LayerRemoved", layer: c.digest, reason: c.reason })
    } else if (verdict === "pinned") keptPinned.push(c.digest)
    else if (verdict === "referenced") keptReferenced++
    else if (verdict === "in-use") keptInUse.push(c.digest)
  }
  yield* store.pruneDanglingNames()
  return { remove: removed, keptInUse, keptPinned, keptReferenced } satisfies GcPlan
})
