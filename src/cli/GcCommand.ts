import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { defaultGraphroots } from "../store/InUse.ts"
import { gc } from "../workflows/Gc.ts"
import * as opt from "./options.ts"

const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("only say what would be removed"))
const graphroot = Options.text("graphroot").pipe(
  Options.withDescription("podman graph root(s) whose layers may use the store (default: /var/lib/containers/storage as root, ~/.local/share/containers/storage otherwise); repeatable"),
  Options.repeated,
)

export const gcCommand = Command.make("gc", { dryRun, graphroot, root: opt.root, json: opt.json }, (a) =>
  Effect.gen(function*() {
    const plan = yield* gc({
      dryRun: a.dryRun,
      graphroots: a.graphroot.length > 0 ? a.graphroot : defaultGraphroots(),
    })
    if (a.json) {
      yield* Console.log(JSON.stringify({ dryRun: a.dryRun, ...plan }))
      return
    }
    for (const r of plan.remove) yield* Console.log(`${a.dryRun ? "would remove" : "removed"} ${r.digest} (${r.reason})`)
    for (const d of plan.keptInUse) yield* Console.log(`kept ${d} (in use by podman)`)
    yield* Console.log(
      `${plan.remove.length} ${a.dryRun ? "to remove" : "removed"}, ${plan.keptInUse.length} kept in use, ${plan.keptReferenced} named by refs`,
    )
  }).pipe(Effect.provide(storeLayer(opt.resolveRoot(a.root), ReporterSilent)))).pipe(
    Command.withDescription(
      "Remove layers that no ref in the store names and no podman layer uses (never one in use).\n" +
        "Example: als rm docker.io/library/alpine:3.19 && als gc --dry-run",
    ),
  )
