/**
 * `als pull`: for every layer of an image, cheapest first: lookup → pool probe → link →
 * pull (download, verify, extract, commit). Layers run in parallel; every step is an event;
 * a failure is an event too, and leaves nothing half-made in the store.
 */
import { Clock, Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { Digest } from "../domain/Digest.ts"
import type { LayerDescriptor, VerifiedLayer } from "../domain/LayerDescriptor.ts"
import { formatPlatform, type Platform } from "../domain/Platform.ts"
import type { FailureReason } from "../events/Events.ts"
import { LogIoError } from "../events/LogErrors.ts"
import { LayerIoError, LayerRejected } from "../extract/errors.ts"
import { RegistryError } from "../registry/RegistryError.ts"
import { SourceError } from "../sources/SourceError.ts"
import { Journal, Reporter } from "../events/Journal.ts"
import { ingestLayer } from "../extract/LayerIngest.ts"
import type { Pool } from "../pool/Pool.ts"
import { saveBlob } from "../store/BlobFile.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { StoreConfig } from "../store/StoreConfig.ts"
import { type ImageSource, type ImageSourceError, manifestResolved, type SourceImage } from "./ImageSource.ts"
import { lookupLayer } from "./Lookup.ts"
import { resumableBlob } from "./ResumableBlob.ts"
import { withLayerLock } from "../store/LayerLock.ts"
import { acquirePin, type Pin } from "../store/Pins.ts"

export interface PullOptions {
  readonly platform: Platform
  readonly pools: ReadonlyArray<Pool>
  /** layers fetched at once */
  readonly jobs: number
}

/** A layer's failure, naming the layer (the cause says what went wrong). */
export class LayerFailure extends Data.TaggedError("LayerFailure")<{ readonly layer: Digest; readonly cause: unknown }> {
  override get message() {
    const m = (this.cause as Error)?.message ?? String(this.cause)
    return m.includes(this.layer) ? m : `layer ${this.layer}: ${m}`
  }
}

/** A pull that failed: which image, which layer, and the underlying error. */
export class PullError extends Data.TaggedError("PullError")<{ readonly ref: string; readonly cause: unknown }> {
  override get message() {
    const m = (this.cause as Error)?.message ?? String(this.cause)
    return m.includes(this.ref) ? m : `${this.ref}: ${m}`
  }
}

/**
 * The failures that carry a closed code of their own (the sources', ingest's, the log's): the
 * code `als log --stats` counts them by. A store I/O error is counted as one kind, whatever errno.
 */
export type CodedFailure = ImageSourceError | LayerRejected | LayerIoError | LogIoError

const coded = (e: unknown): e is CodedFailure =>
  e instanceof RegistryError || e instanceof SourceError || e instanceof LayerRejected || e instanceof LayerIoError ||
  e instanceof LogIoError

/** One line for the log and the user: a code for `als log --stats`, and the message. */
export const failureReason = (e: unknown): FailureReason => {
  const err = e instanceof LayerFailure ? e.cause : e
  if (coded(err)) return { code: err.code, message: err.message }
  if (!(err instanceof Error)) return { code: "Unknown", message: String(e) }
  // any other typed error (StoreIoError among them) by its tag; an error from node by its errno name
  const tag = (err as { readonly _tag?: unknown })._tag
  const errno = (err as NodeJS.ErrnoException).code
  return { code: typeof tag === "string" ? tag : errno || "Unknown", message: err.message }
}

interface Tally {
  found: number
  linked: number
  pulled: number
  bytes: number
}

export const pullImage = Effect.fn("pullImage")(function*(source: ImageSource, opts: PullOptions) {
  const journal = yield* Journal
  const started = yield* Clock.currentTimeMillis
  const name = source.name

  const run = Effect.gen(function*() {
    yield* journal.emit({ _tag: "PullRequested", ref: name, platform: formatPlatform(opts.platform) })
    const image = yield* source.resolve(opts.platform)
    yield* journal.emit(manifestResolved(name, image))
    const tally: Tally = { found: 0, linked: 0, pulled: 0, bytes: 0 }
    // held until the refs name the layers: gc keeps what a live pin names (store/Pins.ts)
    const pin = yield* acquirePin((yield* LayerStore).paths.alsDir)
    const keys = yield* Effect.forEach(
      image.layers,
      (layer) => layerChain(source, layer, opts, tally, pin),
      { concurrency: Math.max(1, opts.jobs) },
    )
    yield* indexImage([name, ...source.aliases(image)], keys)
    const ms = (yield* Clock.currentTimeMillis) - started
    yield* journal.emit({
      _tag: "PullCompleted",
      ref: name,
      manifestDigest: image.manifestDigest,
      found: tally.found,
      linked: tally.linked,
      pulled: tally.pulled,
      bytesFetched: tally.bytes,
      ms,
    })
    return { ref: name, manifestDigest: image.manifestDigest, ...tally, ms }
  })

  return yield* run.pipe(
    Effect.scoped,
    Effect.tapError((e) =>
      journal.emit({
        _tag: "PullFailed",
        ref: name,
        ...(e instanceof LayerFailure ? { layer: e.layer } : {}),
        reason: failureReason(e),
      }).pipe(Effect.ignore)
    ),
    // SIGINT/SIGTERM (bin/als.ts interrupts the command): the log says the pull ended, and why
    Effect.onInterrupt(() =>
      journal.emit({
        _tag: "PullFailed",
        ref: name,
        reason: { code: "interrupted", message: "interrupted by a signal (SIGINT or SIGTERM) before it finished" },
      }).pipe(Effect.ignore)
    ),
    Effect.mapError((e) => new PullError({ ref: source.display, cause: e })),
  )
})


/** Which names this layer must answer to: its blob digest, and its TOC digest when verified. */
export interface LayerKeys {
  readonly blobDigest: Digest
  readonly tocDigest?: Digest | undefined
}

const layerChain = (source: ImageSource, layer: LayerDescriptor, opts: PullOptions, tally: Tally, pin?: Pin) =>
  Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    // under the layer lock, before the layer can be found or committed: gc cannot slip in between
    if (pin) yield* pin.add(layer.digest)
    const fetchBlob = (digest: Digest) =>
      Effect.gen(function*() {
        const t0 = yield* Clock.currentTimeMillis
        const body = yield* resumableBlob(digest, layer.size, (offset) => source.blob(digest, { offset }))
        const file = yield* store.stagingFile(digest, "blob")
        yield* saveBlob(body, file, digest, layer.size)
        tally.bytes += layer.size
        const ms = (yield* Clock.currentTimeMillis) - t0
        yield* journal.emit({ _tag: "BlobFetched", layer: digest, bytes: layer.size, ms })
        return file
      })
    const found = yield* lookupLayer({
      digest: layer.digest,
      ref: source.name,
      annotations: layer.annotations,
      pools: opts.pools,
      layer,
      fetchBlob,
      indexRef: false,
      canPull: true,
    })
    if (found._tag === "Found") {
      tally.found++
      return { blobDigest: layer.digest, tocDigest: found.tocDigest } satisfies LayerKeys
    }
    if (found._tag === "Linked") {
      tally.linked++
      return { blobDigest: layer.digest, tocDigest: found.tocDigest } satisfies LayerKeys
    }
    // the plan is Pull: with an image to pull from, lookup never answers Missing
    const facts = yield* pullLayer(source, layer, tally)
    tally.pulled++
    return { blobDigest: layer.digest, tocDigest: facts.tocDigest } satisfies LayerKeys
  }).pipe(
    // one process per layer: others wait here, then find it committed
    (chain) => Effect.flatMap(LayerStore, (store) => withLayerLock(store.paths.locks, layer.digest, chain)),
    Effect.mapError((e) => new LayerFailure({ layer: layer.digest, cause: e })),
  )

