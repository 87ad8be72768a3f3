/**
 * Everything `als` does to a store is one of these past-tense events. State is a fold over
 * them (Projection.ts). A shipped shape never changes: a new shape gets a new version number
 * in `EventVersions` and an upcast in Upcast.ts.
 */
import { Schema } from "effect"

const Digest = Schema.String // validated where it enters (domain/Digest.ts); kept plain in the log
const Ref = Schema.String

export const PoolKind = Schema.Literal("seed", "store", "cvmfs")
export type PoolKind = typeof PoolKind.Type

export const LayerSource = Schema.Literal("pull", "link")

/** Why a workflow failed: a closed set of codes, with the human message alongside. */
export const FailureReason = Schema.Struct({
  code: Schema.String, // e.g. DigestMismatch, Unauthorized, UnsafeEntry, NoSpace …
  message: Schema.String,
})
export type FailureReason = typeof FailureReason.Type

export const StoreInitialized = Schema.TaggedStruct("StoreInitialized", {
  root: Schema.String,
  alsVersion: Schema.String,
})
export const LogRepaired = Schema.TaggedStruct("LogRepaired", {
  /** byte offset where the torn tail was cut */
  cutAt: Schema.Number,
  droppedBytes: Schema.Number,
})
export const LookupRequested = Schema.TaggedStruct("LookupRequested", {
  layer: Digest,
  ref: Schema.optional(Ref),
  annotations: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
})
export const LayerFound = Schema.TaggedStruct("LayerFound", {
  layer: Digest,
  path: Schema.String,
})
export const LayerMissing = Schema.TaggedStruct("LayerMissing", {
  layer: Digest,
})
export const PoolProbed = Schema.TaggedStruct("PoolProbed", {
  layer: Digest,
  pool: Schema.String,
  kind: PoolKind,
  path: Schema.String,
  hit: Schema.Boolean,
})
export const LinkRefused = Schema.TaggedStruct("LinkRefused", {
  layer: Digest,
  pool: Schema.String,
  path: Schema.String,
  reason: Schema.String,
})
export const LayerLinked = Schema.TaggedStruct("LayerLinked", {
  layer: Digest,
  pool: Schema.String,
  poolPath: Schema.String,
})
export const PullRequested = Schema.TaggedStruct("PullRequested", {
  ref: Ref,
  platform: Schema.String,
})
export const ResolvedLayer = Schema.Struct({
  digest: Digest,
  size: Schema.Number,
  mediaType: Schema.String,
  diffId: Digest,
  tocDigest: Schema.optional(Digest),
})
export const ManifestResolved = Schema.TaggedStruct("ManifestResolved", {
  ref: Ref,
  manifestDigest: Digest,
  mediaType: Schema.String,
  platform: Schema.String,
  configDigest: Digest,
  layers: Schema.Array(ResolvedLayer),
})
export const BlobFetched = Schema.TaggedStruct("BlobFetched", {
  layer: Digest,
  bytes: Schema.Number,
  ms: Schema.Number,
})
export const LayerExtracted = Schema.TaggedStruct("LayerExtracted", {
  layer: Digest,
  diffId: Digest,
  files: Schema.Number,
  bytes: Schema.Number,
})
export const LayerCommitted = Schema.TaggedStruct("LayerCommitted", {
  layer: Digest,
  diffId: Digest,
  diffSize: Schema.Number,
  blobSize: Schema.Number,
  tocDigest: Schema.optional(Digest),
  source: LayerSource,
  /** the pool the layer links into, for source "link" */
  pool: Schema.optional(Schema.String),
})
export const RefIndexed = Schema.TaggedStruct("RefIndexed", {
  ref: Ref,
  layers: Schema.Array(Digest),
})
export const RefRemoved = Schema.TaggedStruct("RefRemoved", {
  ref: Ref,
})
export const PullCompleted = Schema.TaggedStruct("PullCompleted", {
  ref: Ref,
  manifestDigest: Digest,
  found: Schema.Number,
  linked: Schema.Number,
  pulled: Schema.Number,
  bytesFetched: Schema.Number,
  ms: Schema.Number,
})
export const PullFailed = Schema.TaggedStruct("PullFailed", {
  ref: Ref,
  layer: Schema.optional(Digest),
  reason: FailureReason,
})
export const LayerRemoved = Schema.TaggedStruct("LayerRemoved", {
  layer: Digest,
  reason: Schema.String,
})
/** `als serve`: a client took a layer (created its `use` file). */
export const LayerAcquired = Schema.TaggedStruct("LayerAcquired", {
  layer: Digest,
  /** the name it was looked up by (blob or TOC digest) and the `:ref` it was under */
  key: Digest,
  ref: Schema.optional(Ref),
  /** the requesting process, from the FUSE request (the envelope's pid is the server's) */
  clientPid: Schema.Number,
})
/** `als serve`: a client let a layer go (rmdir of the layer directory). */
export const LayerReleased = Schema.TaggedStruct("LayerReleased", {
  layer: Digest,
  key: Digest,
  ref: Schema.optional(Ref),
  clientPid: Schema.Number,
})
/**
 * `als serve`: uses a serving process counted (LayerAcquired) and never saw released, dropped
 * because that process is gone (killed, crashed): the releases that would have followed went
 * to a dead mount. `serverHost` and `serverPid` are the dead server's (its envelopes'), not the writer's.
 */
