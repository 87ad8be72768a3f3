// Property tests of the seed's `.pool` path layout: the encoder (src/domain/PoolPaths.ts) that
// turns a layer's annotations into path elements, and the decoder of those names
// (src/serve/Names.ts, public API), which reads names any process walking the mount hands in.
// Properties: every element is exactly one safe path component; encode → decode is the
// identity; the decoder takes any string to a value or undefined, never a throw, and accepts
// only the one canonical spelling of each annotation; ref directory names likewise.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import * as path from "node:path"
import type { Digest } from "../../src/domain/Digest.ts"
import { poolElement, seedAnnotations, seedPoolPath, TARGET_LAYER_DIGEST, TARGET_REFERENCE } from "../../src/domain/PoolPaths.ts"
import { decodeRef, encodeRef } from "../../src/domain/StorePaths.ts"
import { parsePoolElement, parseRefName, parseRootfsName, poolTarget } from "../../src/serve/Names.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

const digestArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `sha256:${Buffer.from(b).toString("hex")}` as Digest)

/** Text that survives UTF-8 both ways (no lone surrogates), without the NUL and newline the decoder refuses. */
const text = (minLength: number) =>
  fc.string({ unit: "grapheme", minLength, maxLength: 40 }).filter((s) => !/[\0\n]/.test(s))

/** Annotation keys as OCI writes them (never holding '='), and values of any text. */
const annotations = fc.dictionary(text(1).filter((k) => !k.includes("=") && k !== TARGET_LAYER_DIGEST && k !== TARGET_REFERENCE), text(0), {
  maxKeys: 5,
})

const refArb = fc.option(
  fc.tuple(fc.stringMatching(/^[a-z0-9]{1,10}(\/[a-z0-9]{1,10}){0,2}$/), fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,10}$/)).map(
    ([p, t]) => `quay.io/${p}:${t}`,
  ),
  { nil: undefined },
)

describe("seed pool paths, fuzzed", () => {
  test("every element is one safe path component, and the path stays under the pool", () => {
    fc.assert(
      fc.property(digestArb, refArb, annotations, (digest, ref, a) => {
        const p = seedPoolPath("/pool", digest, ref, a)
        expect(path.normalize(p)).toBe(p)
        expect(p.startsWith("/pool/")).toBe(true)
        const elements = p.slice("/pool/".length).split("/")
        expect(elements.at(-1)).toBe(`rootfs.${digest}`)
        for (const e of elements) {
          expect(e.length).toBeGreaterThan(0)
          expect(e === "." || e === "..").toBe(false)
          expect(e).not.toMatch(/[\0/]/)
        }
        expect(elements.length).toBe(Object.keys(a).length + (ref === undefined ? 1 : 2) + 1)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("round trip: encoded annotations decode to the same layer, ref and annotations", () => {
    fc.assert(
      fc.property(digestArb, refArb, annotations, (digest, ref, a) => {
        const elements = seedAnnotations(digest, ref, a).map(([k, v]) => poolElement(k, v))
        const decoded = elements.map((e) => parsePoolElement(e))
        expect(decoded.every((d) => d !== undefined)).toBe(true)
        const target = poolTarget(decoded as Array<readonly [string, string]>, parseRootfsName(`rootfs.${digest}`)!)
        expect(target).toEqual({ digest, ref, annotations: a })
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("any name: an annotation or undefined, never a throw; only the canonical spelling is accepted", () => {
    const nameArb = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.stringMatching(/^[A-Za-z0-9+_/=]{0,40}$/),
      fc.tuple(text(0), text(0)).map(([k, v]) => poolElement(k, v)),
      fc.tuple(text(0), text(0), fc.nat(), fc.constantFrom("=", "A", "_", "/", "\0", "+")).map(([k, v, at, c]) => {
        const e = poolElement(k, v)
        const i = at % (e.length + 1)
        return e.slice(0, i) + c + e.slice(i + 1)
      }),
    )
    fc.assert(
      fc.property(nameArb, (name) => {
        const kv = parsePoolElement(name)
        if (kv === undefined) return
        const [k, v] = kv
        expect(k.length).toBeGreaterThan(0)
        expect(k.includes("=")).toBe(false)
        expect(`${k}${v}`).not.toMatch(/[\0\n]/)
        // one spelling per annotation: the decoder is the encoder's inverse
        expect(poolElement(k, v)).toBe(name)
      }),
      fuzzParams(4),
    )
  }, FUZZ_TIMEOUT_MS)

  test("poolTarget on arbitrary element lists: a target or undefined; a target re-encodes to the same elements", () => {
    const pair = fc.oneof(
      fc.tuple(text(1).filter((k) => !k.includes("=")), text(0)),
      fc.tuple(fc.constantFrom(TARGET_LAYER_DIGEST, TARGET_REFERENCE), fc.oneof(text(0), digestArb, fc.constant("docker.io/library/alpine:latest"))),
    )
    fc.assert(
      fc.property(fc.array(pair, { maxLength: 5 }), digestArb, (pairs, digest) => {
        const t = poolTarget(pairs, digest)
        if (t === undefined) return
        expect(t.digest).toBe(digest)
        expect(seedAnnotations(t.digest, t.ref, t.annotations)).toEqual(pairs)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("ref directory names: any name decodes to a normalized reference or undefined; accepted names are canonical", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.stringMatching(/^[A-Za-z0-9+/=]{0,60}$/), refArb.map((r) => encodeRef(r ?? ""))), (name) => {
        const raw = decodeRef(name)
        if (raw !== undefined) expect(encodeRef(raw)).toBe(name)
        const ref = parseRefName(name)
        if (ref !== undefined) expect(encodeRef(ref)).toBe(name)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)
})

// Counterexamples found by the properties above, pinned.
describe("seed pool path regressions found by fuzzing", () => {
  test("an annotation named __proto__ survives encode → decode (was dropped by poolTarget: `rest[k] = v`)", () => {
    const digest = `sha256:${"0".repeat(64)}` as Digest
    const a = JSON.parse('{"__proto__":"", "z":"1"}') as Record<string, string>
    const elements = seedAnnotations(digest, undefined, a).map(([k, v]) => parsePoolElement(poolElement(k, v))!)
    const t = poolTarget(elements, digest)
    expect(Object.entries(t!.annotations)).toEqual([["__proto__", ""], ["z", "1"]])
    // and the layer's path is the one the annotations name: the same elements again
    expect(seedAnnotations(digest, undefined, t!.annotations)).toEqual(elements)
  })
})
