/**
 * `als gc`: removes the layers no ref in the store names and no podman layer uses. A layer
 * disappears in one step (renamed out of the root into staging, then deleted), under its
 * layer lock, and every removal is an event.
 */
import { Effect } from "effect"
import type { Digest } from "../domain/Digest.ts"
import { Journal } from "../events/Journal.ts"
import { layersInUse } from "../store/InUse.ts"
import { withLayerLock } from "../store/LayerLock.ts"
import { LayerStore } from "../store/LayerStore.ts"

export interface GcOptions {
  readonly dryRun: boolean
  readonly graphroots: ReadonlyArray<string>
}

export interface GcPlan {
  readonly remove: ReadonlyArray<{ readonly digest: Digest; readonly reason: string }>
  readonly keptInUse: ReadonlyArray<Digest>
  readonly keptReferenced: number
}

export const gc = Effect.fn("gc")(function*(opts: GcOptions) {
  const store = yield* LayerStore
  const journal = yield* Journal
  const layers = yield* store.list()
  const inUse = yield* Effect.promise(() => layersInUse(store.paths.root, opts.graphroots))
  const remove: Array<{ digest: Digest; reason: string }> = []
  const keptInUse: Digest[] = []
  let keptReferenced = 0
  for (const l of layers) {
    if (l.refs.length > 0) keptReferenced++
    else if (inUse.has(l.digest)) keptInUse.push(l.digest)
    else remove.push({ digest: l.digest, reason: l.complete ? "no ref names it and podman does not use it" : "incomplete" })
  }
  const plan: GcPlan = { remove, keptInUse, keptReferenced }
  if (opts.dryRun) return plan
  for (const r of remove) {
    yield* withLayerLock(store.paths.locks, r.digest, Effect.gen(function*() {
      // podman may have started using it since the scan
      const again = yield* Effect.promise(() => layersInUse(store.paths.root, opts.graphroots))
      if (again.has(r.digest)) return
      const removed = yield* store.remove(r.digest)
      if (removed) yield* journal.emit({ _tag: "LayerRemoved", layer: r.digest, reason: r.reason })
    }))
  }
  yield* store.pruneDanglingNames()
  return plan
})