export const StaleUsesReleased = Schema.TaggedStruct("StaleUsesReleased", {
  layer: Digest,
  uses: Schema.Number,
  serverHost: Schema.String,
  serverPid: Schema.Number,
  reason: Schema.String,
})
/**
 * A TOC digest als did not make a name for this layer: a claim (annotation, pool info) it
 * could not check against the blob, or a checked one whose name belongs to another layer.
 */
export const TocIgnored = Schema.TaggedStruct("TocIgnored", {
  layer: Digest,
  /** the claimed value, as given (it may not even parse) */
  tocDigest: Schema.String,
  /** who claimed it: "annotation", "pool info", "alias", "the :ref view of REF" */
  from: Schema.String,
  reason: Schema.String,
})

/** `als serve --lazy`: a layer served from its verified TOC while it is still being pulled. */
export const LayerServedLazily = Schema.TaggedStruct("LayerServedLazily", {
  layer: Digest,
  key: Digest,
  ref: Schema.optional(Ref),
  format: Schema.Literal("zstd:chunked", "estargz"),
  tocDigest: Digest,
  /** regular files, their bytes, and the compressed bytes fetched for the TOC */
  files: Schema.Number,
  bytes: Schema.Number,
  tocBytes: Schema.Number,
})
/** `als serve --lazy`: chunks read for a lazily served layer since the last such event (aggregated). */
export const LazyChunksFetched = Schema.TaggedStruct("LazyChunksFetched", {
  layer: Digest,
  chunks: Schema.Number,
  bytes: Schema.Number,
  cached: Schema.Number,
})
/** `als serve --lazy`: a read of a lazily served file failed (a chunk that failed its check, a source gone). */
export const LazyReadFailed = Schema.TaggedStruct("LazyReadFailed", {
  layer: Digest,
  file: Schema.String,
  corrupt: Schema.Boolean,
  reason: Schema.String,
})

export const Event = Schema.Union(
  StoreInitialized,
  LogRepaired,
  LookupRequested,
  LayerFound,
  LayerMissing,
  PoolProbed,
  LinkRefused,
  LayerLinked,
  PullRequested,
  ManifestResolved,
  BlobFetched,
  LayerExtracted,
  LayerCommitted,
  RefIndexed,
  RefRemoved,
  PullCompleted,
  PullFailed,
  LayerRemoved,
  LayerAcquired,
  LayerReleased,
  StaleUsesReleased,
  TocIgnored,
  LayerServedLazily,
  LazyChunksFetched,
  LazyReadFailed,
)
export type Event = typeof Event.Type
export type EventType = Event["_tag"]

/** The current version of each event's shape. Bump it (and add an upcast) to change one. */
export const EventVersions: { readonly [K in EventType]: number } = {
  StoreInitialized: 1,
  LogRepaired: 1,
  LookupRequested: 1,
  LayerFound: 1,
  LayerMissing: 1,
  PoolProbed: 1,
  LinkRefused: 1,
  LayerLinked: 1,
  PullRequested: 1,
  ManifestResolved: 1,
  BlobFetched: 1,
  LayerExtracted: 1,
  LayerCommitted: 2, // v1 had no `source`: every v1 commit was a pull
  RefIndexed: 1,
  RefRemoved: 1,
  PullCompleted: 1,
  PullFailed: 1,
  LayerRemoved: 1,
  LayerAcquired: 1,
  LayerReleased: 1,
  StaleUsesReleased: 1,
  TocIgnored: 1,
  LayerServedLazily: 1,
  LazyChunksFetched: 1,
  LazyReadFailed: 1,
}

/** Who wrote an event, when, and as part of which workflow run. */
export const Envelope = Schema.Struct({
  id: Schema.String,
  /** epoch milliseconds */
  time: Schema.Number,
  host: Schema.String,
  pid: Schema.Number,
  workflow: Schema.String,
  /** the shape version of `event` as written */
  v: Schema.Number,
})
export type Envelope = typeof Envelope.Type

export interface Recorded {
  readonly envelope: Envelope
  readonly event: Event
}
