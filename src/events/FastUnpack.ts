/**
 * A msgpack reader for the subset that `Packr({ useRecords: false })` writes for plain event
 * data (maps with string keys, arrays, strings, 32-bit integers, floats, booleans, nil).
 *
 * Why not msgpackr's Unpackr on the fold path: in Bun its string decoding (native extractor
 * or JS fallback) costs 1.5–2.5 µs per event payload, which alone caps a fold below 500k
 * events/s. This reader decodes the same payloads in ~0.5–0.7 µs, mostly by interning short
 * strings (keys, tags, host and workflow names repeat in every frame) instead of decoding them
 * again. Anything outside the subset (ext types, bin, 64-bit integers, non-string keys,
 * `__proto__`) throws `Unsupported`, and the caller falls back to Unpackr for that payload, so
 * the two always agree (test/unit/events/FastUnpack.test.ts checks it).
 */
import type { Buffer } from "node:buffer"

export class Unsupported extends Error {}
const unsupported = new Unsupported("outside the fast msgpack subset")

let src: Buffer
let pos = 0
let end = 0

type Slice = (buf: Buffer, start: number, end: number) => string
const utf8: Slice =
  typeof (globalThis.Buffer?.prototype as { utf8Slice?: unknown } | undefined)?.utf8Slice === "function"
    ? (b, s, e) => (b as unknown as { utf8Slice(s: number, e: number): string }).utf8Slice(s, e)
    : (b, s, e) => b.toString("utf8", s, e)

// Interned short strings: a 4096-slot table keyed by the length and a few bytes, checked
// byte by byte on a hit. Reusing the same string instance also makes property keys cheap.
const SLOTS = 4096
const slotString: Array<string | undefined> = new Array(SLOTS)
const slotBytes: Array<Uint8Array | undefined> = new Array(SLOTS)
const INTERN_MAX = 24

const str = (len: number): string => {
  const s = pos
  const e = s + len
  if (e > end) throw unsupported
  pos = e
  if (len > INTERN_MAX) return utf8(src, s, e)
  if (len === 0) return ""
  // O(1) slot: length and three sample bytes (keys and tags differ in at least one of them
  // almost always; a collision only costs a decode).
  const slot = (len * 0x9e37 + src[s] * 0x3b + src[e - 1] * 0x6f1 + src[s + (len >> 1)] * 0x1d) & (SLOTS - 1)
  const bytes = slotBytes[slot]
  if (bytes !== undefined && bytes.length === len) {
    let same = true
    for (let i = 0; i < len; i++) {
      if (bytes[i] !== src[s + i]) {
        same = false
        break
      }
    }
    if (same) return slotString[slot]!
  }
  const value = utf8(src, s, e)
  slotBytes[slot] = Uint8Array.prototype.slice.call(src, s, e)
  slotString[slot] = value
  return value
}

const u16 = (): number => {
  const v = (src[pos] << 8) | src[pos + 1]
  pos += 2
  return v
}
const u32 = (): number => {
  const v = src.readUInt32BE(pos)
  pos += 4
  return v
}

const key = (): string => {
  const b = src[pos++]
  if (b >= 0xa0 && b < 0xc0) return str(b & 0x1f)
  if (b === 0xd9) return str(src[pos++])
  if (b === 0xda) return str(u16())
  throw unsupported
}

const map = (n: number): Record<string, unknown> => {
  const o: Record<string, unknown> = {}
  for (let i = 0; i < n; i++) {
    const k = key()
    if (k === "__proto__") throw unsupported
    o[k] = read()
  }
  return o
}

const array = (n: number): Array<unknown> => {
  if (n > end - pos) throw unsupported
  const a = new Array(n)
  for (let i = 0; i < n; i++) a[i] = read()
  return a
}

const read = (): unknown => {
  if (pos >= end) throw unsupported
  const b = src[pos++]
  if (b < 0x80) return b
  if (b < 0x90) return map(b & 0x0f)
  if (b < 0xa0) return array(b & 0x0f)
  if (b < 0xc0) return str(b & 0x1f)
  if (b >= 0xe0) return b - 0x100
  switch (b) {
    case 0xc0:
      return null
    case 0xc2:
      return false
    case 0xc3:
      return true
    case 0xca: {
      const v = src.readFloatBE(pos)
      pos += 4
      return v
    }
    case 0xcb: {
      const v = src.readDoubleBE(pos)
      pos += 8
      return v
    }
    case 0xcc:
      return src[pos++]
    case 0xcd:
      return u16()
    case 0xce:
      return u32()
    case 0xd0:
      return src.readInt8(pos++)
    case 0xd1: {
      const v = src.readInt16BE(pos)
      pos += 2
      return v
    }
    case 0xd2: {
      const v = src.readInt32BE(pos)
      pos += 4
      return v
    }
    case 0xd9:
      return str(src[pos++])
    case 0xda:
      return str(u16())
    case 0xdb:
      return str(u32())
    case 0xdc:
      return array(u16())
    case 0xdd:
      return array(u32())
    case 0xde:
      return map(u16())
    case 0xdf:
      return map(u32())
    default:
      throw unsupported
  }
}

/** Decodes the one msgpack value in `buf[start, stop)`; throws Unsupported outside the subset. */
export const fastUnpack = (buf: Buffer, start: number, stop: number): unknown => {
  src = buf
  pos = start
  end = stop
  const value = read()
  if (pos !== stop) throw unsupported
  return value
}
