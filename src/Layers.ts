/**
 * Composition, once: which implementation of each service a command runs with. The store's
 * services here; the registry client's in RegistryLayers.ts, apart so that `als lookup`'s lean
 * path (one process per layer, on podman's critical path) never loads the registry stack.
 */
import { Context, Effect, Layer } from "effect"
import { EventLog, Ids, IdsLive, makeEventLogFile } from "./events/EventLog.ts"
import { Journal, makeJournal, Reporter } from "./events/Journal.ts"
import { LayerStore, makeLayerStore } from "./store/LayerStore.ts"
import { StoreConfig, storeConfigFor } from "./store/StoreConfig.ts"
import { loadSyscalls, Syscalls } from "./sys/Syscalls.ts"

/**
 * The store's services on top of `base` (an id source and a reporter), made one after the
 * other by their constructors. Not `Layer.mergeAll` of their layers: building a layer costs
 * ~1 ms in a fresh process (memo map, scope, a fiber per merged layer), 50 ms of CPU for the
 * whole set, which every command paid before its first event (BENCHMARKS.md).
 */
export const makeStoreContext = (root: string, base: Context.Context<Ids | Reporter>) =>
  Effect.gen(function*() {
    const syscalls = yield* Effect.promise(loadSyscalls)
    const withSys = base.pipe(Context.add(StoreConfig, storeConfigFor(root)), Context.add(Syscalls, syscalls))
    const withLog = Context.add(withSys, EventLog, yield* Effect.provide(makeEventLogFile(root), withSys))
    const withJournal = Context.add(withLog, Journal, Journal.make(yield* Effect.provide(makeJournal, withLog)))
    return Context.add(withJournal, LayerStore, LayerStore.make(yield* Effect.provide(makeLayerStore, withJournal)))
  })

/**
 * Everything a workflow on the store at `root` needs, reporting events to `reporter`. `ids`
 * is a seam for `als pull --record` and `als replay`, which tape the ids a pull takes.
 */
export const storeLayer = (root: string, reporter: Layer.Layer<Reporter>, ids: Layer.Layer<Ids> = IdsLive) =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const base = Context.merge(yield* Layer.build(ids), yield* Layer.build(reporter))
      return yield* makeStoreContext(root, base)
    }),
  )