/**
 * One layer of a resolved image through lookup → pool → link → pull, under its layer lock:
 * the entry point `als serve` takes when a client looks up a layer the store lacks. Pass a
 * `pin` (store/Pins.ts acquirePin) held until the layer is named by a ref, or gc may remove it
 * in between.
 */
export const acquireLayer = (source: ImageSource, layer: LayerDescriptor, opts: PullOptions, pin?: Pin) =>
  layerChain(source, layer, opts, { found: 0, linked: 0, pulled: 0, bytes: 0 }, pin)

/**
 * Names a layer acquireLayer brought in under `ref` (on disk and in the log), as `als serve`
 * does next; RefIndexed lists every layer of the image the store holds by then.
 */
export const indexAcquired = (ref: string, image: SourceImage, keys: LayerKeys) =>
  Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    const entries = [{ key: keys.blobDigest, blobDigest: keys.blobDigest }]
    if (keys.tocDigest) entries.push({ key: keys.tocDigest, blobDigest: keys.blobDigest })
    if ((yield* store.indexRef(ref, entries)) === 0) return
    const held: Digest[] = []
    for (const l of image.layers) if (yield* store.find(l.digest)) held.push(l.digest)
    yield* journal.emit({ _tag: "RefIndexed", ref, layers: held })
  })

