import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { hostStorage } from "../config/StorageConfFiles.ts"
import { ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { gc } from "../workflows/Gc.ts"
import * as opt from "./options.ts"
import { UsageError } from "../domain/UsageError.ts"

const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("only say what would be removed"))
const graphroot = Options.text("graphroot").pipe(
  Options.withDescription(
    "podman graph root(s) whose layers may use the store; repeatable; each must be an existing directory " +
      "(default: the graphroot of the storage.conf podman reads: $CONTAINERS_STORAGE_CONF, else " +
      "$XDG_CONFIG_HOME/containers/, /etc/containers/, /usr/share/containers/storage.conf; rootless: ~/.config/containers/storage.conf, " +
      "else ~/.local/share/containers/storage)",
  ),
  Options.repeated,
)

interface GraphRoot {
  readonly path: string
  /** the file it came from, "--graphroot", or "podman's default" */
  readonly from: string
}

/** The graph roots to check: the ones given (each must exist), else podman's own, found as podman finds it. */
export const graphRootsFor = (given: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<GraphRoot>, UsageError> =>
  Effect.gen(function*() {
    if (given.length > 0) {
      const out: GraphRoot[] = []
      for (const g of given) {
        if (g.trim() === "") return yield* new UsageError({ message: "--graphroot: an empty path" })
        const st = fs.statSync(g, { throwIfNoEntry: false })
        if (st === undefined) return yield* new UsageError({ message: `--graphroot ${g}: no such directory; pass podman's graph root (podman info --format '{{.Store.GraphRoot}}')` })
        if (!st.isDirectory()) return yield* new UsageError({ message: `--graphroot ${g}: not a directory` })
        out.push({ path: path.resolve(g), from: "--graphroot" })
      }
      return out
    }
    const r = hostStorage()
    if (!r.ok) {
      return yield* new UsageError({
        message: `cannot tell which graph root podman uses: ${r.failure.file}: ${r.failure.error}; fix the file (podman cannot start with it either) or pass --graphroot DIR`,
      })
    }
    return [{ path: r.settings.graphroot, from: r.settings.file ?? "podman's default (no storage.conf)" }]
  })

export const gcCommand = Command.make("gc", { dryRun, graphroot, root: opt.root, json: opt.json }, (a) =>
  Effect.gen(function*() {
    const roots = yield* graphRootsFor(a.graphroot)
    const plan = yield* gc({ dryRun: a.dryRun, graphroots: roots.map((g) => g.path) }).pipe(
      Effect.provide(storeLayer(opt.resolveRoot(a.root), ReporterSilent)),
    )
    if (a.json) {
      yield* Console.log(JSON.stringify({ dryRun: a.dryRun, graphroots: roots, ...plan }))
      return
    }
    for (const g of roots) yield* Console.log(`podman graph root ${g.path} (${g.from})${fs.existsSync(g.path) ? "" : ": not there yet, so podman uses no layer"}`)
    for (const r of plan.remove) yield* Console.log(`${a.dryRun ? "would remove" : "removed"} ${r.digest} (${r.reason})`)
    for (const d of plan.keptInUse) yield* Console.log(`kept ${d} (in use by podman)`)
    for (const d of plan.keptPinned) yield* Console.log(`kept ${d} (a running pull holds it)`)
    yield* Console.log(
      `${plan.remove.length} ${a.dryRun ? "to remove" : "removed"}, ${plan.keptInUse.length} kept in use, ${plan.keptPinned.length} held by pulls, ${plan.keptReferenced} named by refs`,
    )
  })).pipe(
    Command.withDescription(
      "Remove layers that no ref in the store names, no running pull holds and no podman layer uses\n" +
        "(its additionallayer files, or a client of als serve holding it: als ls shows USES).\n" +
        "podman's graph root is read from the storage.conf podman reads (als doctor says which); a --graphroot\n" +
        "that does not exist, or a storage.conf podman would refuse, is a usage error (exit 2).\n" +
        "Example: als rm docker.io/library/alpine:3.19 && als gc --dry-run",
    ),
  )
