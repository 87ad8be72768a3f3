/**
 * `als serve` (lazy by default; `--lazy=false` leaves it out): the layer supply in front of the resolver. A lookup of a layer the store
 * lacks, under a ref, whose descriptor carries a TOC annotation (zstd:chunked, eStargz) is
 * answered as soon as the TOC is fetched by range and verified against the TOC digest: the
 * layer directory then serves `diff` from the TOC (LazyFs.ts). Meanwhile the ordinary pull of
 * the layer (acquireLayer, as the resolver runs it: pools, fetch, verify digest and DiffID,
 * commit, under the layer lock and a pin) runs in the background, after `completionDelayMs` and
 * after the image's prefetch list (eStargz's landmark; Prefetch.ts) is in the chunk cache. Its
 * blob is the bytes already fetched (the TOC, every chunk read: PartialBlob.ts keeps them at
 * their offsets) plus the rest, fetched with bounded Range requests, so the blob crosses the
 * network about once; the pull checks it whole (digest, DiffID) as any pull does, and should
 * the kept bytes not be the registry's it pulls the whole blob once more. Once committed, new
 * lookups get the store's layer as always. A failed completion (a DiffID mismatch, a registry
 * gone) drops the lazy layer: the next lookup goes to the resolver, which answers ENOENT if the
 * pull fails again. Serve stopping interrupts completions (staging, lock and pin released).
 * Everything else (layers in the store, no TOC, no ref) is the resolver's.
 */
import { Effect, Exit, Fiber, Runtime, type Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Digest } from "../domain/Digest.ts"
import { layerInfoJson } from "../domain/LayerInfo.ts"
import { formatPlatform, type Platform } from "../domain/Platform.ts"
import { Journal } from "../events/Journal.ts"
import type { Event } from "../events/Events.ts"
import { LayerRejected } from "../extract/errors.ts"
import type { Pool } from "../pool/Pool.ts"
import type { LayerRequest, Resolver, ServedLayer } from "../serve/Resolver.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { acquirePin } from "../store/Pins.ts"
import { StoreConfig } from "../store/StoreConfig.ts"
import { configuredRegistrySource } from "../config/ConfiguredSource.ts"
import { tocExpectation } from "../verify/Toc.ts"
import type { ImageSource, SourceImage } from "../workflows/ImageSource.ts"
import { acquireLayer, failureReason, indexAcquired, LayerFailure } from "../workflows/Pull.ts"
import type { LayerDescriptor } from "../domain/LayerDescriptor.ts"
import { makeChunkReader, type RangeSource } from "./Chunks.ts"
import { makePartialBlob, type PartialBlob } from "./PartialBlob.ts"
import { prefetchFiles } from "./Prefetch.ts"
import type { LazyLayer } from "./LazyFs.ts"
import { fetchTarSize, fetchToc, tarSplitRange } from "./TocFetch.ts"

export interface LazyOptions {
  readonly platform: Platform
  /** a read (or the TOC's fetch) that takes longer fails with EIO */
  readonly timeoutMs: number
  /** how long after a layer is served lazily its background pull starts */
  readonly completionDelayMs: number
  /** how often fetched-chunk counts are logged per layer (aggregated) */
  readonly statsEveryMs?: number
  /** pools the background pull may link a layer from, as the resolver's (default none) */
  readonly pools?: ReadonlyArray<Pool>
  /** background pulls at once (default 1) */
  readonly jobs?: number
}

const ESTARGZ_UNCOMPRESSED_SIZE = "io.containers.estargz.uncompressed-size"

type Served = ServedLayer & { readonly lazy?: LazyLayer }

/**
 * Ranges of one blob from the image's source: a bounded request for exactly [offset, offset+length),
 * read to `length` (a source that sends more is cut there), then dropped.
 */
