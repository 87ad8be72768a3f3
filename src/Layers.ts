/**
 * Composition, once: which implementation of each service a command runs with.
 */
import { Layer } from "effect"
import { EventLogFile, Ids, IdsLive } from "./events/EventLog.ts"
import { Journal, Reporter } from "./events/Journal.ts"
import { LayerStore } from "./store/LayerStore.ts"
import { storeConfig } from "./store/StoreConfig.ts"
import { SyscallsLive } from "./sys/Syscalls.ts"

/**
 * Everything a workflow on the store at `root` needs, reporting events to `reporter`. `ids`
 * is a seam for `als pull --record` and `als replay`, which tape the ids a pull takes.
 */
export const storeLayer = (root: string, reporter: Layer.Layer<Reporter>, ids: Layer.Layer<Ids> = IdsLive) => {
  const config = storeConfig(root)
  const log = EventLogFile(root).pipe(Layer.provide(ids))
  const journal = Journal.Default.pipe(Layer.provide(Layer.mergeAll(log, reporter, ids)))
  const store = LayerStore.Default.pipe(Layer.provide(Layer.merge(config, SyscallsLive)))
  return Layer.mergeAll(config, log, journal, store, ids, SyscallsLive, reporter)
}
