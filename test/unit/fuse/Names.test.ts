// Names in the served tree are parsed at the boundary: only the exact shapes the protocol
// uses mean anything; everything else is undefined (answered ENOENT).

import { describe, expect, test } from "bun:test"
import { parseKey, parseLayerEntry, parsePoolElement, parseRefName, parseRootfsName, poolTarget } from "../../../src/serve/Names.ts"
import type { Digest } from "../../../src/domain/Digest.ts"
import { poolElement, TARGET_LAYER_DIGEST, TARGET_REFERENCE } from "../../../src/domain/PoolPaths.ts"

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")
const D = `sha256:${"a".repeat(64)}` as Digest

describe("ref directory names", () => {
  test("a normalized reference in standard base64 is a ref", () => {
    expect(parseRefName(b64("docker.io/library/alpine:3.19"))).toBe("docker.io/library/alpine:3.19")
    expect(parseRefName(b64(`127.0.0.1:5000/test/busybox@${D}`))).toBe(`127.0.0.1:5000/test/busybox@${D}`)
  })
  test("anything else is not: unnormalized, path-shaped, not base64, overlong", () => {
    for (const name of [
      b64("alpine"), // podman sends the normalized name only
      b64("docker.io/library/alpine"), // no tag
      b64("../../etc/passwd"),
      b64(".."),
      b64("/etc"),
      b64("docker.io/library/alpine:3.19\n"),
      "not base64",
      b64("docker.io/library/alpine:3.19").replace(/=+$/, ""), // padding dropped
      "x".repeat(2000),
      "",
      ".",
      "..",
    ]) expect({ name, ref: parseRefName(name) }).toEqual({ name, ref: undefined })
  })
})

describe("keys, entries, .pool elements", () => {
  test("a key is a digest, nothing else", () => {
    expect(parseKey(D)).toBe(D)
    for (const k of ["sha256:", `sha256:${"A".repeat(64)}`, `sha256:${"a".repeat(63)}`, `${D}/..`, "..", "use"]) expect(parseKey(k)).toBeUndefined()
  })
  test("a layer directory holds diff, info, blob", () => {
    expect(["diff", "info", "blob", "use", "..", "DIFF"].map(parseLayerEntry)).toEqual(["diff", "info", "blob", undefined, undefined, undefined])
  })
  test(".pool elements decode as the store writes them (/ as _), rootfs names a digest", () => {
    const el = poolElement("org.example/key?", "v=1")
    expect(parsePoolElement(el)).toEqual(["org.example/key?", "v=1"])
    expect(parsePoolElement(b64("novalue"))).toBeUndefined()
    expect(parsePoolElement(b64("=v"))).toBeUndefined()
    expect(parsePoolElement("a/b=")).toBeUndefined()
    expect(parseRootfsName(`rootfs.${D}`)).toBe(D)
    expect(parseRootfsName(`rootfs.${D}x`)).toBeUndefined()
  })
  test("a .pool path names a layer only in the documented order and with its own digest", () => {
    const ref = "docker.io/library/alpine:3.19"
    const anns = [["a.key", "1"], [TARGET_LAYER_DIGEST, D], [TARGET_REFERENCE, ref]] as const
    expect(poolTarget(anns, D)).toEqual({ digest: D, ref, annotations: { "a.key": "1" } })
    expect(poolTarget([anns[1], anns[0], anns[2]], D)).toBeUndefined() // out of order
    expect(poolTarget(anns, `sha256:${"b".repeat(64)}` as Digest)).toBeUndefined() // another layer
    expect(poolTarget([anns[0], [TARGET_LAYER_DIGEST, D], [TARGET_REFERENCE, "../x"]], D)).toBeUndefined()
  })
})