const sourceRanges = (run: <A>(e: Effect.Effect<A, unknown, never>) => Promise<A>, source: ImageSource, digest: Digest): RangeSource => ({
  read: async (offset, length) => {
    const blob = await run(source.blob(digest, { offset, length }))
    const out = new Uint8Array(length)
    let got = 0
    for await (const chunk of blob.body) {
      const n = Math.min(chunk.length, length - got)
      out.set(chunk.subarray(0, n), got)
      got += n
      if (got >= length) break // leaving the loop cancels the rest of the body
    }
    return out.subarray(0, got)
  },
})

const withDeadline = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms)
    p.then((v) => (clearTimeout(t), resolve(v)), (e) => (clearTimeout(t), reject(e)))
  })

/** The pull failed on the blob's own bytes (digest or size): kept bytes may be at fault. */
const blobMismatch = (e: unknown): boolean => {
  const cause = e instanceof LayerFailure ? e.cause : e
  return cause instanceof LayerRejected && (cause.code === "BlobDigestMismatch" || cause.code === "BlobSizeMismatch")
}

type Services =
  | Effect.Effect.Context<ReturnType<typeof configuredRegistrySource>>
  | Exclude<Effect.Effect.Context<ReturnType<typeof acquireLayer>>, Scope.Scope>
  | Journal

