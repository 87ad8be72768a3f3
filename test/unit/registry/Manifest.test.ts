import { describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { Either } from "effect"
import type { Digest } from "../../../src/domain/Digest.ts"
import {
  digestBytes,
  layerCompression,
  type ManifestError,
  MediaType,
  type ParsedManifest,
  parseImageConfig,
  parseManifest,
  tocDigest,
} from "../../../src/domain/Manifest.ts"
import { verifyContent } from "../../../src/registry/Verify.ts"

const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v))
const dg = (c: string) => `sha256:${c.repeat(64)}`
const desc = (mediaType: string, c = "a", extra: Record<string, unknown> = {}) => ({ mediaType, digest: dg(c), size: 10, ...extra })

const ok = (bytes: Uint8Array, contentType?: string): ParsedManifest => {
  const r = parseManifest(bytes, contentType)
  if (Either.isLeft(r)) throw new Error(`expected success, got ${r.left.message}`)
  return r.right
}
const bad = (bytes: Uint8Array, contentType?: string): ManifestError => {
  const r = parseManifest(bytes, contentType)
  if (Either.isRight(r)) throw new Error("expected a failure")
  return r.left
}

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: desc(MediaType.OciConfig, "c"),
  layers: [desc(MediaType.OciLayerGzip, "1", { annotations: { "org.example": "yes" } }), desc(MediaType.OciLayerZstd, "2")],
}

describe("parseManifest", () => {
  test("OCI image manifest keeps layer annotations", () => {
    const m = ok(enc(ociManifest))
    expect(m.kind).toBe("image")
    if (m.kind !== "image") return
    expect(m.mediaType).toBe(MediaType.OciManifest)
    expect(m.config.digest).toBe(dg("c") as Digest)
    expect(m.layers.map((l) => l.digest)).toEqual([dg("1"), dg("2")] as Digest[])
    expect(m.layers[0].annotations).toEqual({ "org.example": "yes" })
  })

  test("Docker v2 schema 2 manifest", () => {
    const m = ok(
      enc({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: desc(MediaType.DockerConfig), layers: [desc(MediaType.DockerLayerGzip)] }),
      MediaType.DockerManifest,
    )
    expect(m).toMatchObject({ kind: "image", mediaType: MediaType.DockerManifest })
  })

  test("OCI index and Docker manifest list", () => {
    const entry = desc(MediaType.OciManifest, "d", { platform: { os: "linux", architecture: "arm", variant: "v7" } })
    const idx = ok(enc({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [entry] }))
    expect(idx.kind).toBe("index")
    if (idx.kind === "index") expect(idx.manifests[0].platform).toEqual({ os: "linux", architecture: "arm", variant: "v7" })
    const list = ok(enc({ schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [{ ...entry, mediaType: MediaType.DockerManifest }] }))
    expect(list).toMatchObject({ kind: "index", mediaType: MediaType.DockerManifestList })
  })

  test("without a mediaType in the body, the Content-Type header decides", () => {
    const { mediaType: _, ...rest } = ociManifest
    expect(ok(enc(rest), `${MediaType.OciManifest}; charset=utf-8`).mediaType).toBe(MediaType.OciManifest)
  })

  test("without mediaType or a specific header, the shape decides", () => {
    const { mediaType: _, ...rest } = ociManifest
    expect(ok(enc(rest), "application/json").mediaType).toBe(MediaType.OciManifest)
    expect(ok(enc({ schemaVersion: 2, manifests: [] })).kind).toBe("index")
  })

  test("refuses schema 1, by body or by header", () => {
    const e1 = bad(enc({ schemaVersion: 1, name: "x", tag: "1", fsLayers: [] }))
    expect(e1.kind).toBe("UnsupportedMediaType")
    expect(e1.message).toMatch(/schema 1/)
    expect(bad(enc({ schemaVersion: 2 }), MediaType.DockerSchema1Signed).kind).toBe("UnsupportedMediaType")
  })

  test("refuses unknown media types", () => {
    const e = bad(enc({ ...ociManifest, mediaType: "application/vnd.example.thing+json" }))
    expect(e.kind).toBe("UnsupportedMediaType")
    expect(e.message).toContain("application/vnd.example.thing+json")
    expect(bad(enc({ schemaVersion: 2, layers: [] }), "application/vnd.example.other").kind).toBe("UnsupportedMediaType")
  })

  test.each([
    ["sha256:../x"],
    ["sha256:../../etc/passwd"],
    [`sha256:${"A".repeat(64)}`],
    [`md5:${"a".repeat(32)}`],
    ["sha256:abc"],
    [""],
  ])("refuses the descriptor digest %j", (digest) => {
    const e = bad(enc({ ...ociManifest, layers: [{ ...desc(MediaType.OciLayerGzip), digest }] }))
    expect(e.kind).toBe("InvalidManifest")
    expect(e.message).toContain("layers.0.digest")
    expect(e.message).toContain("sha256:<64 lowercase hex>")
  })

  test("refuses a bad index entry digest too", () => {
    const e = bad(enc({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ ...desc(MediaType.OciManifest), digest: "sha256:../x" }] }))
    expect(e.message).toContain("manifests.0.digest")
  })

  test.each([
    ["not JSON", "{", /not valid JSON/],
    ["an array", "[]", /not a JSON object/],
    ["negative size", { ...ociManifest, config: { ...desc(MediaType.OciConfig), size: -1 } }, /config\.size/],
    ["missing layers", { schemaVersion: 2, mediaType: MediaType.OciManifest, config: desc(MediaType.OciConfig) }, /layers/],
    ["schemaVersion 3", { ...ociManifest, schemaVersion: 3 }, /schemaVersion/],
    ["a list entry without platform", { schemaVersion: 2, mediaType: MediaType.DockerManifestList, manifests: [desc(MediaType.DockerManifest)] }, /platform/],
    ["non-string annotations", { ...ociManifest, layers: [desc(MediaType.OciLayerGzip, "1", { annotations: { a: 1 } })] }, /annotations/],
  ])("refuses %s", (_, body, reason) => {
    const e = bad(enc(body))
    expect(e.kind).toBe("InvalidManifest")
    expect(e.message).toMatch(reason)
  })
})

