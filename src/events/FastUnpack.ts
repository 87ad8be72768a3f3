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

/** Refuses a fixed-width read past the payload's end: a length or number cut short. */
const need = (n: number): void => {
  if (pos + n > end) throw unsupported
}

const u8 = (): number => {
  need(1)
  return src[pos++]
}
const u16 = (): number => {
  need(2)
  const v = (src[pos] << 8) | src[pos + 1]
  pos += 2
  return v
}
const u32 = (): number => {
  need(4)
  const v = src.readUInt32BE(pos)
  pos += 4
  return v
}

const key = (): string => {
  const b = u8()
  if (b >= 0xa0 && b < 0xc0) return str(b & 0x1f)
  if (b === 0xd9) return str(u8())
  if (b === 0xda) return str(u16())
  throw unsupported
}

// Maps are built through shapes: the same key sequence (events of one type, envelopes) gets
// one constructor returning an object literal, ~3× cheaper than adding keys one by one with
// o[k] = v (a generic store for every key). Keys and values wait on a scratch stack until the
// map's shape is known. The constructors are generated, from keys quoted with JSON.stringify
// (a JSON string is a JS string literal; `__proto__`, the one key a literal treats specially,
// is refused before). Bounded: past MAX_SHAPES or MAX_SHAPE_KEYS keys, maps are built the
// plain way.
type Ctor = (vals: Array<unknown>, base: number) => Record<string, unknown>
interface Shape {
  readonly key: string
  readonly children: Array<Shape>
  ctor: Ctor | undefined
}
const MAX_SHAPES = 4096
const MAX_SHAPE_KEYS = 32
const root: Shape = { key: "", children: [], ctor: undefined }
let shapes = 0
let codegen = true

const keyStack: Array<string> = []
const valStack: Array<unknown> = []
let sp = 0

const makeCtor = (keys: Array<string>, base: number, n: number): Ctor | undefined => {
  if (!codegen) return undefined
  const fields: Array<string> = []
  for (let i = 0; i < n; i++) fields.push(`${JSON.stringify(keys[base + i])}: v[b + ${i}]`)
  try {
    return new Function("v", "b", `return { ${fields.join(", ")} }`) as Ctor
  } catch {
    codegen = false // an engine that forbids code from strings: plain maps from now on
    return undefined
  }
}

const shapeCtor = (base: number, n: number): Ctor | undefined => {
  let node = root
  for (let i = 0; i < n; i++) {
    const k = keyStack[base + i]
    const children = node.children
    let next: Shape | undefined
    for (let c = 0; c < children.length; c++) {
      if (children[c].key === k) {
        next = children[c]
        break
      }
    }
    if (next === undefined) {
      if (shapes >= MAX_SHAPES) return undefined
      shapes++
      next = { key: k, children: [], ctor: undefined }
      children.push(next)
    }
    node = next
  }
  return (node.ctor ??= makeCtor(keyStack, base, n))
}

/**
 * A map of n entries; with `extraKey`, one more entry (first or last, as `extraFirst` says)
 * goes into the same literal, so a payload's `_tag` and `v` need no property added later.
 */
const map = (n: number, extraKey?: string, extraValue?: unknown, extraFirst?: boolean): Record<string, unknown> => {
  if (n > end - pos) throw unsupported
  const base = sp
  const m = extraKey === undefined ? n : n + 1
  const from = extraKey !== undefined && extraFirst === true ? base + 1 : base
  sp += m
  for (let i = 0; i < n; i++) {
    const k = key()
    if (k === "__proto__" || k === extraKey) throw unsupported
    keyStack[from + i] = k
    valStack[from + i] = read()
  }
  if (extraKey !== undefined) {
    const at = extraFirst === true ? base : base + n
    keyStack[at] = extraKey
    valStack[at] = extraValue
  }
  sp = base
  const ctor = m <= MAX_SHAPE_KEYS ? shapeCtor(base, m) : undefined
  if (ctor !== undefined) return ctor(valStack, base)
  const o: Record<string, unknown> = {}
  for (let i = 0; i < m; i++) o[keyStack[base + i]] = valStack[base + i]
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
      need(4)
      const v = src.readFloatBE(pos)
      pos += 4
      return v
    }
    case 0xcb: {
      need(8)
      const v = src.readDoubleBE(pos)
      pos += 8
      return v
    }
    case 0xcc:
      return u8()
    case 0xcd:
      return u16()
    case 0xce:
      return u32()
    case 0xd0:
      need(1)
      return src.readInt8(pos++)
    case 0xd1: {
      need(2)
      const v = src.readInt16BE(pos)
      pos += 2
      return v
    }
    case 0xd2: {
      need(4)
      const v = src.readInt32BE(pos)
      pos += 4
      return v
    }
    case 0xd9:
      return str(u8())
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
  sp = 0 // a throw may have left it anywhere
  end = stop
  const value = read()
  if (pos !== stop) throw unsupported
  return value
}

/** What `fastPayload` read: module fields rather than a fresh object per frame. */
export const payload = {
  tag: "",
  version: 0,
  envelope: undefined as unknown as Record<string, unknown>,
  /** the event data with `_tag` first */
  event: undefined as unknown as Record<string, unknown>,
}

const expectKey = (name: string): void => {
  if (key() !== name) throw unsupported
}

/**
 * Reads an event payload as `encodePayload` writes it, `{ t, v, e, d }` in that order, into
 * `payload`: the envelope gets `v` and the data `_tag`, built in one literal each. Throws
 * Unsupported for anything else (the caller decodes such payloads the general way).
 */
export const fastPayload = (buf: Buffer, start: number, stop: number): void => {
  src = buf
  pos = start
  sp = 0
  end = stop
  if (pos >= end || src[pos++] !== 0x84) throw unsupported
  expectKey("t")
  const tag = read()
  expectKey("v")
  const version = read()
  if (typeof tag !== "string" || typeof version !== "number") throw unsupported
  expectKey("e")
  let b = u8()
  const envelope = b >= 0x80 && b < 0x90 ? map(b & 0x0f, "v", version, false) : undefined
  expectKey("d")
  b = u8()
  const event = b >= 0x80 && b < 0x90 ? map(b & 0x0f, "_tag", tag, true) : b === 0xde ? map(u16(), "_tag", tag, true) : undefined
  if (envelope === undefined || event === undefined || pos !== stop) throw unsupported
  payload.tag = tag
  payload.version = version
  payload.envelope = envelope
  payload.event = event
}
