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
 * Only under Bun (the worker uses Bun.SHA256 and a Blob URL); elsewhere folds stay on one
 * thread. The worker is a Blob of plain JavaScript built from the frame constants below, so
 * the compiled binary needs no second entry point.
 */
import { FRAME_HEAD, FRAME_OVERHEAD, HEAD_MAGIC, MAX_PAYLOAD } from "./LogFormat.ts"

/** Below this many bytes to read, starting a worker costs more than it saves. */
export const VERIFY_THREAD_MIN_BYTES = 16 * 1024 * 1024

export interface Verifier {
  /** Every frame ending at or before this offset has a good checksum. */
  verifiedEnd(): number
  stop(): void
}

// One frame at a time from `from` to `to`: the same walk as the reader's, checksums only.
const workerSource = `
const HEAD_MAGIC = ${HEAD_MAGIC}, FRAME_HEAD = ${FRAME_HEAD}, FRAME_OVERHEAD = ${FRAME_OVERHEAD}, MAX_PAYLOAD = ${MAX_PAYLOAD}
const PUBLISH_EVERY = 128
self.onmessage = (message) => {
  const { path, from, to, shared } = message.data
  const fs = process.getBuiltinModule("node:fs")
  const out = new Uint8Array(32)
  let buf = Buffer.allocUnsafe(1 << 20)
  let bufStart = from
  let bufLen = 0
  let pos = from
  let fd = -1
  // makes buf hold [pos, pos + need) if the file has it below \`to\`
  const hold = (need) => {
    if (pos + need <= bufStart + bufLen) return true
    buf.copyWithin(0, pos - bufStart, bufLen)
    bufLen -= pos - bufStart
    bufStart = pos
    if (need > buf.length) {
      const bigger = Buffer.allocUnsafe(need)
      buf.copy(bigger, 0, 0, bufLen)
      buf = bigger
    }
    while (bufLen < buf.length && bufStart + bufLen < to) {
      const n = fs.readSync(fd, buf, bufLen, Math.min(buf.length - bufLen, to - bufStart - bufLen), bufStart + bufLen)
      if (n === 0) break
      bufLen += n
    }
    return pos + need <= bufStart + bufLen
  }
  try {
    fd = fs.openSync(path, "r")
    for (let frames = 1; pos < to; frames++) {
      if (!hold(8)) break
      let at = pos - bufStart
      const len = buf.readUInt32LE(at + 4)
      if (buf.readUInt32LE(at) !== HEAD_MAGIC || len > MAX_PAYLOAD || !hold(FRAME_OVERHEAD + len)) break
      at = pos - bufStart
      const hashAt = at + FRAME_HEAD + len
      Bun.SHA256.hash(buf.subarray(at + 4, hashAt), out)
      let same = true
      for (let i = 0; i < 32; i++) if (out[i] !== buf[hashAt + i]) { same = false; break }
      if (!same) break
      pos += FRAME_OVERHEAD + len
      if (frames % PUBLISH_EVERY === 0) Atomics.store(shared, 0, BigInt(pos))
    }
  } catch {
    // whatever went wrong, the reader checks the frames from \`pos\` on itself
  } finally {
    Atomics.store(shared, 0, BigInt(pos))
    if (fd >= 0) fs.closeSync(fd)
  }
}
`

let workerUrl: string | undefined

/**
 * Starts a worker vouching for the frames of the log file at `path` in [from, to), or
 * returns undefined where none can run (the reader then checks every frame itself).
 */
export const startVerifier = (path: string, from: number, to: number): Verifier | undefined => {
  const g = globalThis as { Bun?: { SHA256?: unknown }; Worker?: typeof Worker; SharedArrayBuffer?: unknown }
  if (g.Bun?.SHA256 === undefined || g.Worker === undefined || g.SharedArrayBuffer === undefined) return undefined
  let worker: Worker
  const shared = new BigInt64Array(new SharedArrayBuffer(8))
  shared[0] = BigInt(from)
  try {
    workerUrl ??= URL.createObjectURL(new Blob([workerSource], { type: "application/javascript" }))
    worker = new Worker(workerUrl, { type: "module" })
    ;(worker as { unref?: () => void }).unref?.()
    worker.postMessage({ path, from, to, shared })
  } catch {
    return undefined
  }
  return {
    verifiedEnd: () => Number(Atomics.load(shared, 0)),
    stop: () => worker.terminate(),
  }
}
