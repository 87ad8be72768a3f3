/**
 * One layer, cheapest first, carrying out the plan of `decide` (Decide.ts): already stored →
 * found; else a pool shows it → link it (copying no tree); else missing, or, for a caller with
 * an image to pull from, "pull". Every step is an event.
 */
import { Effect } from "effect"
import type { Digest } from "../domain/Digest.ts"
import type { LayerDescriptor } from "../domain/LayerDescriptor.ts"
import type { Event } from "../events/Events.ts"
import { Journal } from "../events/Journal.ts"
import { type Pool, probePool } from "../pool/Pool.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { acquirePin } from "../store/Pins.ts"
import { decide, type PoolAnswer } from "./Decide.ts"
import { type TocClaim, tocClaimsOf, verifyTocOfFile } from "../verify/Toc.ts"

export interface LookupRequest {
  readonly digest: Digest
  readonly ref?: string | undefined
  readonly annotations?: Readonly<Record<string, string>> | undefined
  readonly pools: ReadonlyArray<Pool>
  /** the layer as its verified image describes it, when the caller has it (the pull workflow does) */
  readonly layer?: LayerDescriptor | undefined
  /** fetches and verifies the blob into a file, for a pool that shows only the tree */
  readonly fetchBlob?: ((digest: Digest) => Effect.Effect<string, unknown>) | undefined
  /** index the `:ref` view right away (the pull workflow indexes all layers at the end) */
  readonly indexRef?: boolean | undefined
  /** the caller pulls the layer when no pool has it (it has an image): the result is then Pull */
  readonly canPull?: boolean | undefined
}

export type LookupResult =
  /** tocDigest: the stored layer's checked TOC digest (read only when a ref needs it) */
  | { readonly _tag: "Found"; readonly path: string; readonly tocDigest?: Digest | undefined }
  | { readonly _tag: "Linked"; readonly path: string; readonly pool: string; readonly poolPath: string; readonly tocDigest?: Digest | undefined }
  | { readonly _tag: "Missing"; readonly refused: ReadonlyArray<{ readonly pool: string; readonly reason: string }> }
  /** not stored and no pool's copy may be linked: the caller pulls it (only with `canPull`) */
  | { readonly _tag: "Pull"; readonly refused: ReadonlyArray<{ readonly pool: string; readonly reason: string }> }

