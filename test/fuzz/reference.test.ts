// Property tests of the image reference grammar (src/domain/Reference.ts, public API only):
// a reference comes from a user's argument, an annotation, or a pool's path, and its normal
// form names a directory of the store. Properties: any string is a Reference or an
// InvalidReference, in bounded time (a backtracking regex must not hang on a long name);
// an accepted reference is well formed; parse → format → parse is a fixed point; and names
// built from the grammar are accepted.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import { isDigest } from "../../src/domain/Digest.ts"
import { formatReference, InvalidReference, parseReference, type Reference } from "../../src/domain/Reference.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

/** The parse, or the InvalidReference; anything else thrown fails the property. */
const tryParse = (s: string): Reference | InvalidReference => {
  try {
    return parseReference(s)
  } catch (e) {
    if (e instanceof InvalidReference) return e
    throw e
  }
}

/** Bounded time per parse: generous for a busy machine, far below what a regex blow-up costs. */
const PARSE_BUDGET_MS = 1000

const timedParse = (s: string): Reference | InvalidReference => {
  const t0 = performance.now()
  const r = tryParse(s)
  const ms = performance.now() - t0
  if (ms > PARSE_BUDGET_MS) throw new Error(`parsing a ${s.length}-character reference took ${Math.round(ms)} ms`)
  return r
}

const assertWellFormed = (r: Reference): void => {
  const f = formatReference(r)
  expect(f).not.toMatch(/[\s\u0000-\u001f\u007f]/)
  expect(r.registry.length).toBeGreaterThan(0)
  expect(r.repository).toBe(r.repository.toLowerCase())
  expect(r.repository.split("/").every((c) => c.length > 0 && c !== "." && c !== "..")).toBe(true)
  expect(`${r.registry}/${r.repository}`.length).toBeLessThanOrEqual(255)
  if (r.digest !== undefined) expect(isDigest(r.digest)).toBe(true)
  else expect(r.tag).toBeDefined()
}

/** Characters of the grammar and its neighbours, so random strings get near valid references. */
const refChars = fc.constantFrom(..."abz09AZ._-/:@ \t\n\u0000é[]".split(""))
const refLike = fc.array(refChars, { maxLength: 80 }).map((a) => a.join(""))

/** Long runs of what a name component holds, then a character that breaks the match at the end. */
const backtrackBait = fc
  .tuple(fc.constantFrom("a", "a0", "a-", "a.", "a_", "ab.", "a.b-"), fc.integer({ min: 20, max: 120 }), fc.constantFrom("!", "A", "/", ":", "@", "-", "_"))
  .map(([unit, n, end]) => unit.repeat(n).slice(0, n) + end)

const hex = (n: number) => fc.uint8Array({ minLength: n / 2, maxLength: n / 2 }).map((b) => Buffer.from(b).toString("hex"))
const component = fc.stringMatching(/^[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,6}){0,2}$/)
const validRef = fc
  .record({
    registry: fc.option(
      fc.oneof(
        fc.constantFrom("localhost", "localhost:5000", "docker.io", "index.docker.io", "quay.io", "127.0.0.1:5000", "Registry.Example.COM"),
        fc.stringMatching(/^[a-z0-9]{1,8}\.[a-z]{2,5}(:[0-9]{1,5})?$/),
      ),
      { nil: undefined },
    ),
    path: fc.array(component, { minLength: 1, maxLength: 3 }),
    tag: fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined }),
    digest: fc.option(fc.oneof(hex(64).map((h) => `sha256:${h}`), hex(128).map((h) => `sha512:${h}`)), { nil: undefined }),
  })
  .map((r) => ({ ...r, text: `${r.registry ? `${r.registry}/` : ""}${r.path.join("/")}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}` }))
  // without a registry, a first component with '.' or ':' (or `localhost`) is read as one, as podman does
  .filter((r) => r.registry !== undefined || r.path.length === 1 || !(/[.:]/.test(r.path[0]) || r.path[0] === "localhost"))
  .filter((r) => r.text.length < 200 && !/^[a-f0-9]{64}$/.test(r.text))

describe("reference grammar, fuzzed", () => {
  test("any string: a Reference or an InvalidReference, in bounded time; accepted ones are well formed", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), refLike, backtrackBait), (s) => {
        const r = timedParse(s)
        if (!(r instanceof InvalidReference)) assertWellFormed(r)
      }),
      fuzzParams(4),
    )
  }, FUZZ_TIMEOUT_MS)

  test("parse → format → parse is a fixed point", () => {
    fc.assert(
      fc.property(fc.oneof(refLike, validRef.map((r) => r.text)), (s) => {
        const r = tryParse(s)
        if (r instanceof InvalidReference) return
        const f = formatReference(r)
        const again = tryParse(f)
        expect(again).not.toBeInstanceOf(InvalidReference)
        expect(formatReference(again as Reference)).toBe(f)
        expect(again).toEqual(r)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("names built from the grammar are accepted and keep their parts", () => {
    fc.assert(
      fc.property(validRef, (v) => {
        const r = tryParse(v.text)
        // a registry with upper-case letters and no '.' or ':' would be a Docker Hub path; ours all have one
        expect(r).not.toBeInstanceOf(InvalidReference)
        const ref = r as Reference
        assertWellFormed(ref)
        expect(ref.repository.endsWith(v.path.join("/"))).toBe(true)
        if (v.digest !== undefined) expect(ref.digest as string | undefined).toBe(v.digest)
        else expect(ref.tag).toBe(v.tag ?? "latest")
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)
})

// Found by the bounded-time property above, pinned.
describe("reference grammar regressions found by fuzzing", () => {
  test("a 40-letter name ending in '!' is refused at once (the grammar's empty '-*' separator backtracked exponentially: 27 letters took 52 s)", () => {
    for (const s of [`${"a".repeat(40)}!`, `x/${"a0".repeat(30)}A`, `${"ab".repeat(60)}:`]) {
      const r = timedParse(s)
      expect(r).toBeInstanceOf(InvalidReference)
    }
  }, 60_000)
})
