/**
 * Composition, once: which implementation of each service a command runs with.
 */
import { Layer } from "effect"
import { EventLogFile, IdsLive } from "./events/EventLog.ts"
import { Journal, Reporter } from "./events/Journal.ts"
import { LayerStore } from "./store/LayerStore.ts"
import { storeConfig } from "./store/StoreConfig.ts"
import { SyscallsLive } from "./sys/Syscalls.ts"

/** Everything a workflow on the store at `root` needs, reporting events to `reporter`. */
export const storeLayer = (root: string, reporter: Layer.Layer<Reporter>) => {
  const config = storeConfig(root)
  const log = EventLogFile(root).pipe(Layer.provide(IdsLive))
  const journal = Journal.Default.pipe(Layer.provide(Layer.mergeAll(log, reporter, IdsLive)))
  const store = LayerStore.Default.pipe(Layer.provide(Layer.merge(config, SyscallsLive)))
  return Layer.mergeAll(config, log, journal, store, IdsLive, SyscallsLive, reporter)
}