export const lookupLayer = Effect.fn("lookupLayer")(function*(req: LookupRequest) {
  const store = yield* LayerStore
  const journal = yield* Journal
  const annotations = req.annotations ?? {}
  /** A TOC name not given to this layer, and why: logged, never used. */
  const ignored = (tocDigest: string, from: string, reason: string) =>
    journal.emit({ _tag: "TocIgnored", layer: req.digest, tocDigest, from, reason })
  const indexRef = (tocDigest?: Digest) =>
    req.ref !== undefined && req.indexRef !== false
      ? Effect.gen(function*() {
        const entries = [{ key: req.digest, blobDigest: req.digest }]
        if (tocDigest) entries.push({ key: tocDigest, blobDigest: req.digest })
        const r = yield* store.indexRefReport(req.ref!, entries)
        for (const x of r.refused) yield* ignored(x.key, `the :ref view of ${req.ref}`, x.reason)
        // an unchanged view is no event: the seed looks the same layers up again and again
        if (r.changed > 0) {
          yield* journal.emit({ _tag: "RefIndexed", ref: req.ref!, layers: [req.digest] })
        }
      })
      : Effect.void

  const requested: Event = {
    _tag: "LookupRequested",
    layer: req.digest,
    ...(req.ref !== undefined ? { ref: req.ref } : {}),
    ...(Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
  }

  const situation = {
    digest: req.digest,
    layer: req.layer,
    pools: req.pools.length,
    canFetchBlob: req.fetchBlob !== undefined,
    // the caller carries out a Pull (Pull.ts, serve/Resolver.ts); lookup itself never pulls
    canPull: req.canPull === true,
  }
  const answers: Array<PoolAnswer> = []
  let plan = decide({ ...situation, stored: yield* store.find(req.digest), answers })
  if (plan._tag === "UseStored") {
    const found = plan.path
    // the common case: one append for both (each append takes the log lock)
    yield* journal.emitAll([requested, { _tag: "LayerFound", layer: req.digest, path: found }])
    // the names a ref gives it: the TOC digest checked when it was stored, never a new claim
    const toc = req.ref !== undefined ? store.storedToc(found, req.digest) : undefined
    if (req.layer !== undefined) {
      // a pull's annotation that names it otherwise is a claim the stored blob did not prove
      const { claims, malformed } = tocClaimsOf(req.digest, annotations)
      if (malformed) yield* ignored(malformed.value, "annotation", malformed.reason)
      for (const c of claims) {
        if (c.digest !== toc) {
          yield* ignored(c.digest, c.from, `the stored layer's checked TOC digest is ${toc ?? "none"}`)
        }
      }
    }
    yield* indexRef(toc)
    return { _tag: "Found", path: found, tocDigest: toc } as LookupResult
  }
  yield* journal.emit(requested)

  let told = 0
  for (;;) {
    // each refusal is told once, right after the probe that found it
    for (const r of plan._tag === "UseStored" ? [] : plan.refused.slice(told)) {
      yield* journal.emit({ _tag: "LinkRefused", layer: req.digest, pool: r.pool, path: r.path, reason: r.reason })
    }
    if (plan._tag !== "AskNextPool") break
    told = plan.refused.length
    const pool = req.pools[answers.length]!
    const probe = yield* probePool(pool, req.digest, req.ref, annotations)
    yield* journal.emit({
      _tag: "PoolProbed",
      layer: req.digest,
      pool: pool.dir,
      kind: pool.kind,
      path: probe.path,
      hit: probe.hit !== undefined,
    })
    answers.push({ pool: pool.dir, path: probe.path, hit: probe.hit })
    plan = decide({ ...situation, answers })
  }
  if (plan._tag === "Link") {
    const link = plan
    const blob = link.blob._tag === "PoolBlob" ? { blob: link.blob.path } : { blobFile: yield* req.fetchBlob!(req.digest) }
    // A TOC digest becomes a name only once the blob that will be linked proves it.
    let tocDigest: Digest | undefined
    const { claims, malformed } = tocClaimsOf(req.digest, annotations)
    if (malformed) yield* ignored(malformed.value, "annotation", malformed.reason)
    const poolToc = link.hit.info?.tocDigest
    const all: Array<TocClaim> = [...claims]
    if (poolToc !== undefined && !claims.some((c) => c.digest === poolToc)) all.push({ digest: poolToc, from: "pool info" })
    const file = blob.blob ?? blob.blobFile!
    for (const c of all) {
      const check = verifyTocOfFile(file, link.facts.size, link.facts.compression, c)
      if (check._tag === "Verified" && tocDigest === undefined) tocDigest = check.digest
      else if (check._tag === "Unverified") yield* ignored(c.digest, c.from, `not checked against the blob: ${check.reason}`)
      else yield* ignored(c.digest, c.from, `the layer already has the TOC digest ${tocDigest}`)
    }
    const taken = tocDigest === undefined ? undefined : store.aliasTaken(tocDigest, req.digest)
    if (taken !== undefined) {
      yield* ignored(tocDigest!, "alias", taken)
      tocDigest = undefined
    }
    const facts = { ...link.facts, tocDigest }
    // Linked now, named by the ref a moment later: pinned in between, or gc could remove it
    // (store/Pins.ts). A pull (indexRef false) holds its own pin until it names its layers.
    const linkAndIndex = Effect.gen(function*() {
      if (req.indexRef !== false) yield* (yield* acquirePin(store.paths.alsDir)).add(req.digest)
      const linked = yield* store.link(facts, { diff: link.hit.diff, ...blob }, {
        announce: journal.emitAll([
          { _tag: "LayerLinked", layer: req.digest, pool: link.pool, poolPath: link.poolPath },
          {
            _tag: "LayerCommitted",
            layer: req.digest,
            diffId: facts.diffId,
            diffSize: facts.diffSize,
            blobSize: facts.size,
            ...(facts.tocDigest ? { tocDigest: facts.tocDigest } : {}),
            source: "link",
            pool: link.pool,
          },
        ]),
        retract: (why) =>
          journal.emit({ _tag: "LayerRemoved", layer: req.digest, reason: `commit failed: ${why}` }).pipe(Effect.ignore),
      })
      // the alias was not made when its name belongs to another layer: that TOC is no name of ours
      if (linked.aliasRefused !== undefined && tocDigest !== undefined) {
        yield* ignored(tocDigest, "alias", linked.aliasRefused)
        tocDigest = undefined
      }
      yield* indexRef(tocDigest)
      return {
        _tag: "Linked",
        path: linked.path,
        pool: link.pool,
        poolPath: link.poolPath,
        tocDigest,
      } as LookupResult
    })
    return yield* Effect.scoped(linkAndIndex)
  }

  // missing from the store and the pools, whether or not the caller then pulls it
  yield* journal.emit({ _tag: "LayerMissing", layer: req.digest })
  const refused = (plan._tag === "UseStored" ? [] : plan.refused).map((r) => ({ pool: r.pool, reason: r.reason }))
  return { _tag: plan._tag === "Pull" ? "Pull" : "Missing", refused } as LookupResult
})
