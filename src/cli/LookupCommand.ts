import { Args, Command, Options } from "@effect/cli"
import { Effect, HashMap, Option } from "effect"
import { ReporterSilent } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { checkLookup, lookupBody, type LookupInput } from "./LookupLean.ts"
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

/** The one option definition; LookupLean.ts's hand parser is tested for parity against it. */
export const lookupOptions = { digest, ref, annotation, pool, root: opt.root, json: opt.json }

/** What @effect/cli parsed, as the lean path's LookupInput. */
export const lookupInput = (a: Command.Command.ParseConfig<typeof lookupOptions>): LookupInput => ({
  digest: a.digest,
  ref: Option.getOrUndefined(a.ref),
  annotations: Option.match(a.annotation, {
    onNone: () => ({}),
    onSome: (m) => Object.fromEntries(HashMap.toEntries(m)),
  }),
  pools: a.pool,
  json: a.json,
})

export const lookupCommand = Command.make(
  "lookup",
  lookupOptions,
  (a) =>
    // the one check and the one body, shared with the lean start-up path (LookupLean.ts)
    Effect.flatMap(checkLookup(lookupInput(a)), (request) =>
      lookupBody(request).pipe(Effect.provide(storeLayer(opt.resolveRoot(a.root), ReporterSilent)))),
).pipe(Command.withDescription(
  "Find one layer: in the store, else in a pool (linked, nothing copied). Prints the layer's path.\n" +
    "Exit 0 found or linked, 1 not found (then: als ls shows what the store has, als pull fetches the image).\n\n" +
    "Defaults: no --ref (only the layer's own directory); pools: <root>/.pool, then each --pool; --root DIR (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise).\n\n" +
    "Example:\n  als lookup sha256:4f4f… --ref docker.io/library/alpine:3.19 --pool /mnt/nfs/als",
))
