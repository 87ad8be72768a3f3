/**
 * One layer's ingest on a thread of its own (issue 16).
 *
 * Why: inflate, both SHA-256 passes, the tar parser and every file the layer creates ran on the
 * main thread, one layer after another, so a pull used one of the machine's cores however many
 * layers it pulled at once. Here the main thread only downloads: each chunk is copied to the
 * layer's worker (IngestWorker.ts), which runs the same `ingestStream` as the in-line path,
 * so what is checked and what is written are the same. The worker hands back the result or a
 * typed failure (LayerRejected, LayerIoError), rebuilt here.
 *
 * Backpressure: at most IN_FLIGHT_BYTES are posted and not yet taken by the worker, so a slow
 * disk still slows the download instead of filling memory.
 *
 * Stopping: `stop()` (an interruption, or the source failing) tells the worker, which closes its
 * files and ends; it resolves once the worker wrote its last byte, so the caller's staging dir
 * can be removed safely after it. A worker that does not answer within STOP_WAIT_MS is
 * terminated.
 *
 * Only under Bun, like the fold verifier; the worker is a second entry point of the compiled
 * binary (package.json "build").
 */
import * as os from "node:os"
import { LayerIoError, type LayerIoErrorCode, LayerRejected, type LayerRejectedCode } from "./errors.ts"
import { Aborted, type IngestInput, type IngestResult } from "./IngestStream.ts"

/** What the worker needs of an IngestInput: everything but the byte source and the progress callback. */
export type IngestJob = Omit<IngestInput, "source" | "onBytes">

/** main → worker */
export type ToWorker =
  | { readonly t: "start"; readonly job: IngestJob }
  | { readonly t: "chunk"; readonly bytes: Uint8Array }
  | { readonly t: "end" }
  | { readonly t: "stop" }

/** A failure as it crosses threads. */
export type WireFailure =
  | { readonly kind: "LayerRejected"; readonly code: LayerRejectedCode; readonly message: string; readonly entry?: string }
  | { readonly kind: "LayerIoError"; readonly code: LayerIoErrorCode; readonly path: string; readonly message: string }
  | { readonly kind: "Aborted" }
  | { readonly kind: "Defect"; readonly message: string }

/** worker → main */
export type FromWorker =
  | { readonly t: "took"; readonly bytes: number }
  | { readonly t: "done"; readonly result: IngestResult }
  | { readonly t: "failed"; readonly failure: WireFailure }

export const toWire = (e: unknown): WireFailure =>
  e instanceof LayerRejected
    ? { kind: "LayerRejected", code: e.code, message: e.message, ...(e.entry !== undefined ? { entry: e.entry } : {}) }
    : e instanceof LayerIoError
    ? { kind: "LayerIoError", code: e.code, path: e.path, message: e.message }
    : e instanceof Aborted
    ? { kind: "Aborted" }
    : { kind: "Defect", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }

export const fromWire = (f: WireFailure): Error => {
  switch (f.kind) {
    case "LayerRejected":
      return new LayerRejected(f.entry === undefined ? { code: f.code, message: f.message } : f)
    case "LayerIoError":
      return new LayerIoError({ code: f.code, path: f.path, message: f.message })
    case "Aborted":
      return new Aborted("interrupted")
    case "Defect":
      return new Error(`layer ingest thread: ${f.message}`)
  }
}

/** Posted but not yet taken by the worker: a few network chunks, bounded memory per layer. */
export const IN_FLIGHT_BYTES = 1024 * 1024
const STOP_WAIT_MS = 5_000

/**
 * With ALS_INGEST_THREADS=1 (LayerIngest.ts; off by default), only blobs this big get a thread.
 * Measured on the 2-core test machine, quiet (BENCHMARKS.md,
 * issue 16): a thread pays where a layer's work is per byte (large-1g, 625 MB in 2 layers:
 * 7.9 -> 7.1 s) and costs where it is per file: the kernel does not create files faster from two
 * threads, it spends more CPU doing so (small-50k, 26 MB layers of 12,500 files each: 2x the
 * system CPU, 5.8-6.8 -> 7.0-7.6 s; Debian's 3 layers: no change). Files per layer are not known
 * before the tar is read, so the blob's size decides: only layers of at least 64 MiB, where the
 * bytes are likely to outweigh the files.
 */
export const OFF_THREAD_MIN_BYTES = 64 * 1024 * 1024

const workerEntry = (): string =>
  Bun.isStandaloneExecutable ? "./src/extract/IngestWorker.ts" : new URL("./IngestWorker.ts", import.meta.url).href

