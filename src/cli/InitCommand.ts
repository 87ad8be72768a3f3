import { Args, Command } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Resolved, storageConfSnippet, storageConfTarget } from "../config/StorageConf.ts"
import { hostStorage, thisHost } from "../config/StorageConfFiles.ts"
import { Journal, ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { ALS_VERSION } from "../version.ts"
import * as opt from "./options.ts"

/**
 * What to tell podman: a whole storage.conf (podman refuses a file without runroot and
 * graphroot, and reads additional layer stores only with a driver), so it works on a host with
 * none; it keeps the graph root podman uses now and any stores already listed.
 */
export const storageConfAdvice = (root: string, storage: Resolved = hostStorage(), host = thisHost()): ReadonlyArray<string> => {
  const current = storage.ok ? storage.settings : undefined
  const file = current?.file ?? storageConfTarget(host)
  const now = storage.ok
    ? current?.file ? `podman reads ${current.file} now; set these in it (keep its other settings):` : `podman reads no storage.conf now; create ${file}:`
    : `podman cannot start with ${storage.failure.file} now (${storage.failure.error}); fix it to read:`
  return [
    `# ${now}`,
    storageConfSnippet(root, current, host),
    ``,
    `# or per command:`,
    `podman --storage-opt overlay.additionallayerstore=${root}:ref pull IMAGE`,
  ]
}

/** Serve mode: podman looks layers up in the mount, which pulls what the store lacks. */
export const serveModeAdvice = (root: string, mountpoint = "/run/als"): ReadonlyArray<string> => [
  `# serve mode (podman drives the store: a lookup the store cannot answer pulls the layer):`,
  `#   als serve --root ${root} ${mountpoint}`,
  `# then additionallayerstores = ["${mountpoint}:ref"]: point podman at the mount, not the store`,
]

/**
 * The store may be named as `--root DIR` or, as the "not an als store (als init DIR)" hint
 * spells it, as a word; StorePolicy.ts has parsed it (and refused both at once) before this runs.
 */
const dirArg = Args.text({ name: "DIR" }).pipe(Args.withDescription("the store to create (the same as --root DIR)"), Args.optional)

export const initCommand = Command.make("init", { root: opt.root, dir: dirArg }, ({ root, dir: word }) => {
  const dir = opt.resolveRoot(Option.orElse(word, () => root))
  // decided before the log is opened: opening it creates <root>/.als
  const fresh = !fs.existsSync(path.join(dir, ".als", "log"))
  return Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    yield* store.init()
    if (fresh) yield* journal.emit({ _tag: "StoreInitialized", root: store.paths.root, alsVersion: ALS_VERSION })
    yield* Console.log(`${fresh ? "Created" : "Already a store:"} ${store.paths.root}\n`)
    yield* Console.log(storageConfAdvice(store.paths.root).join("\n"))
    yield* Console.log(`\n${serveModeAdvice(store.paths.root).join("\n")}`)
  }).pipe(Effect.provide(storeLayer(dir, ReporterSilent)))
}).pipe(Command.withDescription(
  "Create a store and print the storage.conf that points podman at it: a whole file (driver, runroot,\n" +
    "graphroot, additionallayerstores) for the file podman reads, keeping its graph root and other stores.\n\n" +
    "Defaults: --root DIR (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise). Running it again on a store changes nothing.\n\n" +
    "Example: als init --root /var/lib/als (or: als init /var/lib/als)",
))
