/**
 * Finding the tail of a log for `append` and `head`, and telling whether the bytes after the
 * last good frame are a torn append (cut by the next append) or damage (refused).
 */
import type { Buffer } from "node:buffer"
import { LogCorrupt } from "./LogErrors.ts"
import { bytesEqual, checkFrame, FRAME_OVERHEAD, GENESIS, HEAD_MAGIC, HEADER_SIZE, MAX_PAYLOAD, TAIL_MAGIC } from "./LogFormat.ts"
import { FrameReader } from "./FrameReader.ts"
import { checkHeader, classifyTail, emptyTail, frameEndingAt, lastGoodTail, type Tail } from "./LogFrames.ts"
import { type ByteStore, readAt } from "./LogStore.ts"

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
