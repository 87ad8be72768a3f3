/**
 * Reading a log's bytes (LogFormat.ts) out of a ByteStore: the chunked frame reader behind
 * `stream` and `fold`, the full scan behind `verify`, and finding the tail for `append`.
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
import { LogCorrupt, LogDecodeError, type ProblemKind } from "./LogErrors.ts"
import {
  bytesEqual,
  checkFrame,
  FILE_HEADER,
  FRAME_HEAD,
  FRAME_OVERHEAD,
  frameHashOk,
  GENESIS,
  hashHex,
  HEAD_MAGIC,
  HEAD_MAGIC_BYTES,
  HEADER_SIZE,
  MAX_PAYLOAD,
  readIndex,
  TAIL_MAGIC,
  TAIL_MAGIC_BYTES,
} from "./LogFormat.ts"
import { type ByteStore, readAt } from "./LogStore.ts"
import { decoded, decodeInto, decodeStrict } from "./Payload.ts"

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

const CHUNK = 1 << 20

/** A sliding window over the store: holds [start, start + len) and refills in CHUNK reads. */
class Window {
  buf: Buffer
  start = 0
  len = 0
  constructor(private readonly store: ByteStore, chunk = CHUNK) {
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
// The frame reader (stream, fold, and the forward check of frames other processes appended)

export class FrameReader {
  private readonly win: Window
  pos: number
  index: number
  readonly prev: Buffer
  /** Set when the reader stopped at a torn tail rather than at the clean end. */
  torn: { readonly offset: number; readonly index: number; readonly bytes: number; readonly kind: ProblemKind; readonly problem: string } | undefined
  // the frame accepted last: its place in the window
  private at = 0
  private len = 0
  private offset = 0

  constructor(private readonly store: ByteStore, start: Position) {
    this.win = new Window(store)
    this.pos = start.offset
    this.index = start.index
    this.prev = Buffer.from(start.prevHash)
  }

  tail(): Tail {
    return { end: this.pos, hash: Buffer.from(this.prev), nextIndex: this.index }
  }

  private retries = 0

  /**
   * Frames ending at or before `trustedEnd` had their checksums checked by a FoldVerifier
   * (see there); `vouched` tells how far it has got. Every other frame is checked here.
   */
  private trustedEnd = 0
  private vouched: (() => number) | undefined
  private recheckIn = 0

  /** Takes the checksums a FoldVerifier vouches for instead of computing them again. */
  trustVerifier(vouched: () => number): void {
    this.vouched = vouched
  }

  private checksumVouched(end: number): boolean {
    if (end <= this.trustedEnd) return true
    if (this.vouched === undefined || this.recheckIn-- > 0) return false
    this.trustedEnd = this.vouched()
    // behind the verifier: look again at once; ahead of it: only every 64 frames
    if (end <= this.trustedEnd) return true
    this.recheckIn = 64
    return false
  }

  /** Checks the next frame and moves past it; false at the end (clean or torn). Throws LogCorrupt. */
  advance(): boolean {
    const pos = this.pos
    const win = this.win
    let avail = win.ensure(pos, FRAME_HEAD)
    if (avail === 0) return false
    if (avail < FRAME_HEAD) return this.damage("truncated", "the last frame is cut short")
    let at = pos - win.start
    let buf = win.buf
    if (buf.readUInt32LE(at) !== HEAD_MAGIC) return this.damage("framing", "no frame marker where a frame should start")
    const len = buf.readUInt32LE(at + 4)
    if (len > MAX_PAYLOAD) return this.damage("framing", `impossible payload length ${len}`)
    const size = FRAME_OVERHEAD + len
    if (avail < size) {
      avail = win.ensure(pos, size)
      if (avail < size) return this.damage("truncated", "the last frame is cut short")
      at = pos - win.start
      buf = win.buf
    }
    const hashAt = at + FRAME_HEAD + len
    if (buf.readUInt32LE(hashAt + 32) !== len || buf.readUInt32LE(hashAt + 36) !== TAIL_MAGIC) {
      return this.damage("framing", "frame end marker missing or length mismatch")
    }
    if (!this.checksumVouched(pos + size) && !frameHashOk(buf, at, len)) {
      return this.damage("checksum", "checksum mismatch: the frame's bytes were changed")
    }
    const index = readIndex(buf, at)
    if (index !== this.index) {
      return this.damage("chain", `the frame says it is number ${index}: frames were removed, added or reordered`)
    }
    if (!bytesEqual(buf, at + 16, this.prev, 0, 32)) {
      return this.damage("chain", "the frame does not link to the one before it: a frame before it was changed, removed or reordered")
    }
    buf.copy(this.prev, 0, hashAt, hashAt + 32)
    this.retries = 0
    this.at = at
    this.len = len
    this.offset = pos
    this.pos = pos + size
    this.index++
    return true
  }

  /** The next entry, or undefined at the end. Throws LogCorrupt or LogDecodeError. */
  next(): LogEntry | undefined {
    if (!this.nextDecoded()) return undefined
    return {
      offset: this.offset,
      index: this.index - 1,
      hash: hashHex(this.win.buf, this.at + FRAME_HEAD + this.len),
      envelope: decoded.envelope,
      event: decoded.event,
    }
  }

  /** The next entry without its hash (folds never read it, and its hex costs a sixth of a fold). */
  nextFolded(): FoldEntry | undefined {
    if (!this.nextDecoded()) return undefined
    return { offset: this.offset, index: this.index - 1, envelope: decoded.envelope, event: decoded.event }
  }

  private nextDecoded(): boolean {
    if (!this.advance()) return false
    const start = this.at + FRAME_HEAD
    const problem = decodeInto(this.win.buf, start, start + this.len)
    if (problem !== undefined) {
      throw new LogDecodeError({ path: this.store.path, offset: this.offset, index: this.index - 1, problem })
    }
    return true
  }

  private damage(kind: ProblemKind, problem: string): boolean {
    const size = this.store.size()
    // A frame cut short at the end we read may just have been completed by an appender.
    if (kind === "truncated" && size > this.win.start + this.win.len && this.retries++ < 8) return this.advance()
    const cls = classifyTail(this.store, this.pos, size)
    if (cls.torn) {
      this.torn = { offset: this.pos, index: this.index, bytes: size - this.pos, kind: cls.kind, problem: cls.problem }
      return false
    }
    throw new LogCorrupt({ path: this.store.path, offset: this.pos, index: this.index, kind, problem })
  }
}

/** Where a reader asked to start at `fromOffset` begins. Throws LogCorrupt if no frame starts there. */
export const startAt = (store: ByteStore, fromOffset: number | undefined): Position | undefined => {
  const size = store.size()
  const header = checkHeader(store, size)
  if (fromOffset === undefined || fromOffset <= HEADER_SIZE) {
    return header === "ok" ? { offset: HEADER_SIZE, prevHash: GENESIS, index: 0 } : undefined
  }
  const notAFrame = (): LogCorrupt =>
    new LogCorrupt({
      path: store.path,
      offset: fromOffset,
      index: 0,
      kind: "framing",
      problem: `no frame ends right before byte ${fromOffset} (fromOffset must be an entry's offset or the log's size)`,
    })
  if (header !== "ok" || fromOffset > size) throw notAFrame()
  const before = frameEndingAt(store, fromOffset, false)
  if (before === undefined) throw notAFrame()
  return { offset: fromOffset, prevHash: before.hash, index: before.nextIndex }
}

// ---------------------------------------------------------------------------------------------
// Finding the tail from the end (append, head)

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
const searchBack = (store: ByteStore, from: number, size: number, linked: boolean): Tail | undefined => {
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

export type TailState =
  | { readonly kind: "ok"; readonly tail: Tail }
  | { readonly kind: "torn"; readonly tail: Tail; readonly problem: string }
  | { readonly kind: "corrupt"; readonly error: LogCorrupt }

const trailerHashIs = (store: ByteStore, end: number, hash: Buffer): boolean => {
  if (end === HEADER_SIZE) return bytesEqual(hash, 0, GENESIS, 0, 32)
  const trailer = readAt(store, end - 40, 40)
  return trailer.length === 40 && trailer.readUInt32LE(36) === TAIL_MAGIC && bytesEqual(trailer, 0, hash, 0, 32)
}

/**
 * The tail of a log of `size` bytes, for an appender that holds the lock. With `known` (the
 * tail this process saw last), only the frames appended since are read and checked;
 * otherwise the last frame is checked from the end in O(1), and only if that fails is the
 * last good frame searched for.
 */
export const locateTail = (store: ByteStore, size: number, known?: Tail): TailState => {
  let header: "none" | "torn" | "ok"
  try {
    header = checkHeader(store, size)
  } catch (e) {
    if (e instanceof LogCorrupt) return { kind: "corrupt", error: e }
    throw e
  }
  if (header === "none") return { kind: "ok", tail: emptyTail(0) }
  if (header === "torn") return { kind: "torn", tail: emptyTail(0), problem: "the file header is cut short" }
  if (size === HEADER_SIZE) return { kind: "ok", tail: emptyTail(HEADER_SIZE) }

  if (known !== undefined && known.end >= HEADER_SIZE && known.end <= size && trailerHashIs(store, known.end, known.hash)) {
    if (known.end === size) return { kind: "ok", tail: known }
    const reader = new FrameReader(store, { offset: known.end, prevHash: known.hash, index: known.nextIndex })
    try {
      while (reader.advance()) {
        // checking only
      }
    } catch (e) {
      if (e instanceof LogCorrupt) return { kind: "corrupt", error: e }
      throw e
    }
    return reader.torn === undefined
      ? { kind: "ok", tail: reader.tail() }
      : { kind: "torn", tail: reader.tail(), problem: reader.torn.problem }
  }

  const last = frameEndingAt(store, size)
  if (last !== undefined) return { kind: "ok", tail: last }
  const good = lastGoodTail(store, size)
  const cls = classifyTail(store, good.end, size)
  if (cls.torn) return { kind: "torn", tail: good, problem: cls.problem }
  return { kind: "corrupt", error: damageAfter(store, good, size) }
}

/** Describes the bytes after the last good frame that are not a torn tail. */
const damageAfter = (store: ByteStore, good: Tail, size: number): LogCorrupt => {
  const head = readAt(store, good.end, 8)
  const len = head.length === 8 && head.readUInt32LE(0) === HEAD_MAGIC ? head.readUInt32LE(4) : MAX_PAYLOAD + 1
  const intact = len <= MAX_PAYLOAD && good.end + FRAME_OVERHEAD + len <= size &&
    checkFrame(readAt(store, good.end, FRAME_OVERHEAD + len), 0, FRAME_OVERHEAD + len).ok
  return new LogCorrupt({
    path: store.path,
    offset: good.end,
    index: good.nextIndex,
    kind: intact ? "chain" : "framing",
    problem: intact
      ? "an intact frame here does not link to the frame before it: frames were removed or reordered"
      : `the ${size - good.end} bytes after the last good frame are neither frames nor a torn append`,
  })
}

// ---------------------------------------------------------------------------------------------
// Full verification (`als audit`)

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

/** The offset of the next frame at or after `from` whose own checksum holds, or -1. */
const nextIntactFrame = (store: ByteStore, win: Window, from: number, size: number): number => {
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
    const head = readAt(store, at, 8)
    if (head.length === 8) {
      const len = head.readUInt32LE(4)
      if (len <= MAX_PAYLOAD && at + FRAME_OVERHEAD + len <= size) {
        const frame = readAt(store, at, FRAME_OVERHEAD + len)
        if (checkFrame(frame, 0, frame.length).ok) return at
      }
    }
    p = at + 1
  }
  return -1
}

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
      const next = nextIntactFrame(store, win, pos + 1, size)
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
