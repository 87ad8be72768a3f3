// The `info` file is the codec of a VerifiedLayer (domain/LayerInfo.ts): the bytes containers/
// storage decodes (ALS-PROTOCOL.md §3) stay exactly what they were, and parsing them back gives
// the same facts as claims.
import { describe, expect, test } from "bun:test"
import { parseDigest } from "../../../src/domain/Digest.ts"
import type { VerifiedLayer } from "../../../src/domain/LayerDescriptor.ts"
import { parseLayerInfo, renderLayerInfo } from "../../../src/domain/LayerInfo.ts"

const d = (c: string) => parseDigest(`sha256:${c.repeat(64)}`)

describe("info codec", () => {
  test("a VerifiedLayer renders to the exact info podman reads, and parses back to the same facts", () => {
    const v: VerifiedLayer = { digest: d("a"), size: 123, diffId: d("b"), diffSize: 456, compression: "zstd", tocDigest: d("c") }
    const text = renderLayerInfo(v)
    expect(text).toBe(
      `{"id":"","parent":"","created":"1970-01-01T00:00:00Z",` +
        `"compressed-diff-digest":"${d("a")}","compressed-size":123,"diff-digest":"${d("b")}","diff-size":456,` +
        `"compression":4,"toc-digest":"${d("c")}","flags":{"expected-layer-diffid":"${d("b")}"}}`,
    )
    expect(parseLayerInfo(text)).toEqual(v)
  })

  test("without a TOC digest there is no toc-digest key; gzip is code 2, none 0; an unknown diff size stays -1", () => {
    for (const [compression, code] of [["gzip", 2], ["none", 0]] as const) {
      const v: VerifiedLayer = { digest: d("a"), size: 1, diffId: d("b"), diffSize: -1, compression }
      const json = JSON.parse(renderLayerInfo(v))
      expect("toc-digest" in json).toBe(false)
      expect(json.compression).toBe(code)
      expect(parseLayerInfo(renderLayerInfo(v))).toEqual({ ...v, tocDigest: undefined })
    }
  })
})
