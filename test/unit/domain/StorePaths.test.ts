import { describe, expect, test } from "bun:test"
import { decodeRef, defaultRoot, encodeRef, storePaths } from "../../../src/domain/StorePaths.ts"
import { parseDigest } from "../../../src/domain/Digest.ts"

const d = parseDigest(`sha256:${"ab".repeat(32)}`)

describe("StorePaths", () => {
  test("the :ref view is standard base64 with padding, as containers/storage names it", () => {
    expect(encodeRef("127.0.0.1:5000/test/busybox:1")).toBe("MTI3LjAuMC4xOjUwMDAvdGVzdC9idXN5Ym94OjE=")
    expect(decodeRef(encodeRef("docker.io/library/alpine:3.19"))).toBe("docker.io/library/alpine:3.19")
    expect(decodeRef("sha256:abc")).toBeUndefined()
    expect(decodeRef(".als")).toBeUndefined()
  })
  test("layout", () => {
    const p = storePaths("/s/")
    expect(p.layer(d)).toBe(`/s/${d}`)
    expect(p.refEntry("a/b:1", d)).toBe(`/s/${encodeRef("a/b:1")}/${d}`)
    expect(p.log).toBe("/s/.als/log")
    expect(p.pool).toBe("/s/.pool")
  })
  test("default root: --root, $ALS_ROOT, /var/lib/als for root, XDG for others", () => {
    expect(defaultRoot({ ALS_ROOT: "/x" }, 0, "/root")).toBe("/x")
    expect(defaultRoot({}, 0, "/root")).toBe("/var/lib/als")
    expect(defaultRoot({ XDG_DATA_HOME: "/h/data" }, 1000, "/h")).toBe("/h/data/als")
    expect(defaultRoot({}, 1000, "/h")).toBe("/h/.local/share/als")
  })
})

describe("Digest", () => {
  test("refuses digests with path elements", () => {
    expect(() => parseDigest("sha256:../../etc")).toThrow(/invalid digest/)
    expect(() => parseDigest(`sha256:${"AB".repeat(32)}`)).toThrow()
    expect(() => parseDigest(`sha256:${"ab".repeat(32)}/x`)).toThrow()
  })
})

describe("StorePaths refuses what was never parsed (issue 11, class 2)", () => {
  const p = storePaths("/s")
  test("a layer path only from a digest that parses, even when a cast let a string through", () => {
    expect(() => p.layer("sha256:../../etc" as never)).toThrow()
    expect(() => p.refEntry("a/b:1", "../x" as never)).toThrow()
  })
  test("a :ref view name never holds a slash (only an unparsed ref encodes to one)", () => {
    expect(encodeRef("ab?")).toBe("YWI/")
    expect(() => p.refDir("ab?")).toThrow()
    expect(() => p.refDir("")).toThrow()
    expect(p.refDir("docker.io/library/alpine:3.19")).toBe(`/s/${encodeRef("docker.io/library/alpine:3.19")}`)
  })
})
