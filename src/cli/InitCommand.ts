import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Journal, ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { ALS_VERSION } from "../version.ts"
import * as opt from "./options.ts"

export const storageConfLines = (root: string) => [
  `# /etc/containers/storage.conf (or ~/.config/containers/storage.conf)`,
  `[storage.options]`,
  `additionallayerstores = ["${root}:ref"]`,
  ``,
  `# or per command:`,
  `podman --storage-opt overlay.additionallayerstore=${root}:ref pull IMAGE`,
]

export const initCommand = Command.make("init", { root: opt.root }, ({ root }) => {
  const dir = opt.resolveRoot(root)
  // decided before the log is opened: opening it creates <root>/.als
  const fresh = !fs.existsSync(path.join(dir, ".als", "log"))
  return Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    yield* store.init()
    if (fresh) yield* journal.emit({ _tag: "StoreInitialized", root: store.paths.root, alsVersion: ALS_VERSION })
    yield* Console.log(`${fresh ? "Created" : "Already a store:"} ${store.paths.root}\n`)
    yield* Console.log(storageConfLines(store.paths.root).join("\n"))
  }).pipe(Effect.provide(storeLayer(dir, ReporterSilent)))
}).pipe(Command.withDescription(
  "Create a store and print the storage.conf line that points podman at it.\n\n" +
    "Defaults: --root DIR (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise). Running it again on a store changes nothing.\n\n" +
    "Example: als init --root /var/lib/als",
))