describe("parseImageConfig", () => {
  test("reads os, architecture and diff_ids", () => {
    const r = parseImageConfig(enc({ architecture: "arm64", os: "linux", variant: "v8", rootfs: { type: "layers", diff_ids: [dg("1")] }, config: { Env: [] } }))
    expect(Either.isRight(r) && r.right).toMatchObject({ architecture: "arm64", os: "linux", variant: "v8", rootfs: { diff_ids: [dg("1")] } })
  })
  test("refuses a bad diff_id", () => {
    const r = parseImageConfig(enc({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: ["sha256:../x"] } }))
    expect(Either.isLeft(r) && r.left.message).toMatch(/rootfs\.diff_ids\.0/)
  })
})

describe("media types and annotations", () => {
  test("layerCompression", () => {
    expect(layerCompression(MediaType.OciLayer)).toBe("none")
    expect(layerCompression(MediaType.OciLayerGzip)).toBe("gzip")
    expect(layerCompression(MediaType.DockerLayerGzip)).toBe("gzip")
    expect(layerCompression(MediaType.OciLayerZstd)).toBe("zstd")
    expect(layerCompression("application/vnd.oci.image.layer.v1.tar+gzip+encrypted")).toBeUndefined()
    expect(layerCompression("application/vnd.cncf.helm.chart.content.v1.tar+gzip")).toBeUndefined()
  })
  test("tocDigest reads zstd:chunked and eStargz annotations, and only valid digests", () => {
    expect(tocDigest({ "io.github.containers.zstd-chunked.manifest-checksum": dg("e") })).toBe(dg("e") as Digest)
    expect(tocDigest({ "containerd.io/snapshot/stargz/toc.digest": dg("f") })).toBe(dg("f") as Digest)
    expect(tocDigest({ "io.github.containers.zstd-chunked.manifest-checksum": "sha256:../x" })).toBeUndefined()
    expect(tocDigest(undefined)).toBeUndefined()
  })
})

describe("content digests", () => {
  const bytes = enc(ociManifest)
  const real = `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest

  test("digestBytes", () => {
    expect(digestBytes(bytes)).toBe(real)
    expect(digestBytes(bytes, "sha512")).toBe(`sha512:${createHash("sha512").update(bytes).digest("hex")}` as Digest)
  })

  test("verifyContent accepts matching bytes and returns their digest", () => {
    expect(Either.getOrThrow(verifyContent("manifest", "r", bytes, { digest: real, size: bytes.length }))).toBe(real)
    expect(Either.getOrThrow(verifyContent("manifest", "r", bytes))).toBe(real)
  })

  test("verifyContent refuses a manifest that does not hash to the digest it was fetched by", () => {
    const tampered = enc({ ...ociManifest, layers: [] })
    const r = verifyContent("manifest", "127.0.0.1:5000/x@" + real, tampered, { digest: real })
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.code).toBe("DigestMismatch")
      expect(r.left.message).toContain(real)
      expect(r.left.message).toContain(digestBytes(tampered))
    }
  })

  test("verifyContent refuses a size that disagrees with the descriptor", () => {
    const r = verifyContent("config blob", "r", bytes, { digest: real, size: bytes.length + 1 })
    expect(Either.isLeft(r) && r.left.code).toBe("DigestMismatch")
  })
})
