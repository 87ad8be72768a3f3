import { Args, Command, Options } from "@effect/cli"
import { Effect, HashMap, Option } from "effect"
import { ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { lookupBody } from "./LookupLean.ts"
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
    // the one body, shared with the lean start-up path (LookupLean.ts)
    return lookupBody({
      digest: a.digest,
      ref: Option.getOrUndefined(a.ref),
      annotations: Option.match(a.annotation, {
        onNone: () => ({}),
        onSome: (m) => Object.fromEntries(HashMap.toEntries(m)),
      }),
      pools: a.pool,
      json: a.json,
    }).pipe(Effect.provide(storeLayer(dir, ReporterSilent)))
  },
).pipe(Command.withDescription(
  "Find one layer: in the store, else in a pool (linked, nothing copied). Prints the layer's path.\n" +
    "Exit 0 found or linked, 1 not found (then: als ls shows what the store has, als pull fetches the image).\n\n" +
    "Defaults: no --ref (only the layer's own directory); pools: <root>/.pool, then each --pool; --root DIR (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise).\n\n" +
    "Example: als lookup sha256:4f4f… --ref docker.io/library/alpine:3.19 --pool /mnt/nfs/als",
))
