/**
 * The frames of a log (LogFormat.ts) in a ByteStore: the positions and tails the readers pass
 * around, a sliding read window, the header check, and the one rule that tells a torn tail
 * from damage. FrameReader.ts reads forward from here, LogTail.ts finds the tail for `append`,
 * LogVerify.ts checks everything for `audit`.
 *
 * One rule decides between a torn tail and damage, everywhere (`classifyTail`): bad bytes
 * are a torn tail when no intact frame follows them and they are a cut-short frame, one
 * complete frame that fails its own checksum, or zeros (what a crash mid-append leaves).
 * Anything else, in particular an intact frame that does not chain or any intact frame after
 * a bad one, is damage: it is reported with its offset and never cut.
 *
 * Plain imperative code over Buffers (the hot loop of every fold); it throws LogError values,
 * which EventLog.ts turns into Effect failures at the boundary.
 */
import { Buffer } from "node:buffer"
import type { Envelope, Event } from "./Events.ts"
import { LogCorrupt, type ProblemKind } from "./LogErrors.ts"
import {
  bytesEqual,
  checkFrame,
  FILE_HEADER,
  FRAME_HEAD,
  FRAME_OVERHEAD,
  GENESIS,
  HEAD_MAGIC,
  HEAD_MAGIC_BYTES,
  HEADER_SIZE,
  MAX_PAYLOAD,
  readIndex,
  TAIL_MAGIC,
  TAIL_MAGIC_BYTES,
} from "./LogFormat.ts"
import { type ByteStore, readAt } from "./LogStore.ts"

export interface LogEntry {
  /** byte offset of the frame in the log */
  readonly offset: number
  /** 0 for the first frame */
  readonly index: number
  /** sha256 of the frame, hex: the next frame's link and `head().hash` */
  readonly hash: string
  readonly envelope: Envelope
  readonly event: Event
}

/** What a fold sees of each entry: all but the hash. */
export type FoldEntry = Omit<LogEntry, "hash">

/** Where a reader starts: a frame boundary, the hash before it and the index of the frame there. */
export interface Position {
  readonly offset: number
  readonly prevHash: Buffer
  readonly index: number
}

/** The end of the last good frame. */
export interface Tail {
  readonly end: number
  readonly hash: Buffer
  readonly nextIndex: number
}

export const emptyTail = (end: number): Tail => ({ end, hash: GENESIS, nextIndex: 0 })

/** What a window reads from: a ByteStore, or any positional reader (the audit's read-only file). */
export type ByteSource = Pick<ByteStore, "read">

export const CHUNK = 1 << 20

/** A sliding window over the store: holds [start, start + len) and refills in CHUNK reads. */
export class Window {
  buf: Buffer
  start = 0
  len = 0
  constructor(private readonly store: ByteSource, chunk = CHUNK) {
    this.buf = Buffer.allocUnsafe(chunk)
  }

  /** Makes the window hold [pos, pos + n) if the store has it; returns the bytes held from pos. */
  ensure(pos: number, n: number): number {
    const held = this.start + this.len - pos
    if (pos >= this.start && held >= n) return held
    if (pos < this.start || held < 0) {
      this.start = pos
      this.len = 0
    } else if (pos > this.start) {
      this.buf.copyWithin(0, pos - this.start, this.len)
      this.len = held
      this.start = pos
    }
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2))
      this.buf.copy(bigger, 0, 0, this.len)
      this.buf = bigger
    }
    while (this.len < this.buf.length) {
      const got = this.store.read(this.buf, this.len, this.buf.length - this.len, this.start + this.len)
      if (got === 0) break
      this.len += got
    }
    return this.len
  }
}

// ---------------------------------------------------------------------------------------------
// Header

/** "none": no bytes yet; "torn": a cut-short header (a torn first append); "ok". Throws LogCorrupt. */
export const checkHeader = (store: ByteStore, size: number): "none" | "torn" | "ok" => {
  if (size === 0) return "none"
  const head = readAt(store, 0, Math.min(size, HEADER_SIZE))
  if (bytesEqual(head, 0, FILE_HEADER, 0, head.length)) return head.length < HEADER_SIZE ? "torn" : "ok"
  const newer = head.length === HEADER_SIZE && bytesEqual(head, 0, FILE_HEADER, 0, HEADER_SIZE - 1)
  throw new LogCorrupt({
    path: store.path,
    offset: 0,
    index: 0,
    kind: "framing",
    problem: newer
      ? `the log's format version ${head[HEADER_SIZE - 1]} is not one this als reads (1)`
      : "the file does not start like an als event log",
  })
}

// ---------------------------------------------------------------------------------------------
// Torn tail or damage

export type TailClass =
  | { readonly torn: true; readonly kind: ProblemKind; readonly problem: string }
  | { readonly torn: false }

const allZeros = (store: ByteStore, from: number, size: number): boolean => {
  const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size - from))
  for (let p = from; p < size;) {
    const n = store.read(chunk, 0, Math.min(chunk.length, size - p), p)
    if (n === 0) return true
    for (let i = 0; i < n; i++) if (chunk[i] !== 0) return false
    p += n
  }
  return true
}

