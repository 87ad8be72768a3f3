/**
 * The control plane behind a LOOKUP: which layer directory of the store a `(ref, key)` names,
 * getting the layer first when the store lacks it (lookup → pool → link → pull, the pull
 * workflow's own per-layer chain).
 *
 * - A layer already in the store is answered from the disk alone; its events are written
 *   after the answer, so a lookup costs a few stats, not a log append.
 * - A missing layer: the ref's manifest is resolved for the platform (kept briefly, shared by
 *   the lookups of one image's layers), the layer whose blob digest or TOC digest is the key
 *   is found, and it is acquired. One acquisition per layer at a time, shared by every waiting
 *   lookup; different layers in parallel, at most `jobs` at once.
 * - A waiter gives up after `timeoutMs` (the LOOKUP is answered ENOENT and the client pulls by
 *   itself); the acquisition goes on, so the next lookup finds the layer. A failure is an event
 *   (PullFailed with the layer) and is never remembered: the next lookup tries again.
 */
import { Cause, Data, Effect, Fiber, Runtime } from "effect"
import * as fsSync from "node:fs"
import * as path from "node:path"
import type { Digest } from "../domain/Digest.ts"
import { formatPlatform, type Platform } from "../domain/Platform.ts"
import type { Event } from "../events/Events.ts"
import { Journal, type Reporter } from "../events/Journal.ts"
import type { StoreConfig } from "../store/StoreConfig.ts"
import type { Syscalls } from "../sys/Syscalls.ts"
import type { Pool } from "../pool/Pool.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { acquirePin } from "../store/Pins.ts"
import { type ImageSource, manifestResolved, type SourceImage } from "../workflows/ImageSource.ts"
import { configuredRegistrySource } from "../config/ConfiguredSource.ts"
import { decide } from "../workflows/Decide.ts"
import { lookupLayer } from "../workflows/Lookup.ts"
import { acquireLayer, failureReason, indexAcquired } from "../workflows/Pull.ts"
import { LAYER_ENTRIES } from "../domain/StorePaths.ts"
import type { RegistryClient } from "../registry/RegistryClient.ts"

export interface ResolverOptions {
  readonly platform: Platform
  readonly pools: ReadonlyArray<Pool>
  /** layers acquired at once */
  readonly jobs: number
  /** how long a lookup waits for its layer before answering "not here" */
  readonly timeoutMs: number
  /** how long a resolved manifest is reused for further layers of the same ref */
  readonly manifestTtlMs?: number
}

export interface LayerRequest {
  readonly key: Digest
  readonly ref?: string | undefined
  readonly annotations?: Readonly<Record<string, string>> | undefined
}

/** A layer the store holds: its real directory (`<root>/<blob digest>`) and blob digest. */
export interface ServedLayer {
  readonly dir: string
  readonly layer: Digest
}

export class LayerNotInImage extends Data.TaggedError("LayerNotInImage")<{ readonly ref: string; readonly key: Digest }> {
  override get message() {
    return `no layer of ${this.ref} has the digest or TOC digest ${this.key}`
  }
}

type Services = LayerStore | Journal | RegistryClient | Reporter | StoreConfig | Syscalls

/** The error a failed Runtime.runPromise carries, as the effect failed with it. */
const unwrap = (e: unknown): unknown => (Runtime.isFiberFailure(e) ? Cause.squash(e[Runtime.FiberFailureCauseId]) : e)

/** stat that follows links, as containers/storage checks a layer's entries. */
/** How long answered lookups' events may wait to be written together. */
const BATCH_MS = 200

const exists = (p: string) => {
  try {
    fsSync.statSync(p)
    return true
  } catch {
    return false
  }
}

