/**
 * Reading a log forward, frame by frame: the chunked reader behind `stream` and `fold`, and
 * the forward check of frames other processes appended (LogTail.ts). It stops at the first bad
 * bytes and, by the rule in LogFrames.ts, ends there at a torn tail or throws LogCorrupt.
 */
import { Buffer } from "node:buffer"
import { LogCorrupt, LogDecodeError, type ProblemKind } from "./LogErrors.ts"
import {
  bytesEqual,
  FRAME_HEAD,
  FRAME_OVERHEAD,
  frameHashOk,
  GENESIS,
  hashHex,
  HEAD_MAGIC,
  HEADER_SIZE,
  MAX_PAYLOAD,
  readIndex,
  TAIL_MAGIC,
} from "./LogFormat.ts"
import {
  checkHeader,
  classifyTail,
  type FoldEntry,
  frameEndingAt,
  type LogEntry,
  type Position,
  type Tail,
  Window,
} from "./LogFrames.ts"
import type { ByteStore } from "./LogStore.ts"
import { decoded, decodeInto } from "./Payload.ts"

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
