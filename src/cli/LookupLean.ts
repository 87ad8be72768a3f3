/**
 * `als lookup` without the command tree: the seed runs one lookup per layer, so this
 * process's start-up sits on podman's critical path, and loading @effect/cli,
 * @effect/platform-node and the registry code costs more than the lookup itself.
 *
 * Only the plain spellings are parsed here (`lookup DIGEST [--ref R] [--annotation k=v]…
 * [--pool DIR]… [--root DIR] [--json]`, in any order); for anything else (help, `--flag=value`,
 * a missing or repeated value, an unknown flag) `parseLookupArgs` returns undefined and the
 * full CLI handles the command line, so its help and usage errors stay the only ones.
 * `lookupBody` is the command's one body: LookupCommand.ts runs it too, for the command
 * lines only @effect/cli parses (bench/LookupParity.ts compares both paths).
 */
import { Console, Context, Effect, HashMap } from "effect"
import type { Digest } from "../domain/Digest.ts"
import { isPlainText, safeText } from "../domain/SafeText.ts"
import { Ids, randomIds } from "../events/EventLog.ts"
import { Journal, Reporter, silentReporter } from "../events/Journal.ts"
import { parsePoolSpec } from "../pool/Pool.ts"
import { makeStoreContext } from "../Layers.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { lookupLayer } from "../workflows/Lookup.ts"
import { asUsage, parseDigestArg, parsePathArg, parseRefArg } from "./Arguments.ts"
import { errLine } from "./errLine.ts"
import { ExitCode, setExitCode } from "./exit.ts"
import { existingStore } from "./StoreRoot.ts"
import { UsageError } from "../domain/UsageError.ts"

export interface LookupArgs {
  readonly digest: string
  readonly ref: string | undefined
  /** in the order given; later keys win, as with @effect/cli's key/value map */
  readonly annotations: ReadonlyArray<readonly [string, string]>
  readonly pools: ReadonlyArray<string>
  readonly root: string | undefined
  readonly json: boolean
  /** every word, for the checks the full CLI makes before parsing (ArgvGuard.ts) */
  readonly words: ReadonlyArray<string>
}

// @effect/cli reads a boolean flag's next word as its value when it is one of these.
const BOOLEAN_WORDS = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])

/** `args` without the leading "lookup"; undefined when the full CLI must parse them. */
export const parseLookupArgs = (args: ReadonlyArray<string>): LookupArgs | undefined => {
  let digest: string | undefined
  let ref: string | undefined
  let root: string | undefined
  let json = false
  const annotations: Array<readonly [string, string]> = []
  const pools: Array<string> = []
  // a plain value: not empty, not flag-like, no surrounding blanks (@effect/cli trims)
  const plain = (v: string | undefined): v is string =>
    v !== undefined && v !== "" && !v.startsWith("-") && v.trim() === v
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const value = args[i + 1]
    switch (a) {
      case "--ref":
        if (ref !== undefined || !plain(value)) return undefined
        ref = value
        i++
        break
      case "--root":
        if (root !== undefined || !plain(value)) return undefined
        root = value
        i++
        break
      case "--pool":
        if (!plain(value)) return undefined
        pools.push(value)
        i++
        break
      case "--annotation": {
        // exactly one "=" with a key and a value: the other shapes are @effect/cli's to judge
        if (!plain(value)) return undefined
        const parts = value.split("=")
        if (parts.length !== 2 || parts[0] === "" || parts[1] === "") return undefined
        annotations.push([parts[0]!, parts[1]!])
        i++
        break
      }
      case "--json":
        if (json || (value !== undefined && BOOLEAN_WORDS.has(value))) return undefined
        json = true
        break
      default:
        // one positional, which no key/value list could have swallowed
        if (digest !== undefined || !plain(a) || a.includes("=")) return undefined
        digest = a
    }
  }
  return digest === undefined ? undefined : { digest, ref, annotations, pools, root, json, words: args }
}