/** Whether the bytes [from, size) are a torn tail (see the module comment). */
export const classifyTail = (store: ByteStore, from: number, size: number): TailClass => {
  const n = size - from
  if (n <= 0) return { torn: true, kind: "truncated", problem: "nothing after the last frame" }
  // Whatever the first bytes look like (a damaged length can make a frame seem to run past
  // the end), an intact frame further on means this is not the end of the log.
  if (searchBack(store, from + 1, size, false) !== undefined) return { torn: false }
  const head = readAt(store, from, Math.min(n, FRAME_HEAD))
  const magicOk = head.length >= 4 ? head.readUInt32LE(0) === HEAD_MAGIC : bytesEqual(head, 0, HEAD_MAGIC_BYTES, 0, head.length)
  if (magicOk) {
    if (n < 8) return { torn: true, kind: "truncated", problem: `the last frame is cut short (${n} bytes)` }
    const len = head.readUInt32LE(4)
    if (len <= MAX_PAYLOAD) {
      const whole = FRAME_OVERHEAD + len
      if (n < whole) return { torn: true, kind: "truncated", problem: `the last frame is cut short (${n} of ${whole} bytes)` }
      if (n === whole) {
        const check = checkFrame(readAt(store, from, n), 0, n)
        // An intact frame that merely fails to chain is not torn: someone removed or moved frames.
        if (!check.ok) return { torn: true, kind: check.kind, problem: `the last frame is damaged: ${check.problem}` }
      }
    }
    return { torn: false }
  }
  if (allZeros(store, from, size)) return { torn: true, kind: "truncated", problem: `${n} zero bytes after the last frame` }
  return { torn: false }
}

// ---------------------------------------------------------------------------------------------
// Frames found from the end, and forward past damage

/**
 * The frame that ends at `end`, if there is one whose checksum holds and (with `linked`) that
 * links to the frame before it: the O(1) check of a log's tail. A few small reads.
 */
export const frameEndingAt = (store: ByteStore, end: number, linked = true): (Tail & { readonly start: number }) | undefined => {
  if (end < HEADER_SIZE + FRAME_OVERHEAD) return undefined
  const trailer = readAt(store, end - 40, 40)
  if (trailer.length < 40 || trailer.readUInt32LE(36) !== TAIL_MAGIC) return undefined
  const len = trailer.readUInt32LE(32)
  if (len > MAX_PAYLOAD) return undefined
  const start = end - FRAME_OVERHEAD - len
  if (start < HEADER_SIZE) return undefined
  const frame = readAt(store, start, FRAME_OVERHEAD + len)
  if (!checkFrame(frame, 0, frame.length).ok) return undefined
  const index = readIndex(frame, 0)
  if (linked) {
    if (start === HEADER_SIZE) {
      if (index !== 0 || !bytesEqual(frame, 16, GENESIS, 0, 32)) return undefined
    } else {
      const before = readAt(store, start - 40, 40)
      if (before.length < 40 || before.readUInt32LE(36) !== TAIL_MAGIC || !bytesEqual(before, 0, frame, 16, 32)) return undefined
      const beforeStart = start - FRAME_OVERHEAD - before.readUInt32LE(32)
      if (beforeStart < HEADER_SIZE) return undefined
      const beforeHead = readAt(store, beforeStart, 16)
      if (beforeHead.readUInt32LE(0) !== HEAD_MAGIC || readIndex(beforeHead, 0) !== index - 1) return undefined
    }
  }
  return { end, start, hash: Buffer.from(frame.subarray(FRAME_HEAD + len, FRAME_HEAD + len + 32)), nextIndex: index + 1 }
}

/**
 * The last frame that ends at or before `size` and starts at or after `from` whose checksum
 * holds (and, with `linked`, that links to the frame before it), searching back for frame end
 * markers. Costs a read of the bytes between that frame and `size`.
 */
export const searchBack = (store: ByteStore, from: number, size: number, linked: boolean): Tail | undefined => {
  const floor = Math.max(from, HEADER_SIZE)
  let hi = size
  while (hi - floor >= FRAME_OVERHEAD) {
    const lo = Math.max(floor, hi - CHUNK)
    const view = readAt(store, lo, hi - lo)
    let i = view.length >= 4 ? view.lastIndexOf(TAIL_MAGIC_BYTES, view.length - 4) : -1
    while (i >= 0) {
      const end = lo + i + 4
      if (end - floor < FRAME_OVERHEAD) return undefined
      const tail = frameEndingAt(store, end, linked)
      if (tail !== undefined && tail.start >= floor) return tail
      i = i > 0 ? view.lastIndexOf(TAIL_MAGIC_BYTES, i - 1) : -1
    }
    if (lo === floor) break
    hi = lo + 3 // a marker may straddle the window's start
  }
  return undefined
}

/** The last good, linked frame before `size`, or the empty log's tail. */
export const lastGoodTail = (store: ByteStore, size: number): Tail =>
  searchBack(store, HEADER_SIZE, size, true) ?? emptyTail(HEADER_SIZE)

/**
 * The offset of the next frame at or after `from` whose own checksum holds, or -1: how a scan
 * skips damage to the next frame marker (`verify`, and the audit's salvage).
 */
export const nextIntactFrame = (win: Window, from: number, size: number): number => {
  let p = from
  while (p < size) {
    const held = win.ensure(p, Math.min(CHUNK, size - p))
    if (held === 0) return -1
    const i = win.buf.subarray(0, win.len).indexOf(HEAD_MAGIC_BYTES, p - win.start)
    if (i < 0) {
      p = win.start + win.len - 3
      if (win.start + win.len >= size) return -1
      continue
    }
    const at = win.start + i
    if (win.ensure(at, 8) >= 8) {
      const len = win.buf.readUInt32LE(at - win.start + 4)
      const whole = FRAME_OVERHEAD + len
      if (len <= MAX_PAYLOAD && at + whole <= size && win.ensure(at, whole) >= whole && checkFrame(win.buf, at - win.start, whole).ok) {
        return at
      }
    }
    p = at + 1
  }
  return -1
}
