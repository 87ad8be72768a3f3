/**
 * A second thread that checks frame checksums ahead of a fold.
 *
 * A fold spends about a third of its time on sha256, one per frame; the rest (decoding the
 * payloads, the reducer) must stay on the fold's thread. On a log big enough to pay for a
 * Worker's start (~10 ms), a worker walks the same bytes frame by frame, checks each frame's
 * checksum, and publishes in shared memory how far every checksum held. The reader
 * (FrameReader.ts) skips its own sha256 for frames that end before that point and
 * checks every other frame itself, so the worker only ever vouches: it stops at the first
 * frame it cannot vouch for (a bad checksum, a torn or damaged frame), and the reader then
 * meets that frame with its own checks and reports it exactly as a one-thread fold would.
 * Framing, order and chain links are checked by the reader as always.
 *
 * Only under Bun (elsewhere folds stay on one thread). The worker is its own module
 * (FoldVerifierWorker.ts) that walks the frames with the fold's FrameReader; the compiled
 * binary lists it as a second entry point (package.json "build").
 */

/** Below this many bytes to read, starting a worker costs more than it saves. */
export const VERIFY_THREAD_MIN_BYTES = 16 * 1024 * 1024

export interface Verifier {
  /** Every frame ending at or before this offset has a good checksum. */
  verifiedEnd(): number
  stop(): void
}

/** What the worker is asked: the log's frames in [from, to); it publishes its progress in `shared`. */
export interface VerifyRequest {
  readonly path: string
  readonly from: number
  readonly to: number
  readonly shared: BigInt64Array
}

/**
 * The worker's module. In the compiled binary it is an entry point of its own, named by its
 * path from the build's root (package.json "build" lists it); there `import.meta.url` is the
 * build machine's path of this file, which the binary does not hold.
 */
const workerEntry = (): string =>
  Bun.isStandaloneExecutable ? "./src/events/FoldVerifierWorker.ts" : new URL("./FoldVerifierWorker.ts", import.meta.url).href

/**
 * Starts a worker vouching for the frames of the log file at `path` in [from, to), or
 * returns undefined where none can run (the reader then checks every frame itself).
 */
export const startVerifier = (path: string, from: number, to: number): Verifier | undefined => {
  const g = globalThis as { Bun?: unknown; Worker?: typeof Worker; SharedArrayBuffer?: unknown }
  if (g.Bun === undefined || g.Worker === undefined || g.SharedArrayBuffer === undefined) return undefined
  let worker: Worker
  const shared = new BigInt64Array(new SharedArrayBuffer(8))
  shared[0] = BigInt(from)
  try {
    worker = new Worker(workerEntry())
    ;(worker as { unref?: () => void }).unref?.()
    worker.postMessage({ path, from, to, shared } satisfies VerifyRequest)
  } catch {
    return undefined
  }
  return {
    verifiedEnd: () => Number(Atomics.load(shared, 0)),
    stop: () => worker.terminate(),
  }
}
