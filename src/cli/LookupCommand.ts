import { errLine } from "./errLine.ts"
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, HashMap, Option } from "effect"
import { decodeDigest } from "../domain/Digest.ts"
import { Journal, ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { parsePoolSpec } from "../pool/Pool.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { lookupLayer } from "../workflows/Lookup.ts"
import { ExitCode, setExitCode } from "./exit.ts"
import * as opt from "./options.ts"

const digest = Args.text({ name: "DIGEST" }).pipe(Args.withDescription("the layer's blob digest, sha256:<hex>"))
const ref = Options.text("ref").pipe(
  Options.withDescription("the image reference podman pulls (names the layer in the :ref view and the seed pool)"),
  Options.optional,
)
const annotation = Options.keyValueMap("annotation").pipe(
  Options.withDescription("a layer descriptor annotation k=v (seed pool discovery); repeatable"),
  Options.optional,
)
const pool = Options.text("pool").pipe(
  Options.withDescription("a pool to probe after <root>/.pool: an ALS store, or a CVMFS-style tree (has .layers/); KIND:DIR forces the kind"),
  Options.repeated,
)

export const lookupCommand = Command.make(
  "lookup",
  { digest, ref, annotation, pool, root: opt.root, json: opt.json },
  (a) => {
    const dir = opt.resolveRoot(a.root)
    return Effect.gen(function*() {
      const layer = yield* decodeDigest(a.digest)
      const store = yield* LayerStore
      const journal = yield* Journal
      yield* store.init()
      const pools = [
        { kind: "seed" as const, dir: store.paths.pool },
        ...(yield* Effect.promise(() => Promise.all(a.pool.map(parsePoolSpec)))),
      ]
      const annotations = Option.match(a.annotation, {
        onNone: () => ({}),
        onSome: (m) => Object.fromEntries(HashMap.toEntries(m)),
      })
      const result = yield* journal.workflow(lookupLayer({
        digest: layer,
        ref: Option.getOrUndefined(a.ref),
        annotations,
        pools,
      }))
      if (a.json) {
        yield* Console.log(JSON.stringify({ layer, status: result._tag.toLowerCase(), ...result, _tag: undefined }))
      } else if (result._tag === "Found") {
        yield* Console.log(result.path)
      } else if (result._tag === "Linked") {
        yield* Console.log(result.path)
        yield* errLine(`linked from ${result.poolPath}`)
      } else {
        for (const r of result.refused) yield* errLine(`${layer}: pool ${r.pool} shows it, but: ${r.reason}`)
        yield* errLine(`${layer}: not in the store nor in any pool (probed: ${pools.map((p) => p.dir).join(", ")})`)
        yield* errLine(`see what the store has with: als ls --root ${store.paths.root}; fetch an image with: als pull REF`)
      }
      setExitCode(result._tag === "Missing" ? ExitCode.notFound : ExitCode.ok)
    }).pipe(Effect.provide(storeLayer(dir, ReporterSilent)))
  },
).pipe(Command.withDescription(
  "Find one layer: in the store, else in a pool (linked, nothing copied). Prints the layer's path.\n" +
    "Exit 0 found or linked, 1 not found (then: als ls shows what the store has, als pull fetches the image).\n\n" +
    "Defaults: no --ref (only the layer's own directory); pools: <root>/.pool, then each --pool; --root DIR (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise).\n\n" +
    "Example: als lookup sha256:4f4f… --ref docker.io/library/alpine:3.19 --pool /mnt/nfs/als",
))
