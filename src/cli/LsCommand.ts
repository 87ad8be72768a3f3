import { Command } from "@effect/cli"
import { Console, Effect, HashMap, HashSet, Option } from "effect"
import { EventLog } from "../events/EventLog.ts"
import { ReporterSilent } from "../events/Journal.ts"
import { evolve, initialState } from "../events/Projection.ts"
import { storeLayer } from "../Layers.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { liveUses } from "../store/InUse.ts"
import * as opt from "./options.ts"
import { humanBytes } from "./Reporters.ts"
import { safeText } from "../domain/SafeText.ts"

export const lsCommand = Command.make("ls", { root: opt.root, json: opt.json }, (a) =>
  Effect.gen(function*() {
    const store = yield* LayerStore
    const log = yield* EventLog
    const onDisk = yield* store.list()
    const state = yield* log.fold(initialState, evolve)
    // less the uses of serve processes gone from this host (src/store/InUse.ts)
    const live = liveUses(state)
    const rows = onDisk.map((l) => {
      const rec = Option.getOrUndefined(HashMap.get(state.layers, l.digest))
      return {
        digest: l.digest,
        source: rec?.source ?? (l.linkedTo ? "link" : "unknown"),
        pool: rec?.pool,
        linkedTo: l.linkedTo,
        blobSize: l.facts.size ?? rec?.blobSize,
        diffSize: l.facts.diffSize ?? rec?.diffSize,
        diffId: l.facts.diffId ?? rec?.diffId,
        tocDigest: l.facts.tocDigest ?? rec?.tocDigest,
        complete: l.complete,
        aliases: l.aliases,
        refs: [...new Set([...l.refs, ...(rec ? HashSet.toValues(rec.refs) : [])])].sort(),
        // clients of `als serve` holding it now (podman's use minus its rmdir, from the log)
        uses: live.get(l.digest) ?? 0,
      }
    })
    if (a.json) {
      for (const r of rows) yield* Console.log(JSON.stringify(r))
      return
    }
    const table = [["LAYER", "SOURCE", "SIZE", "USES", "REFS"]]
    for (const r of rows) {
      table.push([
        // names and paths come from the store's files and the log: shown safe (SafeText.ts)
        safeText(r.digest.slice(0, 19), 19) + (r.complete ? "" : " (incomplete)"),
        r.source === "link" ? `linked ${safeText(r.pool ?? r.linkedTo ?? "", 400)}` : r.source === "pull" ? "pulled" : "not in log",
        r.blobSize === undefined ? "?" : humanBytes(r.blobSize),
        String(r.uses),
        r.refs.map((ref) => safeText(ref, 400)).join(", "),
      ])
    }
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
    for (const row of table) yield* Console.log(row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd())
    yield* Console.log(`\n${rows.length} layers in ${safeText(store.paths.root)}`)
  }).pipe(Effect.provide(storeLayer(opt.resolveRoot(a.root), ReporterSilent)))).pipe(
    Command.withDescription(
      "List stored layers: digest, source (pulled, or linked from which pool), size, uses (clients of als serve holding it) and the refs that name it.\n" +
        "Example: als ls --root /var/lib/als --json",
    ),
  )
