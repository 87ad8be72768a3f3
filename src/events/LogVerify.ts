/**
 * Full verification of a log (`als audit`, EventLog.verify): reads every frame, checks every
 * checksum, link and event schema, skips past damage to the next intact frame, and reports
 * all it finds rather than stopping at the first problem as the readers do.
 */
import { Buffer } from "node:buffer"
import { LogCorrupt, type ProblemKind } from "./LogErrors.ts"
import {
  bytesEqual,
  FRAME_HEAD,
  FRAME_OVERHEAD,
  frameHashOk,
  GENESIS,
  HEAD_MAGIC,
  HEADER_SIZE,
  MAX_PAYLOAD,
  readIndex,
  TAIL_MAGIC,
} from "./LogFormat.ts"
import { checkHeader, classifyTail, nextIntactFrame, Window } from "./LogFrames.ts"
import { type ByteStore, readAt } from "./LogStore.ts"
import { decodeStrict } from "./Payload.ts"

export interface VerifyProblem {
  readonly offset: number
  /** the frame's position counting from 0 */
  readonly index: number
  readonly kind: ProblemKind
  readonly problem: string
  /** true for a torn tail: repaired by the next append, not damage */
  readonly tail: boolean
}

export interface VerifyReport {
  /** no problems at all (a torn tail counts as one) */
  readonly ok: boolean
  readonly frames: number
  /** the file's size in bytes */
  readonly size: number
  /** the end and hash of the last good frame */
  readonly head: { readonly size: number; readonly hash: string }
  readonly problems: ReadonlyArray<VerifyProblem>
  /** problems beyond the first MAX_PROBLEMS, counted only */
  readonly problemsOmitted: number
}

const MAX_PROBLEMS = 1000

/** Reads every frame, checks every checksum, link and event schema, and reports all it finds. */
export const verifyStore = (store: ByteStore): VerifyReport => {
  const size = store.size()
  const problems: Array<VerifyProblem> = []
  let omitted = 0
  const report = (p: VerifyProblem) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p)
    else omitted++
  }
  let frames = 0
  let head = { size: 0, hash: GENESIS.toString("hex") }
  const done = (): VerifyReport => ({ ok: problems.length === 0, frames, size, head, problems, problemsOmitted: omitted })

  let header: "none" | "torn" | "ok"
  try {
    header = checkHeader(store, size)
  } catch (e) {
    if (!(e instanceof LogCorrupt)) throw e
    report({ offset: 0, index: 0, kind: e.kind, problem: e.problem, tail: false })
    return done()
  }
  if (header === "none") return done()
  if (header === "torn") {
    report({ offset: 0, index: 0, kind: "truncated", problem: "the file header is cut short", tail: true })
    return done()
  }
  head = { size: HEADER_SIZE, hash: GENESIS.toString("hex") }

  const win = new Window(store)
  const prev = Buffer.from(GENESIS)
  let pos = HEADER_SIZE
  let index = 0
  while (pos < size) {
    const avail = win.ensure(pos, FRAME_HEAD)
    let at = pos - win.start
    const structural = (kind: ProblemKind, problem: string): boolean => {
      const cls = classifyTail(store, pos, size)
      if (cls.torn) {
        report({ offset: pos, index, kind: cls.kind, problem: `${cls.problem}: a torn append, cut by the next append`, tail: true })
        return false
      }
      const next = nextIntactFrame(win, pos + 1, size)
      report({
        offset: pos,
        index,
        kind,
        problem: next < 0 ? `${problem}; no intact frame follows` : `${problem}; ${next - pos} bytes up to the next intact frame`,
        tail: false,
      })
      if (next < 0) return false
      const h = readAt(store, next, FRAME_HEAD)
      h.copy(prev, 0, 16, 48) // resynchronise: the gap is reported once, not again as a broken link
      index = readIndex(h, 0)
      pos = next
      return true
    }
    if (avail < FRAME_HEAD) {
      if (!structural("truncated", "the last frame is cut short")) break
      continue
    }
    if (win.buf.readUInt32LE(at) !== HEAD_MAGIC) {
      if (!structural("framing", "no frame marker where a frame should start")) break
      continue
    }
    const len = win.buf.readUInt32LE(at + 4)
    if (len > MAX_PAYLOAD) {
      if (!structural("framing", `impossible payload length ${len}`)) break
      continue
    }
    const fsize = FRAME_OVERHEAD + len
    if (win.ensure(pos, fsize) < fsize) {
      if (!structural("truncated", "the last frame is cut short")) break
      continue
    }
    at = pos - win.start
    const buf = win.buf
    const hashAt = at + FRAME_HEAD + len
    if (buf.readUInt32LE(hashAt + 32) !== len || buf.readUInt32LE(hashAt + 36) !== TAIL_MAGIC) {
      if (!structural("framing", "frame end marker missing or length mismatch")) break
      continue
    }
    if (!frameHashOk(buf, at, len)) {
      // The frame's bounds are intact: report it and go on with its stored hash as the link.
      const cls = pos + fsize === size ? classifyTail(store, pos, size) : { torn: false as const }
      report({
        offset: pos,
        index,
        kind: "checksum",
        problem: cls.torn ? `${cls.problem}: cut by the next append` : "checksum mismatch: the frame's bytes were changed",
        tail: cls.torn,
      })
      buf.copy(prev, 0, hashAt, hashAt + 32)
      index++ // its own index field may be the damaged part
      frames++
      pos += fsize
      continue
    }
    const stored = readIndex(buf, at)
    if (stored !== index) {
      report({ offset: pos, index, kind: "chain", problem: `the frame says it is number ${stored}: frames were removed, added or reordered`, tail: false })
    } else if (!bytesEqual(buf, at + 16, prev, 0, 32)) {
      report({ offset: pos, index, kind: "chain", problem: "the frame does not link to the one before it: a frame before it was changed, removed or reordered", tail: false })
    }
    const decoded = decodeStrict(buf.subarray(at + FRAME_HEAD, hashAt))
    if (typeof decoded === "string") report({ offset: pos, index, kind: "decode", problem: decoded, tail: false })
    buf.copy(prev, 0, hashAt, hashAt + 32)
    index = stored + 1
    frames++
    pos += fsize
    head = { size: pos, hash: prev.toString("hex") }
  }
  return done()
}