export const makeLazySupply = (resolver: Resolver, opts: LazyOptions) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<Services>()
    const run = Runtime.runPromise(runtime)
    const journal = yield* Journal
    const store = yield* LayerStore
    const config = yield* StoreConfig
    const cacheRoot = path.join(store.paths.alsDir, "cache", "lazy")
    const jobs = yield* Effect.makeSemaphore(Math.max(1, opts.jobs ?? 1))

    // background pulls running now: serve stopping interrupts them (their scopes release staging, lock, pin)
    const completions = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
    let stopping = false
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        stopping = true
        return Fiber.interruptAll([...completions])
      })
    )

    /** The layer's ordinary pull, on the bytes already fetched plus the rest; the whole blob again if they were wrong. */
    const completeLayer = (ref: string, source: ImageSource, image: SourceImage, layer: LayerDescriptor, partial: PartialBlob) => {
      const pull = (from: ImageSource) =>
        Effect.scoped(Effect.gen(function*() {
          // pinned (under the layer lock) until the ref names it: gc keeps what a live pin names
          const pin = yield* acquirePin(store.paths.alsDir)
          const keys = yield* jobs.withPermits(1)(acquireLayer(from, layer, { platform: opts.platform, pools: opts.pools ?? [], jobs: 1 }, pin))
          yield* indexAcquired(ref, image, keys)
          return keys
        }))
      return journal.workflow(Effect.gen(function*() {
        yield* journal.emit({ _tag: "PullRequested", ref, platform: formatPlatform(opts.platform) })
        return yield* pull(partial.completionSource(source)).pipe(
          Effect.catchIf(blobMismatch, (e) =>
            Effect.suspend(() => {
              partial.remove()
              return journal.emit({
                _tag: "LazyReadFailed",
                layer: layer.digest,
                file: "",
                corrupt: true,
                reason: `the bytes kept while the layer was served did not make its blob (${failureReason(e).message}); the whole blob is fetched again`,
              }).pipe(Effect.ignore, Effect.zipRight(pull(source)))
            })),
        )
      }).pipe(
        Effect.tapError((e) => journal.emit({ _tag: "PullFailed", ref, layer: layer.digest, reason: failureReason(e) }).pipe(Effect.ignore)),
        Effect.onInterrupt(() =>
          journal.emit({
            _tag: "PullFailed",
            ref,
            layer: layer.digest,
            reason: { code: "interrupted", message: "als serve was stopped (SIGTERM or SIGINT) before the layer was in the store" },
          }).pipe(Effect.ignore)
        ),
      ))
    }

    const emit = (events: ReadonlyArray<Event>) => void run(Effect.ignore(journal.emitAll(events))).catch(() => {})

    /** lazily served layers by every key they were asked under (blob digest, TOC digest) */
    const serving = new Map<string, Promise<Served | undefined>>()
    /** layers whose background pull failed: never served lazily again by this process */
    const bad = new Set<string>()
    const images = new Map<string, { at: number; p: Promise<{ source: ImageSource; image: SourceImage }> }>()

    const imageOf = (ref: string) => {
      const hit = images.get(ref)
      if (hit && Date.now() - hit.at < 30_000) return hit.p
      const p = run(Effect.gen(function*() {
        const source = yield* configuredRegistrySource(ref)
        const image = yield* source.resolve(opts.platform)
        return { source, image }
      }) as Effect.Effect<{ source: ImageSource; image: SourceImage }, unknown, never>)
      images.set(ref, { at: Date.now(), p })
      p.catch(() => images.delete(ref))
      return p
    }

    const startLazy = async (req: LayerRequest & { ref: string }, source: ImageSource, image: SourceImage, layer: LayerDescriptor): Promise<Served | undefined> => {
      const toc = tocExpectation(layer.digest, layer.annotations)
      if (!toc) return undefined
      const ranges = sourceRanges(run as never, source, layer.digest)
      const cacheDir = path.join(cacheRoot, layer.digest.replace(":", "-"))
      fs.mkdirSync(cacheDir, { recursive: true, mode: 0o700 })
      // every byte fetched for the layer is kept for its completion (PartialBlob.ts)
      const partial = makePartialBlob(path.join(cacheDir, "blob.partial"), layer.digest, layer.size, { timeoutMs: opts.timeoutMs })
      const keeping: RangeSource = {
        read: async (offset, length) => {
          const bytes = await ranges.read(offset, length)
          partial.keep(offset, bytes)
          return bytes
        },
      }
      let fetched: Awaited<ReturnType<typeof fetchToc>>
      let diffSize: number | undefined
      try {
        fetched = await withDeadline(fetchToc(keeping, layer.size, toc), opts.timeoutMs, "the TOC")
        // the tar's size for `info` (podman 4 needs it): zstd:chunked's verified tar-split, or an eStargz
        // annotation (checked only when the layer completes)
        diffSize = fetched.model.format === "zstd:chunked"
          ? await withDeadline(fetchTarSize(keeping, layer.size, fetched.model, tarSplitRange(layer.annotations)), opts.timeoutMs, "the tar-split")
          : /^\d{1,15}$/.test(layer.annotations[ESTARGZ_UNCOMPRESSED_SIZE] ?? "") ? Number(layer.annotations[ESTARGZ_UNCOMPRESSED_SIZE]) : undefined
      } catch (e) {
        partial.remove()
        throw e
      }
      // chunks are kept once checked (Chunks.ts): a chunk that fails its check is never kept
      const reader = makeChunkReader(fetched.model.format, ranges, cacheDir, { keep: partial.keep })
      const dir = store.paths.layer(layer.digest)

      // the background pull: the resolver's own acquisition, shared with any plain lookup
      let settle!: (file: string | undefined) => void
      let isComplete = false
      const completed = new Promise<string | undefined>((r) => (settle = r))
      completed.then(() => (isComplete = true))
      const keys = [layer.digest, fetched.digest, req.key]
      // the files of the image's prefetch list (eStargz) come first, into the chunk cache, at once
      const prefetched = prefetchFiles(reader, fetched.model.prefetch, () => isComplete)
      setTimeout(() => {
        void (async () => {
          await prefetched
          if (stopping) return settle(undefined)
          const fiber = Runtime.runFork(runtime)(completeLayer(req.ref, source, image, layer, partial))
          completions.add(fiber)
          fiber.addObserver(() => completions.delete(fiber))
          const exit = await Effect.runPromise(Fiber.await(fiber))
          const got = Exit.isSuccess(exit) ? await resolver.stored(exit.value.blobDigest) : undefined
          settle(got ? path.join(got.dir, "blob") : undefined)
        })().catch(() => settle(undefined))
      }, opts.completionDelayMs)
      completed.then((file) => {
        flushStats()
        clearInterval(statsTimer)
        partial.remove()
        // the committed tree serves complete files from now on (LazyFs.ts)
        if (file) reader.dropCopies()
        // done either way: the store's layer (or, after a failure, the resolver's ENOENT) from now on
        for (const k of keys) serving.delete(k)
        if (!file) for (const k of keys) bad.add(k)
        if (!file && !stopping) emit([{ _tag: "LazyReadFailed", layer: layer.digest, file: "", corrupt: false, reason: "the background pull of the layer failed; it is no longer served lazily" }])
      })

      let last = { fetched: 0, bytes: 0, cached: 0 }
      const flushStats = () => {
        const s = reader.stats
        const d = { chunks: s.fetched - last.fetched, bytes: s.fetchedBytes - last.bytes, cached: s.cached - last.cached }
        if (d.chunks === 0 && d.cached === 0) return
        last = { fetched: s.fetched, bytes: s.fetchedBytes, cached: s.cached }
        emit([{ _tag: "LazyChunksFetched", layer: layer.digest, ...d }])
      }
      const statsTimer = setInterval(flushStats, opts.statsEveryMs ?? 5000)
      statsTimer.unref?.()

      const lazy: LazyLayer = {
        layer: layer.digest,
        model: fetched.model,
        reader,
        info: new TextEncoder().encode(JSON.stringify(layerInfoJson({
          digest: layer.digest,
          size: layer.size,
          diffId: layer.diffId,
          diffSize: diffSize ?? -1,
          compression: fetched.model.format === "estargz" ? "gzip" : "zstd",
          tocDigest: fetched.digest,
        }))),
        blobSize: layer.size,
        blobFile: () => completed.then((f) => f ?? Promise.reject(new Error("the layer's pull failed"))),
        corrupt: (file, detail) => emit([{ _tag: "LazyReadFailed", layer: layer.digest, file, corrupt: true, reason: detail }]),
        failed: (file, detail) => emit([{ _tag: "LazyReadFailed", layer: layer.digest, file, corrupt: false, reason: detail }]),
        readTimeoutMs: opts.timeoutMs,
        opaqueXattr: config.opaqueXattr,
      }
      emit([
        { _tag: "LookupRequested", layer: req.key, ref: req.ref },
        {
          _tag: "LayerServedLazily",
          layer: layer.digest,
          key: req.key,
          ref: req.ref,
          format: fetched.model.format,
          tocDigest: fetched.digest,
          files: fetched.model.files.length,
          bytes: fetched.model.totalSize,
          tocBytes: fetched.fetchedBytes,
        },
      ])
      const served: Served = { dir, layer: layer.digest, lazy }
      // the same layer under its other names (blob digest, TOC digest), until it is complete
      for (const k of keys) serving.set(k, Promise.resolve(served))
      return served
    }

    const resolve = async (req: LayerRequest): Promise<ServedLayer | undefined> => {
      if (req.ref === undefined || req.annotations !== undefined) return resolver.resolve(req)
      if (bad.has(req.key) || (await resolver.stored(req.key))) return resolver.resolve(req)
      const running = serving.get(req.key)
      if (running) {
        const got = await running.catch(() => undefined)
        if (got) return got
      }
      const ref = req.ref
      const attempt = (async (): Promise<Served | undefined> => {
        const { source, image } = await withDeadline(imageOf(ref), opts.timeoutMs, "the manifest")
        const layer = image.layers.find((l) => l.digest === req.key || l.tocDigest === req.key)
        if (!layer || bad.has(layer.digest)) return undefined
        const other = serving.get(layer.digest)
        if (other && layer.digest !== req.key) return other
        return startLazy({ ...req, ref }, source, image, layer)
      })()
      serving.set(req.key, attempt)
      let got: Served | undefined
      try {
        got = await attempt
      } catch (e) {
        emit([{ _tag: "LazyReadFailed", layer: req.key, file: "", corrupt: false, reason: `not served lazily: ${(e as Error).message}` }])
        got = undefined
      }
      if (!got) {
        serving.delete(req.key)
        return resolver.resolve(req)
      }
      return got
    }

    return { resolve, stored: resolver.stored, used: resolver.used, flush: resolver.flush } as const
  })
