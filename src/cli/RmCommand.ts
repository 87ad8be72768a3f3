import { errLine } from "./errLine.ts"
import { Args, Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { EventLog } from "../events/EventLog.ts"
import { Journal, ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { safeText } from "../domain/SafeText.ts"
import { all, asUsage, parseRefArg } from "./Arguments.ts"
import { ExitCode, setExitCode } from "./exit.ts"
import * as opt from "./options.ts"

const refs = Args.text({ name: "REF" }).pipe(Args.withDescription("image reference whose :ref view to remove"), Args.atLeast(1))

export const rmCommand = Command.make("rm", { refs, root: opt.root }, (a) =>
  // every ref parsed (and normalized: alpine:3.19 is docker.io/library/alpine:3.19, as the
  // store records it) before anything is opened
  Effect.flatMap(asUsage(all(a.refs.map((r) => parseRefArg(r)))), (refNames) => Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    const log = yield* EventLog
    // a pull indexes its ref and the same image pinned to its digest(s): the names one
    // workflow indexed together go together
    const together = yield* log.fold(
      { byWorkflow: new Map<string, Set<string>>(), last: new Map<string, string>() },
      (acc, e) => {
        if (e.event._tag === "RefIndexed") {
          const w = e.envelope.workflow
          acc.byWorkflow.set(w, (acc.byWorkflow.get(w) ?? new Set()).add(e.event.ref))
          acc.last.set(e.event.ref, w)
        }
        return acc
      },
    )
    let missing = 0
    for (const name of refNames) {
      const w = together.last.get(name)
      const names = [name, ...[...(w !== undefined ? together.byWorkflow.get(w) ?? [] : [])].filter((n) =>
        n !== name && n.includes("@") && together.last.get(n) === w
      )]
      let removed = 0
      for (const n of names) {
        if (yield* store.unindexRef(n)) {
          removed++
          yield* journal.emit({ _tag: "RefRemoved", ref: n })
          yield* Console.log(`removed ${safeText(n)}`)
        }
      }
      if (removed === 0) {
        missing++
        yield* errLine(`${safeText(name)}: not in the store (see als ls)`)
      }
    }
    if (missing > 0) setExitCode(ExitCode.notFound)
    else yield* Console.log("its layers stay until `als gc` finds them unused")
  }).pipe(Effect.provide(storeLayer(opt.resolveRoot(a.root), ReporterSilent))))).pipe(
    Command.withDescription(
      "Remove images' :ref views from the store; `als gc` then frees layers nothing else uses.\n" +
        "Example: als rm 127.0.0.1:5000/test/app:1",
    ),
  )