/** The services of `storeLayer(root, ReporterSilent)` (Layers.ts), without any layer. */
const storeContext = (root: string) =>
  makeStoreContext(root, Context.make(Ids, randomIds).pipe(Context.add(Reporter, silentReporter)))

/** A lookup's arguments as typed, before they are checked. */
export interface LookupInput {
  readonly digest: string
  readonly ref: string | undefined
  readonly annotations: Readonly<Record<string, string>>
  readonly pools: ReadonlyArray<string>
  readonly json: boolean
}

/** A lookup's arguments once checked: the digest parsed, the ref normalized. */
export interface LookupRequest extends LookupInput {
  readonly digest: Digest
}

/**
 * The one check of a lookup's arguments, on both paths, before anything is opened: a digest
 * that does not parse, a ref the reference parser refuses, an empty pool path, or control
 * characters in an annotation are usage errors (exit 2).
 */
export const checkLookup = (a: LookupInput): Effect.Effect<LookupRequest, UsageError> =>
  Effect.gen(function*() {
    const digest = yield* asUsage(parseDigestArg(a.digest))
    const ref = a.ref === undefined ? undefined : yield* asUsage(parseRefArg(a.ref, "--ref"))
    for (const p of a.pools) yield* asUsage(parsePathArg(p, "--pool"))
    for (const [k, v] of Object.entries(a.annotations)) {
      if (!isPlainText(k) || !isPlainText(v)) {
        return yield* new UsageError({ message: `--annotation ${safeText(k, 100)}=${safeText(v, 100)}: contains control characters` })
      }
    }
    return { ...a, digest, ref }
  })

/** What `als lookup` does once its arguments are checked, and prints: the command's one body. */
export const lookupBody = (a: LookupRequest) =>
  Effect.gen(function*() {
    const layer = a.digest
    const store = yield* LayerStore
    const journal = yield* Journal
    yield* store.init()
    const pools = [
      { kind: "seed" as const, dir: store.paths.pool },
      ...(yield* Effect.promise(() => Promise.all(a.pools.map(parsePoolSpec)))),
    ]
    const result = yield* journal.workflow(lookupLayer({ digest: layer, ref: a.ref, annotations: a.annotations, pools }))
    if (a.json) {
      yield* Console.log(JSON.stringify({ layer, status: result._tag.toLowerCase(), ...result, _tag: undefined }))
    } else if (result._tag === "Found") {
      yield* Console.log(safeText(result.path))
    } else if (result._tag === "Linked") {
      yield* Console.log(safeText(result.path))
      yield* errLine(`linked from ${safeText(result.poolPath)}`)
    } else {
      for (const r of result.refused) yield* errLine(`${layer}: pool ${safeText(r.pool)} shows it, but: ${safeText(r.reason)}`)
      yield* errLine(`${layer}: not in the store nor in any pool (probed: ${safeText(pools.map((p) => p.dir).join(", "))})`)
      yield* errLine(`see what the store has with: als ls --root ${safeText(store.paths.root)}; fetch an image with: als pull REF`)
    }
    setExitCode(result._tag === "Missing" ? ExitCode.notFound : ExitCode.ok)
  })

/** The lean path's whole program: the root and arguments checked, then the body on the store's services. */
export const lookupProgram = (a: LookupArgs) =>
  Effect.gen(function*() {
    const refused = a.words.find((w) => !isPlainText(w))
    if (refused !== undefined) return yield* new UsageError({ message: `argument "${safeText(refused, 200)}" contains control characters` })
    const dir = yield* existingStore(a.root)
    // through a HashMap, as the full CLI does: the same key order reaches the log
    const annotations = a.annotations.length === 0 ? {} : Object.fromEntries(HashMap.toEntries(HashMap.fromIterable(a.annotations)))
    const request = yield* checkLookup({ digest: a.digest, ref: a.ref, annotations, pools: a.pools, json: a.json })
    return yield* Effect.scoped(Effect.flatMap(storeContext(dir), (ctx) => Effect.provide(lookupBody(request), ctx)))
  })