/** Download → verify → extract into staging → commit. The staging dir goes when the scope closes. */
const pullLayer = (source: ImageSource, layer: LayerDescriptor, tally: Tally) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    const reporter = yield* Reporter
    const { opaqueXattr } = yield* StoreConfig
    const dir = yield* store.stage(layer.digest)
    const diffDir = path.join(dir, "diff")
    yield* Effect.promise(() => fs.mkdir(diffDir, 0o755).then(() => fs.chmod(diffDir, 0o755)))
    const t0 = yield* Clock.currentTimeMillis
    const body = yield* resumableBlob(layer.digest, layer.size, (offset) => source.blob(layer.digest, { offset }))
    const result = yield* ingestLayer({
      ...layer,
      source: body,
      blobPath: path.join(dir, "blob"),
      diffDir,
      opaqueXattr,
      onBytes: (n) => reporter.progress?.(layer.digest, n),
    })
    const ms = (yield* Clock.currentTimeMillis) - t0
    tally.bytes += result.size
    // a checked TOC digest whose name another layer holds is no name of this one
    const tocTaken = result.tocDigest === undefined ? undefined : store.aliasTaken(result.tocDigest, layer.digest)
    if (tocTaken !== undefined) {
      yield* journal.emit({ _tag: "TocIgnored", layer: layer.digest, tocDigest: result.tocDigest!, from: "alias", reason: tocTaken })
    }
    const tocDigest = tocTaken === undefined ? result.tocDigest : undefined
    // what ingest proved is what the store commits, less a TOC name that is not this layer's
    const facts: VerifiedLayer = { ...result, tocDigest }
    yield* journal.emitAll([
      { _tag: "BlobFetched", layer: layer.digest, bytes: result.size, ms },
      { _tag: "LayerExtracted", layer: layer.digest, diffId: result.diffId, files: result.files, bytes: result.bytes },
    ])
    yield* store.commit(dir, facts, {
      announce: journal.emit({
        _tag: "LayerCommitted",
        layer: layer.digest,
        diffId: result.diffId,
        diffSize: result.diffSize,
        blobSize: result.size,
        ...(tocDigest ? { tocDigest } : {}),
        source: "pull",
      }),
      retract: (why) =>
        journal.emit({ _tag: "LayerRemoved", layer: layer.digest, reason: `commit failed: ${why}` }).pipe(Effect.ignore),
    })
    return facts
  }))

/** The `:ref` views podman will look in, each naming every layer under all its keys. */
const indexImage = (names: ReadonlyArray<string>, keys: ReadonlyArray<LayerKeys>) =>
  Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    const entries = keys.flatMap((k) => [
      { key: k.blobDigest, blobDigest: k.blobDigest },
      ...(k.tocDigest ? [{ key: k.tocDigest, blobDigest: k.blobDigest }] : []),
    ])
    for (const n of new Set(names)) {
      const r = yield* store.indexRefReport(n, entries)
      for (const x of r.refused) {
        yield* journal.emit({ _tag: "TocIgnored", layer: x.blobDigest, tocDigest: x.key, from: `the :ref view of ${n}`, reason: x.reason })
      }
      yield* journal.emit({ _tag: "RefIndexed", ref: n, layers: keys.map((k) => k.blobDigest) })
    }
  })
