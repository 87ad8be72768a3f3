import { describe, expect, test } from "bun:test"
import { Buffer } from "node:buffer"
import { Packr, Unpackr } from "msgpackr"
import { fastUnpack, Unsupported } from "../../../src/events/FastUnpack.ts"
import { decodeFast, encodePayload } from "../../../src/events/Payload.ts"
import { sampleEvent } from "./support.ts"

const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

// a small deterministic PRNG (mulberry32)
const rng = (seed: number) => () => {
  seed |= 0
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const alphabet = ["a", "Z", "0", "-", ":", "é", "ß", "✓", "日本", "😀", " ", "\n", "\u0000"]

const randomValue = (r: () => number, depth: number): unknown => {
  const k = Math.floor(r() * (depth >= 2 ? 6 : 9))
  const len = () => [0, 1, 5, 15, 16, 31, 32, 70, 255, 256, 300][Math.floor(r() * 11)]
  switch (k) {
    case 0:
      return [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31, 2 ** 32 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31)][Math.floor(r() * 18)]
    case 1:
      return (r() - 0.5) * 10 ** Math.floor(r() * 20)
    case 2:
      return r() < 0.5
    case 3:
      return null
    case 4:
    case 5:
      return Array.from({ length: len() }, () => alphabet[Math.floor(r() * alphabet.length)]).join("")
    case 6:
      return Array.from({ length: Math.min(len(), 18) }, () => randomValue(r, depth + 1))
    default: {
      const o: Record<string, unknown> = {}
      const n = Math.min(len(), 18)
      for (let i = 0; i < n; i++) o[`k${Math.floor(r() * 40)}${alphabet[i % alphabet.length]}`] = randomValue(r, depth + 1)
      return o
    }
  }
}

const viaFast = (value: unknown) => {
  const bytes = packr.pack(value)
  // decode from inside a larger buffer, as the log reader does
  const big = Buffer.alloc(bytes.length + 200, 0xee)
  bytes.copy(big, 100)
  return { fast: fastUnpack(big, 100, 100 + bytes.length), reference: unpackr.unpack(bytes) }
}

describe("FastUnpack agrees with msgpackr's Unpackr", () => {
  test("on 3000 random values (strings of every header size, ints of every width, nesting)", () => {
    const r = rng(42)
    for (let i = 0; i < 3000; i++) {
      const { fast, reference } = viaFast(randomValue(r, 0))
      expect(fast).toEqual(reference)
    }
  })

  test("on long strings (str16, str32) and big maps and arrays (map16, array16)", () => {
    const big: Record<string, number> = {}
    for (let i = 0; i < 70; i++) big[`key${i}`] = i
    for (const v of ["x".repeat(70_000), "ü".repeat(40_000), big, Array.from({ length: 70_000 }, (_, i) => i % 300)]) {
      const { fast, reference } = viaFast(v)
      expect(fast).toEqual(reference)
    }
  })

  test("on every sample event payload", () => {
    for (let i = 0; i < 12; i++) {
      const p = encodePayload({ id: `id-${i}`, time: 1_700_000_000_000 + i, host: "h", pid: 1, workflow: "w" }, sampleEvent(i))
      expect(fastUnpack(p, 0, p.length)).toEqual(unpackr.unpack(p))
    }
  })

  test("outside its subset it throws Unsupported, and the payload decoder falls back to Unpackr", () => {
    const odd = [{ bin: new Uint8Array([1, 2, 3]) }, JSON.parse(`{"__proto__": {"polluted": true}}`), { big: 2n ** 60n }]
    for (const d of odd) {
      const bytes = packr.pack(d)
      expect(() => fastUnpack(bytes, 0, bytes.length)).toThrow(Unsupported)
    }
    const env = { id: "i", time: 1, host: "h", pid: 1, workflow: "w" }
    const payload = packr.pack({ t: "LayerMissing", v: 1, e: env, d: { layer: "sha256:x", extra: new Uint8Array([9]) } })
    const decoded = decodeFast(payload, 0, payload.length)
    expect(decoded).toMatchObject({ event: { _tag: "LayerMissing", layer: "sha256:x" } })
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  test("a value that does not end where its frame says is refused", () => {
    const bytes = packr.pack({ a: "hello" })
    expect(() => fastUnpack(bytes, 0, bytes.length + 1)).toThrow(Unsupported)
    expect(() => fastUnpack(bytes, 0, bytes.length - 1)).toThrow(Unsupported)
  })

  test("keys that need quoting in generated code, and more shapes than the cache holds, decode the same", () => {
    const hostile = ['a"b', "a\\b", "\u2028", "}; globalThis.pwned = 1; ({", "constructor", "toString", "0", "1e3", "`${x}`", "日本", ""]
    const o: Record<string, unknown> = {}
    for (const [i, k] of hostile.entries()) o[k] = i
    for (let round = 0; round < 3; round++) {
      const { fast, reference } = viaFast(o)
      expect(fast).toEqual(reference)
      expect(Object.keys(fast as object)).toEqual(Object.keys(reference as object))
    }
    expect((globalThis as Record<string, unknown>).pwned).toBeUndefined()
    // 6000 distinct shapes: past the shape cache's bound maps are built key by key, still right
    for (let i = 0; i < 6000; i++) {
      const { fast, reference } = viaFast({ [`s${i}`]: i, common: "x" })
      expect(fast).toEqual(reference)
    }
  })

  test("payloads: `_tag` and `v` land in the event and envelope; a data field named _tag cannot override the tag", () => {
    const env = { id: "i", time: 1, host: "h", pid: 1, workflow: "w" }
    const p = encodePayload(env, { _tag: "LayerMissing", layer: "sha256:abc" } as never)
    expect(decodeFast(p, 0, p.length)).toEqual({ envelope: { ...env, v: 1 }, event: { _tag: "LayerMissing", layer: "sha256:abc" } })
    const sneaky = packr.pack({ t: "LayerMissing", v: 1, e: env, d: { _tag: "LayerFound", layer: "sha256:abc" } })
    expect(decodeFast(sneaky, 0, sneaky.length)).toMatchObject({ event: { _tag: "LayerMissing" } })
    const reordered = packr.pack({ v: 1, t: "LayerMissing", d: { layer: "sha256:abc" }, e: env })
    expect(decodeFast(reordered, 0, reordered.length)).toEqual({ envelope: { ...env, v: 1 }, event: { layer: "sha256:abc", _tag: "LayerMissing" } })
  })
})
