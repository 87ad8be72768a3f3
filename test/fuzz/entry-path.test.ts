// Property tests of tar entry names → paths inside the layer (src/extract/EntryPath.ts), the
// lexical half of "no write outside staging" (OverlayWriter's symlink checks are the other;
// test/fuzz/ingest-staging.test.ts runs both together). Properties: any name gives clean
// components or a PathEscape, never another throw; clean components never climb, are never
// empty or `.`, and never hold a `/`; cleaning is idempotent; and where it succeeds it agrees
// with POSIX path normalization rooted at `/`.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import * as path from "node:path"
import { cleanComponents, cleanPath, PathEscape } from "../../src/extract/EntryPath.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

const nameArb = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.array(fc.constantFrom("a", "b", ".", "..", "", "...", ". .", "\u0000", "é", "a..", "..a"), { maxLength: 8 }).map((c) => c.join("/")),
  fc.array(fc.constantFrom("a", "..", ".", ""), { maxLength: 8 }).map((c) => `/${c.join("/")}`),
)

const tryClean = (name: string): Array<string> | PathEscape => {
  try {
    return cleanComponents(name)
  } catch (e) {
    if (e instanceof PathEscape) return e
    throw e
  }
}

/** How many `..` climb above the start, reading the name lexically from a root. */
const climbsOut = (name: string): boolean => {
  let depth = 0
  for (const c of name.split("/")) {
    if (c === "" || c === ".") continue
    if (c === "..") {
      if (depth === 0) return true
      depth--
    } else depth++
  }
  return false
}

describe("entry names, fuzzed", () => {
  test("any name: clean components or a PathEscape exactly when it climbs above the root", () => {
    fc.assert(
      fc.property(nameArb, (name) => {
        const r = tryClean(name)
        expect(r instanceof PathEscape).toBe(climbsOut(name))
        if (r instanceof PathEscape) {
          expect(r.entryName).toBe(name)
          return
        }
        for (const c of r) {
          expect(c === "" || c === "." || c === "..").toBe(false)
          expect(c.includes("/")).toBe(false)
        }
        // the same place POSIX normalization finds, rooted at the layer's `/`
        expect(`/${r.join("/")}`).toBe(path.posix.normalize(`/${name}`).replace(/(.)\/$/, "$1"))
        // idempotent
        expect(cleanPath(r.join("/"))).toBe(r.join("/"))
      }),
      fuzzParams(4),
    )
  }, FUZZ_TIMEOUT_MS)
})
