/**
 * Which way a layer comes into the store, cheapest first, as a pure function: already stored →
 * use it; else the first pool whose answer may be linked → link it; else, with an image to
 * pull from, pull; else missing. The workflows only carry the plan out: Lookup.ts asks the
 * pools one at a time (each probe is an event), calling `decide` after each, and links; its
 * callers (Pull.ts, serve/Resolver.ts) pull when the plan is Pull.
 */
import type { Digest } from "../domain/Digest.ts"
import type { LayerDescriptor, VerifiedLayer } from "../domain/LayerDescriptor.ts"
import type { PoolHit } from "../pool/Pool.ts"
import { planLink } from "../verify/PoolFacts.ts"

/** What one pool showed at `path` (a miss when no hit). */
export interface PoolAnswer {
  readonly pool: string
  readonly path: string
  readonly hit?: PoolHit | undefined
}

export interface Situation {
  readonly digest: Digest
  /** the stored layer's path, when the store has it */
  readonly stored?: string | undefined
  /** the layer as its verified image describes it, when the caller has one */
  readonly layer?: Pick<LayerDescriptor, "size" | "diffId" | "compression"> | undefined
  /** the answers of the pools asked so far, in order */
  readonly answers: ReadonlyArray<PoolAnswer>
  /** how many pools are configured (those past `answers` not asked yet) */
  readonly pools: number
  /** whether a blob the pool lacks can be fetched (from the image's source) */
  readonly canFetchBlob: boolean
  /** whether there is an image to pull the layer from */
  readonly canPull: boolean
}

export interface Refusal {
  readonly pool: string
  readonly path: string
  readonly reason: string
}

export type Plan =
  | { readonly _tag: "UseStored"; readonly path: string }
  /** ask the pool at index `answers.length` */
  | { readonly _tag: "AskNextPool"; readonly refused: ReadonlyArray<Refusal> }
  | {
    readonly _tag: "Link"
    readonly pool: string
    readonly poolPath: string
    readonly hit: PoolHit
    /** the `info` facts (no TOC digest yet: that is named only once checked against the blob) */
    readonly facts: VerifiedLayer
    /** the pool's blob file, or fetch it from the source */
    readonly blob: { readonly _tag: "PoolBlob"; readonly path: string } | { readonly _tag: "FetchBlob" }
    readonly refused: ReadonlyArray<Refusal>
  }
  | { readonly _tag: "Pull"; readonly refused: ReadonlyArray<Refusal> }
  | { readonly _tag: "Missing"; readonly refused: ReadonlyArray<Refusal> }

export const NO_BLOB_SOURCE = "the pool has no blob and no registry to fetch it from"

export const decide = (s: Situation): Plan => {
  if (s.stored !== undefined) return { _tag: "UseStored", path: s.stored }
  const refused: Array<Refusal> = []
  for (const a of s.answers) {
    if (a.hit === undefined) continue
    const plan = planLink(s.digest, a.hit, s.layer)
    if (plan._tag === "Link") {
      return { _tag: "Link", pool: a.pool, poolPath: a.path, hit: a.hit, facts: plan.facts, blob: { _tag: "PoolBlob", path: plan.blob }, refused }
    }
    if (plan._tag === "NeedBlob" && s.canFetchBlob) {
      return { _tag: "Link", pool: a.pool, poolPath: a.path, hit: a.hit, facts: plan.facts, blob: { _tag: "FetchBlob" }, refused }
    }
    refused.push({ pool: a.pool, path: a.path, reason: plan._tag === "Refuse" ? plan.reason : NO_BLOB_SOURCE })
  }
  if (s.answers.length < s.pools) return { _tag: "AskNextPool", refused }
  return s.canPull ? { _tag: "Pull", refused } : { _tag: "Missing", refused }
}
