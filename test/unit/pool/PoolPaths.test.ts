import { describe, expect, test } from "bun:test"
import { parseDigest } from "../../../src/domain/Digest.ts"
import { cvmfsPoolPath, poolElement, seedAnnotations, seedPoolPath } from "../../../src/domain/PoolPaths.ts"
import { planLink } from "../../../src/verify/PoolFacts.ts"

const d = parseDigest(`sha256:${"0f".repeat(32)}`)
const diffId = parseDigest(`sha256:${"1e".repeat(32)}`)
const b64 = (s: string) => Buffer.from(s).toString("base64").replaceAll("/", "_")

describe("seed pool layout", () => {
  test("one element per annotation, ordered by key, with the two target annotations", () => {
    const p = seedPoolPath("/r/.pool", d, "docker.io/library/a:1", { "z.last": "1", "a.first": "2" })
    expect(p).toBe([
      "/r/.pool",
      b64("a.first=2"),
      b64(`containers/image/target.layerdigest=${d}`),
      b64("containers/image/target.reference=docker.io/library/a:1"),
      b64("z.last=1"),
      `rootfs.${d}`,
    ].join("/"))
  })
  test("the order never depends on the order annotations came in", () => {
    const a = seedAnnotations(d, "r", { b: "1", a: "2", c: "3" })
    const b = seedAnnotations(d, "r", { c: "3", a: "2", b: "1" })
    expect(a).toEqual(b)
  })
  test("a base64 `/` never splits a path element", () => {
    const e = poolElement("k", "??>")
    expect(e.includes("/")).toBe(false)
    expect(Buffer.from(e.replaceAll("_", "/"), "base64").toString()).toBe("k=??>")
  })
  test("cvmfs layout", () => {
    expect(cvmfsPoolPath("/cvmfs/x", d)).toBe(`/cvmfs/x/.layers/0f/${"0f".repeat(32)}/layerfs`)
  })
})

describe("link plan: info must be right", () => {
  const meta = { size: 10, diffId, compression: "gzip" as const }
  test("a pool with a matching info and blob links everything", () => {
    const plan = planLink(d, { diff: "/p/diff", blob: { path: "/p/blob", size: 10 }, info: { digest: d, size: 10, diffId } }, undefined)
    expect(plan).toMatchObject({ _tag: "Link", blob: "/p/blob", facts: { digest: d, diffId, size: 10 } })
  })
  test("registry metadata wins and a disagreeing pool is refused", () => {
    const other = parseDigest(`sha256:${"2d".repeat(32)}`)
    const plan = planLink(d, { diff: "/p", blob: { path: "/p/blob", size: 10 }, info: { digest: d, diffId: other } }, meta)
    expect(plan._tag).toBe("Refuse")
  })
  test("an info naming another layer is refused", () => {
    const other = parseDigest(`sha256:${"2d".repeat(32)}`)
    expect(planLink(d, { diff: "/p", info: { digest: other, diffId, size: 10 } }, meta)._tag).toBe("Refuse")
  })
  test("a tree without blob: refused without registry metadata, blob fetched with it", () => {
    expect(planLink(d, { diff: "/p" }, undefined)).toMatchObject({ _tag: "Refuse" })
    expect(planLink(d, { diff: "/p" }, meta)).toMatchObject({ _tag: "NeedBlob", facts: { diffId, size: 10 } })
  })
  test("a blob of the wrong size is not exposed", () => {
    expect(planLink(d, { diff: "/p", blob: { path: "/b", size: 9 } }, meta)._tag).toBe("NeedBlob")
    expect(planLink(d, { diff: "/p", blob: { path: "/b", size: 9 }, info: { digest: d, diffId, size: 10 } }, undefined)._tag).toBe("Refuse")
  })
})
