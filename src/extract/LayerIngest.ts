/**
 * One layer's ingest as an Effect: the stream itself (IngestStream.ts) runs in line, or, when
 * asked (ALS_INGEST_THREADS) and the layer is big enough to pay for one, on a worker thread of
 * its own (IngestOffThread.ts).
 * Both paths run the same code on the same bytes; only the thread differs.
 */
import { Effect } from "effect"
import { Syscalls } from "../sys/Syscalls.ts"
import { warmSyncfsThread } from "../sys/SyncfsOffThread.ts"
import { LayerIoError, LayerRejected } from "./errors.ts"
import { ingestOffThread, OFF_THREAD_MIN_BYTES } from "./IngestOffThread.ts"
import { ingestStream, mediaTypeRefusal, type IngestInput, type IngestResult } from "./IngestStream.ts"

export type { IngestInput, IngestResult } from "./IngestStream.ts"

/**
 * Whether a layer's stream should get a thread of its own (while one is free). Off by default:
 * on the 2-core test machine a thread saved ~10% on the 1 GB image but cost 10-17 MiB of peak
 * RSS there (148 MiB of the 150 allowed) and twice the kernel CPU on many-file layers
 * (IngestOffThread.ts, BENCHMARKS.md). ALS_INGEST_THREADS=1 gives one to layers of at least
 * OFF_THREAD_MIN_BYTES, =all to every layer, however small (tests).
 */
const wantsThread = (size: number): boolean => {
  const knob = process.env.ALS_INGEST_THREADS
  return knob === "all" || (knob === "1" && size >= OFF_THREAD_MIN_BYTES)
}

/**
 * Ingests one layer into `blobPath` and `diffDir`, verifying blob size and digest, DiffID and
 * (when annotated) TOC digest.
 *
 * On failure, `diffDir` and `blobPath` may hold partial content: the caller deletes its staging
 * directory (nothing is ever written outside `diffDir` and `blobPath`). On interruption the
 * effect ends only once nothing writes there any more.
 */
export const ingestLayer: (
  input: IngestInput,
) => Effect.Effect<IngestResult, LayerRejected | LayerIoError | SourceFailure, Syscalls> = Effect.fn(
  "LayerIngest.ingestLayer",
)(function*(input: IngestInput) {
  const sys = yield* Syscalls
  const refused = mediaTypeRefusal(input)
  if (refused !== undefined) return yield* Effect.fail(refused)
  // the layer's commit syncs on that thread: have it ready by then
  warmSyncfsThread()
  const onThread = wantsThread(input.size) ? ingestOffThread(input) : undefined
  const run: Effect.Effect<IngestResult, unknown> = onThread !== undefined
    ? Effect.async<IngestResult, unknown>((resume) => {
      onThread.result.then((r) => resume(Effect.succeed(r)), (e) => resume(Effect.fail(e)))
      // an interruption ends only once the thread wrote its last byte into staging
      return Effect.promise(onThread.stop)
    })
    : Effect.tryPromise({
      try: (signal) => ingestStream(input, sys, signal),
      catch: (e) => e,
    })
  return yield* run.pipe(
    Effect.catchAll((e) =>
      e instanceof LayerRejected || e instanceof LayerIoError
        ? Effect.fail(e)
        // the source's own typed failure (e.g. the registry gave up mid-blob) is the caller's
        : isTagged(e)
        ? Effect.fail(e as SourceFailure)
        : Effect.die(e)
    ),
  )
})

/** A typed error thrown by the blob source while it was read (a RegistryError, say). */
export type SourceFailure = Error & { readonly _tag: string }

const isTagged = (e: unknown): boolean =>
  e instanceof Error && typeof (e as { _tag?: unknown })._tag === "string"