export const makeResolver = (opts: ResolverOptions) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<Services>()
    const store = yield* LayerStore
    const journal = yield* Journal
    const run = Runtime.runPromise(runtime)
    const jobs = yield* Effect.makeSemaphore(Math.max(1, opts.jobs))
    const manifestTtl = opts.manifestTtlMs ?? 30_000

    /**
     * What the store shows under `key` right now, complete, with its real directory. Four
     * synchronous syscalls on the store's disk (never on our own mount): cheaper than four
     * trips through the thread pool, on the path of every lookup.
     */
    const storedNow = (key: Digest): ServedLayer | undefined => {
      const dir = store.paths.layer(key)
      if (!LAYER_ENTRIES.every((e) => exists(path.join(dir, e)))) return undefined
      let real: string
      try {
        // a TOC alias is a symlink to the blob digest's directory: serve the real one
        real = fsSync.realpathSync(dir)
      } catch {
        return undefined
      }
      if (path.dirname(real) !== store.paths.root) return undefined
      return { dir: real, layer: path.basename(real) as Digest }
    }
    const stored = async (key: Digest): Promise<ServedLayer | undefined> => storedNow(key)

    // events written after the answer, one after another, never failing the caller
    let background: Promise<unknown> = Promise.resolve()
    const later = (effect: Effect.Effect<unknown, unknown, Services>) => {
      background = background.then(() => run(Effect.ignore(effect)))
    }
    // Events of answered lookups and use counts, and the `:ref` entries of found layers, are
    // written in batches at most every BATCH_MS: a log append syncs the log on this thread
    // (milliseconds of a busy disk), which would otherwise sit between every two answers.
    let pending: Event[] = []
    const refEntries = new Map<string, Map<Digest, Digest>>()
    let timer: ReturnType<typeof setTimeout> | undefined
    const flushBatch = () => {
      timer = undefined
      const batch = pending
      const refs = [...refEntries]
      pending = []
      refEntries.clear()
      later(Effect.gen(function*() {
        if (batch.length > 0) yield* journal.emitAll(batch)
        for (const [ref, keys] of refs) {
          const entries = [...keys].map(([key, blobDigest]) => ({ key, blobDigest }))
          if ((yield* store.indexRef(ref, entries)) > 0) {
            yield* journal.emit({ _tag: "RefIndexed", ref, layers: [...new Set(keys.values())] })
          }
        }
      }))
    }
    const schedule = () => {
      timer ??= setTimeout(flushBatch, BATCH_MS)
    }
    const record = (events: ReadonlyArray<Event>) => {
      pending.push(...events)
      schedule()
    }
    const indexLater = (ref: string, key: Digest, layer: Digest) => {
      const m = refEntries.get(ref) ?? new Map<Digest, Digest>()
      m.set(key, layer)
      refEntries.set(ref, m)
      schedule()
    }

    const manifests = new Map<string, { readonly at: number; readonly image: Promise<{ source: ImageSource; image: SourceImage }> }>()
    const resolveImage = (ref: string, now: number) => {
      const cached = manifests.get(ref)
      if (cached && now - cached.at < manifestTtl) return cached.image
      const image = run(journal.workflow(Effect.gen(function*() {
        // mirrors and rewriting from registries.conf; the name stays the one podman asked for
        const source = yield* configuredRegistrySource(ref)
        const image = yield* source.resolve(opts.platform)
        yield* journal.emit(manifestResolved(source.name, image))
        return { source, image }
      })))
      manifests.set(ref, { at: now, image })
      image.catch(() => manifests.delete(ref))
      return image
    }

    const inflight = new Map<string, Promise<ServedLayer | undefined>>()

    // acquisitions running now, to let them finish or interrupt them when serve stops
    const fibers = new Map<string, Fiber.RuntimeFiber<ServedLayer | undefined, unknown>>()
    let stopping = false

    const acquire = (ref: string, key: Digest): Promise<ServedLayer | undefined> => {
      const running = inflight.get(key)
      if (running) return running
      if (stopping) return Promise.resolve(undefined)
      const fiber = Runtime.runFork(runtime)(journal.workflow(Effect.gen(function*() {
        const { source, image } = yield* Effect.tryPromise({ try: () => resolveImage(ref, Date.now()), catch: unwrap })
        const layer = image.layers.find((l) => l.digest === key || l.tocDigest === key)
        if (!layer) return yield* new LayerNotInImage({ ref, key })
        yield* journal.emit({ _tag: "PullRequested", ref, platform: formatPlatform(opts.platform) })
        // pinned (under the layer lock) until the ref names it: gc keeps what a live pin names
        const keys = yield* Effect.scoped(Effect.gen(function*() {
          const pin = yield* acquirePin(store.paths.alsDir)
          const keys = yield* jobs.withPermits(1)(acquireLayer(source, layer, { platform: opts.platform, pools: opts.pools, jobs: 1 }, pin))
          yield* indexAcquired(ref, image, keys)
          return keys
        }))
        return yield* Effect.promise(() => stored(keys.blobDigest))
      }).pipe(
        // every failure is an event: the manifest, the layer's absence, the pull
        Effect.tapError((e) => journal.emit({ _tag: "PullFailed", ref, layer: key, reason: failureReason(e) }).pipe(Effect.ignore)),
        // serve stopped (SIGTERM/SIGINT) first: the pull's scopes removed its staging, lock and pin
        Effect.onInterrupt(() =>
          journal.emit({
            _tag: "PullFailed",
            ref,
            layer: key,
            reason: { code: "interrupted", message: "als serve was stopped (SIGTERM or SIGINT) before the layer was in the store" },
          }).pipe(Effect.ignore)
        ),
      )))
      fibers.set(key, fiber)
      fiber.addObserver(() => {
        if (fibers.get(key) === fiber) fibers.delete(key)
      })
      const p = Effect.runPromise(Fiber.join(fiber))
      inflight.set(key, p)
      const done = () => {
        if (inflight.get(key) === p) inflight.delete(key)
      }
      p.then(done, done)
      return p
    }

    const withDeadline = <A>(p: Promise<A>): Promise<A | undefined> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), opts.timeoutMs)
        p.then(
          (v) => {
            clearTimeout(timer)
            resolve(v)
          },
          () => {
            clearTimeout(timer)
            resolve(undefined)
          },
        )
      })

    /**
     * The layer `req` names, getting it when the store lacks it; undefined when it cannot be
     * had (not in the image, a failed pull, past the deadline). Never rejects.
     *
     * The way is `decide`'s (workflows/Decide.ts), as for `als pull`: stored → answered from the
     * disk; else the pools, then, with a ref to resolve, the image. A lookup with a ref (and no
     * annotations) goes to the image's chain at once: its lookup asks the pools knowing the
     * layer's descriptor, then pulls (Pull.ts acquireLayer). Without a ref, or on the seed's
     * annotation path, the pools are asked first (Lookup.ts), and the image only when that
     * lookup's plan is Pull, or it outlasted the deadline.
     */
    const resolve = async (req: LayerRequest): Promise<ServedLayer | undefined> => {
      const have = storedNow(req.key)
      const canPull = req.ref !== undefined
      const plan = decide({ digest: req.key, stored: have?.dir, answers: [], pools: opts.pools.length, canFetchBlob: false, canPull })
      if (plan._tag === "UseStored" && have !== undefined) {
        record([
          { _tag: "LookupRequested", layer: req.key, ...(req.ref !== undefined ? { ref: req.ref } : {}) },
          { _tag: "LayerFound", layer: req.key, path: have.dir },
        ])
        if (req.ref !== undefined) indexLater(req.ref, req.key, have.layer)
        return have
      }
      if (req.ref === undefined || req.annotations !== undefined) {
        const found = await withDeadline(run(journal.workflow(lookupLayer({
          digest: req.key,
          ref: req.ref,
          annotations: req.annotations ?? {},
          pools: opts.pools,
          canPull,
        }))))
        if (found?._tag === "Found" || found?._tag === "Linked") return stored(req.key)
        if (found?._tag === "Missing" || req.ref === undefined) return undefined
      }
      return withDeadline(acquire(req.ref, req.key))
    }

    /** Use counts, as events (written after the answer). */
    const used = (tag: "LayerAcquired" | "LayerReleased", layer: ServedLayer, key: Digest, ref: string | undefined, pid: number) =>
      record([{ _tag: tag, layer: layer.layer, key, ...(ref !== undefined ? { ref } : {}), clientPid: pid }])

    /** Writes every event queued so far; resolves once they are in the log. */
    const flush = () => {
      if (timer !== undefined) {
        clearTimeout(timer)
        flushBatch()
      }
      return background.then(() => undefined)
    }

    /**
     * Serve is stopping: no new acquisition starts (a lookup of a missing layer is answered "not
     * here" at once); those running get `graceMs` to finish, then are interrupted and awaited
     * (their staging, locks and pins are released, PullFailed "interrupted" is logged).
     */
    const stop = async (graceMs: number): Promise<{ readonly finished: number; readonly interrupted: number }> => {
      stopping = true
      const running = [...fibers.values()]
      if (running.length === 0) return { finished: 0, interrupted: 0 }
      const settled = Promise.allSettled(running.map((f) => Effect.runPromise(Fiber.await(f))))
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([settled, new Promise((r) => (timer = setTimeout(r, graceMs)))])
      clearTimeout(timer)
      const left = [...fibers.values()]
      if (left.length > 0) await Effect.runPromise(Fiber.interruptAll(left))
      return { finished: running.length - left.length, interrupted: left.length }
    }

    return { resolve, stored, used, flush, stop } as const
  })

export type Resolver = Effect.Effect.Success<ReturnType<typeof makeResolver>>
