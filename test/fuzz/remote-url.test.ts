// Realm and redirect URLs from registries (src/registry/RemoteUrl.ts), fuzzed: any string is an
// http(s) URL or a refusal, never a throw (issue 11, class 3).
import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import fc from "fast-check"
import { parseRemoteUrl } from "../../src/registry/RemoteUrl.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

describe("remote URLs, fuzzed", () => {
  test("realm URLs: any string is an http(s) URL or a refusal", () => {
    const url = fc.oneof(
      fc.tuple(fc.constantFrom("http://", "https://", "HTTPS://", "file://", "//", ""), fc.stringMatching(/^[a-z0-9.:@\[\]%/?#-]{0,30}$/))
        .map(([a, b]) => a + b),
      fc.string({ maxLength: 60 }),
      fc.constantFrom("file:///etc/passwd", "ftp://x/", "http://", "https://[::1]:5000/t", "javascript:alert(1)", "HTTP://X/"),
    )
    fc.assert(
      fc.property(url, (u) => {
        const r = parseRemoteUrl(u)
        if (Either.isRight(r)) expect(/^https?:$/.test(new URL(String(r.right)).protocol)).toBe(true)
        else expect(typeof r.left).toBe("string")
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

})
