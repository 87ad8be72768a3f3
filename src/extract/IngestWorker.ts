/**
 * The ingest thread of one layer (IngestOffThread.ts): takes the blob's chunks from the main
 * thread and runs the same `ingestStream` as the in-line path on them, then posts the result or
 * the typed failure. Each chunk is acknowledged ("took") once the stream asked for the next one,
 * i.e. once it was hashed, written and extracted: that is the main thread's backpressure.
 *
 * A module of its own, loaded only as a Worker: the compiled binary lists it as an entry point
 * (package.json "build").
 */
import { make as bunSyscalls } from "../sys/BunSyscalls.ts"
import { deferredSyscalls } from "../sys/SyscallsApi.ts"
import type { FromWorker, IngestJob, ToWorker } from "./IngestOffThread.ts"
import { toWire } from "./IngestOffThread.ts"
import { Aborted, ingestStream } from "./IngestStream.ts"

declare const self: {
  onmessage: ((m: MessageEvent<ToWorker>) => void) | null
  postMessage: (m: FromWorker) => void
}

interface BunRuntime {
  gc(full: boolean): void
  unsafe?: { setJITPolicy?(scale: number): void }
}
const bun = (globalThis as { Bun?: BunRuntime }).Bun

// This thread only runs hot loops (inflate callbacks, hashing, the tar parser): the binary's
// start-up JIT policy (bin/als.ts) would keep them interpreted for longer.
bun?.unsafe?.setJITPolicy?.(1)

/**
 * Every chunk taken and every zlib output is a fresh buffer, and JavaScriptCore sizes its heap
 * from the machine's RAM: left alone, this thread let tens of MiB of them pile up (peak RSS of a
 * 1 GB pull: 183 MiB with two ingest threads and no collections here, 156-158 with one every
 * 4-16 MiB taken). So a full collection after every COLLECT_EVERY bytes taken, unless the last
 * one was under 20 times its own cost ago (as on the main thread, bin/als.ts). Collecting more
 * often than every 64 MiB lowered the peak no further.
 */
const COLLECT_EVERY = 64 * 1024 * 1024
let sinceCollect = 0
let nextCollectAt = 0
const collectGarbageSometimes = (taken: number): void => {
  sinceCollect += taken
  if (!bun || sinceCollect < COLLECT_EVERY) return
  const t = performance.now()
  if (t < nextCollectAt) return
  sinceCollect = 0
  bun.gc(true)
  const now = performance.now()
  nextCollectAt = now + 20 * (now - t)
}

const queue: Uint8Array[] = []
let ended = false
let waiter: (() => void) | undefined
const stopper = new AbortController()

const post = (m: FromWorker) => self.postMessage(m)

/** The chunks as the main thread posts them; each is acknowledged when the next is asked for. */
async function* chunks(): AsyncGenerator<Uint8Array> {
  for (;;) {
    while (queue.length === 0 && !ended && !stopper.signal.aborted) {
      await new Promise<void>((r) => (waiter = r))
      waiter = undefined
    }
    if (stopper.signal.aborted) throw new Aborted("interrupted")
    const next = queue.shift()
    if (next === undefined) return
    yield next
    post({ t: "took", bytes: next.length })
    collectGarbageSometimes(next.length)
  }
}

const run = (job: IngestJob) => {
  ingestStream({ ...job, source: chunks() }, deferredSyscalls("bun", bunSyscalls), stopper.signal).then(
    (result) => post({ t: "done", result }),
    (e) => post({ t: "failed", failure: toWire(e) }),
  )
}

self.onmessage = (m) => {
  const msg = m.data
  switch (msg.t) {
    case "start":
      run(msg.job)
      return
    case "chunk":
      queue.push(msg.bytes)
      break
    case "end":
      ended = true
      break
    case "stop":
      stopper.abort()
      break
  }
  waiter?.()
}
