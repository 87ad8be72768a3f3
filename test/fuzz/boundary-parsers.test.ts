// The smaller parsers at als's other trust boundaries, fuzzed through their public APIs: what
// a registry answers (WWW-Authenticate, token and error bodies, realm URLs), what a pool's
// `info` file or a blob's footer holds, and what a user types (source specs, platforms).
// Property for each: any input gives a value or the parser's own typed refusal, never
// another throw, and what is accepted is typed.
import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import fc from "fast-check"
import { isDigest } from "../../src/domain/Digest.ts"
import { InvalidLayerInfo, parseLayerInfo } from "../../src/domain/LayerInfo.ts"
import { InvalidPlatform, parsePlatform } from "../../src/domain/Platform.ts"
import { parseTokenResponse, parseWwwAuthenticate } from "../../src/registry/Auth.ts"
import { parseErrorBody } from "../../src/registry/RegistryError.ts"
import { parseSourceSpec, SpecError } from "../../src/sources/SourceSpec.ts"
import { parseEstargzFooter, parseZstdChunkedFooter } from "../../src/verify/Toc.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

/** JSON texts, including the non-object documents (`null`, `1`, `"x"`, `[]`) a hostile server sends. */
const jsonText = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.constantFrom("null", "1", '"x"', "[]", "{}", "true", '{"token":null}', '{"__proto__":{"token":"x"}}'),
  fc.string({ maxLength: 40 }),
)

const throwsOnly = (f: () => unknown, ...allowed: Array<abstract new (...args: never) => unknown>): void => {
  try {
    f()
  } catch (e) {
    if (!allowed.some((c) => e instanceof c)) throw e
  }
}

describe("other boundary parsers, fuzzed", () => {
  test("regression: a token server answering `null` is a BadResponse reason, not a TypeError (a defect of the pull)", () => {
    const r = parseTokenResponse("null", 0)
    expect(Either.isLeft(r) && r.left).toContain("not a JSON object")
  })

  test("WWW-Authenticate: any header gives challenges with string params", () => {
    const header = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.array(fc.constantFrom("Bearer", "Basic", " ", ",", "=", '"', "\\", "realm", "__proto__", "x", "\t", '"a,b"'), { maxLength: 20 })
        .map((p) => p.join("")),
    )
    fc.assert(
      fc.property(header, (h) => {
        for (const c of parseWwwAuthenticate(h)) {
          expect(typeof c.scheme).toBe("string")
          for (const v of Object.values(c.params)) expect(typeof v).toBe("string")
        }
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("token answers: any text gives a token with a finite expiry, or a reason", () => {
    fc.assert(
      fc.property(jsonText, (t) => {
        const r = parseTokenResponse(t, 1_700_000_000_000)
        if (Either.isRight(r)) {
          expect(typeof r.right.token).toBe("string")
          expect(r.right.token.length).toBeGreaterThan(0)
          expect(Number.isNaN(r.right.expiresAt)).toBe(false)
        } else expect(typeof r.left).toBe("string")
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("registry error bodies: any text gives a list of string codes and messages", () => {
    fc.assert(
      fc.property(jsonText, (t) => {
        for (const d of parseErrorBody(t)) {
          expect(typeof d.code).toBe("string")
          expect(typeof d.message).toBe("string")
        }
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("a pool's info: any text gives parsed facts (digests are Digests) or InvalidLayerInfo", () => {
    const info = fc.oneof(
      jsonText,
      fc.record({
        "compressed-diff-digest": fc.oneof(fc.string(), fc.constant(`sha256:${"a".repeat(64)}`), fc.jsonValue()),
        "compressed-size": fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
        "diff-digest": fc.oneof(fc.string(), fc.constant(`sha256:${"b".repeat(64)}`)),
        "diff-size": fc.oneof(fc.integer({ min: -2, max: 10 }), fc.jsonValue()),
        compression: fc.oneof(fc.integer({ min: -1, max: 5 }), fc.jsonValue()),
        "toc-digest": fc.oneof(fc.string(), fc.constant(null)),
      }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
    )
    fc.assert(
      fc.property(info, (t) => {
        throwsOnly(() => {
          const f = parseLayerInfo(t)
          for (const d of [f.digest, f.diffId, f.tocDigest]) if (d !== undefined) expect(isDigest(d)).toBe(true)
          for (const n of [f.size, f.diffSize]) if (n !== undefined) expect(Number.isSafeInteger(n)).toBe(true)
        }, InvalidLayerInfo)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("blob footers: any bytes give a safe byte range / offset, or nothing", () => {
    const footer = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 70 }),
      fc.uint8Array({ minLength: 56, maxLength: 56 }).map((b) => Buffer.concat([b, Buffer.from("GNUlInUx")])),
    )
    fc.assert(
      fc.property(footer, fc.string({ maxLength: 40 }), (b, s) => {
        const r = parseZstdChunkedFooter(b)
        if (r !== undefined) for (const n of [r.offset, r.length]) expect(Number.isSafeInteger(n) && n >= 0).toBe(true)
        const off = parseEstargzFooter(Buffer.from(`${s}STARGZ${s}`, "latin1"))
        if (off !== undefined) expect(Number.isSafeInteger(off) && off >= 0).toBe(true)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("source specs and platforms typed by a user: a value or SpecError / InvalidPlatform", () => {
    const spec = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.constantFrom("oci:", "oci-archive:", "docker-archive:", "docker://", "dir:", "x:", ""), fc.string({ maxLength: 30 }))
        .map(([a, b]) => a + b),
    )
    const platform = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.array(fc.constantFrom("linux", "amd64", "arm", "arm64", "v7", "v8", "/", "", "windows", "386", "x"), { maxLength: 5 }).map((p) => p.join("/")),
    )
    const host = { os: "linux", architecture: "amd64", variant: undefined }
    fc.assert(
      fc.property(spec, platform, (s, p) => {
        throwsOnly(() => parseSourceSpec(s), SpecError)
        throwsOnly(() => {
          const r = parsePlatform(p, host)
          expect(typeof r.os).toBe("string")
          expect(typeof r.architecture).toBe("string")
        }, InvalidPlatform)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)
})