/** Whether this runtime can run an ingest worker (Bun with Workers). */
const canIngestOffThread = (): boolean => {
  const g = globalThis as { Bun?: unknown; Worker?: unknown }
  return g.Bun !== undefined && g.Worker !== undefined
}

/**
 * Ingest threads alive at once: one per core but the main thread's, which ingests the layers
 * that find none free (and the small ones) itself. More would only take turns: each costs a
 * JavaScript heap (~5-15 MiB of RSS) and its own JIT warm-up, and creating files does not scale
 * with threads here (40,000 creates from two processes at once: +15-25% kernel CPU, no faster).
 */
const maxThreads = (): number => Math.max(1, os.availableParallelism() - 1)
let alive = 0
let started = 0

/** Ingest threads started by this process so far, and how many run now (diagnostics, tests). */
export const ingestThreads = (): { readonly started: number; readonly alive: number } => ({ started, alive })

/** How a worker ended: its result, or what went wrong. */
type Outcome = { readonly ok: true; readonly result: IngestResult } | { readonly ok: false; readonly error: unknown }

export interface OffThreadIngest {
  /** settles with the layer's result, or rejects with LayerRejected, LayerIoError, Aborted, a source's error */
  readonly result: Promise<IngestResult>
  /** stops the ingest; resolves once the worker wrote its last byte (or was terminated) */
  readonly stop: () => Promise<void>
}

/**
 * Starts `input`'s ingest on a worker of its own, or answers undefined when every ingest thread
 * is busy or none can start (the caller then runs it in line).
 */
export const ingestOffThread = (input: IngestInput): OffThreadIngest | undefined => {
  if (!canIngestOffThread() || alive >= maxThreads()) return undefined
  let worker: Worker
  try {
    worker = new Worker(workerEntry())
  } catch {
    return undefined
  }
  alive++
  started++
  const { source, onBytes, ...job } = input
  let inFlight = 0
  let wake: (() => void) | undefined
  let stopping = false
  let settled = false
  let finish!: (r: Outcome) => void
  const ended = new Promise<Outcome>((r) => (finish = r))
  const settle = (r: Outcome) => {
    if (settled) return
    settled = true
    finish(r)
    wake?.()
    worker.terminate()
    alive--
  }
  worker.onmessage = (m: MessageEvent<FromWorker>) => {
    const msg = m.data
    if (msg.t === "took") {
      inFlight -= msg.bytes
      if (inFlight < IN_FLIGHT_BYTES) wake?.()
    } else if (msg.t === "done") settle({ ok: true, result: msg.result })
    else settle({ ok: false, error: fromWire(msg.failure) })
  }
  worker.onerror = (e: ErrorEvent) => settle({ ok: false, error: new Error(`layer ingest thread: ${e.message}`) })
  const post = (msg: ToWorker, transfer?: ArrayBuffer[]) => worker.postMessage(msg, transfer ?? [])
  post({ t: "start", job })

  let sourceError: { error: unknown } | undefined
  // runs on its own; `result` does not wait for it
  void (async () => {
    let received = 0
    try {
      for await (const chunk of source) {
        if (stopping || settled) break
        received += chunk.length
        // longer than declared: the worker refuses it (BlobSizeMismatch) on this chunk; read no more
        const tooLong = received > job.size
        // a copy (Buffer#slice would be a view): the source may reuse its buffer, and the
        // transfer detaches ours
        const bytes = new Uint8Array(chunk)
        inFlight += bytes.length
        post({ t: "chunk", bytes }, [bytes.buffer as ArrayBuffer])
        onBytes?.(received)
        if (tooLong) return
        while (inFlight >= IN_FLIGHT_BYTES && !stopping && !settled) {
          await new Promise<void>((r) => (wake = r))
          wake = undefined
        }
      }
      if (!stopping && !settled) post({ t: "end" })
    } catch (e) {
      sourceError = { error: e }
      if (!settled) post({ t: "stop" })
    }
  })()

  const result = (async () => {
    // not waiting for the pump: after a failure it stops at its next chunk (a source's failure
    // is known before the worker is told to stop, so it is never missed here)
    const r = await ended
    // the source's own failure is what went wrong, once the worker has stopped writing
    if (sourceError !== undefined) throw sourceError.error
    if (!r.ok) throw r.error
    return r.result
  })()
  // a caller that stopped does not await `result`
  result.catch(() => {})

  const stop = async () => {
    if (settled) return
    stopping = true
    wake?.()
    post({ t: "stop" })
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      ended,
      new Promise<void>((r) => (timer = setTimeout(r, STOP_WAIT_MS))),
    ])
    clearTimeout(timer)
    settle({ ok: false, error: new Aborted("interrupted") })
  }
  return { result, stop }
}

