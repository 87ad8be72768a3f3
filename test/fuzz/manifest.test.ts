// Property tests of the manifest, index and image-config decoders (src/domain/Manifest.ts):
// the first thing a registry's answer meets. Properties: any bytes and any Content-Type give
// a value or a typed ManifestError, never a throw; whatever is accepted is typed (every
// digest a Digest, every size a safe non-negative integer, kinds and fields as promised),
// including after arbitrary mutations of valid documents; and a valid document reads back
// as written.
import { describe, expect, test } from "bun:test"
import { Either, Schema } from "effect"
import fc from "fast-check"
import { Digest } from "../../src/domain/Digest.ts"
import {
  type Descriptor,
  ManifestError,
  MediaType,
  type ParsedManifest,
  parseImageConfig,
  parseManifest,
  tocDigest,
} from "../../src/domain/Manifest.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

const enc = new TextEncoder()
const isDigest = Schema.is(Digest)

const digestArb = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => `sha256:${Buffer.from(b).toString("hex")}`),
  fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => `sha512:${Buffer.from(b).toString("hex")}`),
)

/** Strings a hostile registry would put where a digest or media type goes. */
const hostileString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom("sha256:../../etc/passwd", "sha256:", `sha256:${"A".repeat(64)}`, `sha256:${"a".repeat(63)}`, `sha256:${"a".repeat(65)}`,
    `sha256:${"a".repeat(64)}\n`, ` sha256:${"a".repeat(64)}`, `md5:${"a".repeat(32)}`, "__proto__", "constructor"),
)

const layerTypes = [MediaType.OciLayerGzip, MediaType.OciLayerZstd, MediaType.OciLayer, MediaType.DockerLayerGzip]

const descriptorArb = fc.record({
  mediaType: fc.constantFrom(...layerTypes),
  digest: digestArb,
  size: fc.nat({ max: 2 ** 40 }),
  annotations: fc.option(fc.dictionary(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), { maxKeys: 3 }), { nil: undefined }),
}).map((d) => (d.annotations === undefined ? { mediaType: d.mediaType, digest: d.digest, size: d.size } : d))

const platformArb = fc.record({
  architecture: fc.constantFrom("amd64", "arm64", "s390x"),
  os: fc.constantFrom("linux", "windows"),
  variant: fc.option(fc.constantFrom("v8", "v7"), { nil: undefined }),
}).map((p) => (p.variant === undefined ? { architecture: p.architecture, os: p.os } : p))

/** Valid documents of every kind, with the media type in the body, in the header only, or in neither. */
const validDoc = fc.oneof(
  fc.record({ config: descriptorArb, layers: fc.array(descriptorArb, { maxLength: 4 }), docker: fc.boolean() }).map((m) => ({
    kind: "image" as const,
    json: {
      schemaVersion: 2,
      mediaType: m.docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { ...m.config, mediaType: m.docker ? MediaType.DockerConfig : MediaType.OciConfig },
      layers: m.layers,
    } as Record<string, unknown>,
  })),
  fc.record({
    manifests: fc.array(fc.tuple(descriptorArb, platformArb), { maxLength: 4 }),
    docker: fc.boolean(),
  }).map((m) => ({
    kind: "index" as const,
    json: {
      schemaVersion: 2,
      mediaType: m.docker ? MediaType.DockerManifestList : MediaType.OciIndex,
      manifests: m.manifests.map(([d, platform]) => ({
        ...d,
        mediaType: m.docker ? MediaType.DockerManifest : MediaType.OciManifest,
        platform,
      })),
    } as Record<string, unknown>,
  })),
)

const contentType = fc.option(
  fc.oneof(
    fc.constantFrom(...Object.values(MediaType), "application/json", "application/json; charset=utf-8", "", "text/html"),
    fc.string({ maxLength: 40 }),
  ),
  { nil: undefined },
)

/** What a caller relies on in an accepted manifest. */
const assertTyped = (m: ParsedManifest): void => {
  const descriptor = (d: Descriptor) => {
    expect(isDigest(d.digest)).toBe(true)
    expect(Number.isSafeInteger(d.size) && d.size >= 0).toBe(true)
    expect(typeof d.mediaType).toBe("string")
    if (d.annotations !== undefined) for (const v of Object.values(d.annotations)) expect(typeof v).toBe("string")
    const toc = tocDigest(d.annotations)
    if (toc !== undefined) expect(isDigest(toc)).toBe(true)
  }
  if (m.kind === "image") {
    descriptor(m.config)
    m.layers.forEach(descriptor)
  } else {
    for (const e of m.manifests) {
      descriptor(e)
      if (e.platform !== undefined) {
        expect(typeof e.platform.os).toBe("string")
        expect(typeof e.platform.architecture).toBe("string")
      }
    }
  }
}

const checkManifest = (bytes: Uint8Array, ct: string | undefined): Either.Either<ParsedManifest, ManifestError> => {
  const r = parseManifest(bytes, ct)
  if (Either.isLeft(r)) {
    expect(r.left).toBeInstanceOf(ManifestError)
    expect(r.left.message.length).toBeGreaterThan(0)
  } else assertTyped(r.right)
  return r
}

/** A JSON path into a document, and a hostile value to put there (or a deletion). */
const mutate = (doc: unknown, path: ReadonlyArray<number>, value: unknown, del: boolean): unknown => {
  if (path.length === 0 || doc === null || typeof doc !== "object") return del ? undefined : value
  const keys = Object.keys(doc)
  if (keys.length === 0) return doc
  const k = keys[path[0] % keys.length]
  const copy: Record<string, unknown> = Array.isArray(doc) ? ([...doc] as unknown as Record<string, unknown>) : { ...doc }
  const next = mutate((doc as Record<string, unknown>)[k], path.slice(1), value, del)
  if (next === undefined && !Array.isArray(doc)) delete copy[k]
  else copy[k] = next
  return copy
}

const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  hostileString,
  fc.constantFrom(-1, 1.5, 2 ** 53, 2 ** 64, 1e308, -0, 1, "2", null, [], {}, true),
)

describe("manifest decoders, fuzzed", () => {
  test("arbitrary bytes and Content-Types: a manifest or a ManifestError, never a throw", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), contentType, (b, ct) => void checkManifest(b, ct)), fuzzParams(2))
  }, FUZZ_TIMEOUT_MS)

  test("arbitrary JSON values: a manifest or a ManifestError, and what is accepted is typed", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), contentType, (v, ct) => void checkManifest(enc.encode(JSON.stringify(v)), ct)),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("valid documents mutated anywhere (values replaced, keys deleted): a manifest or a ManifestError, typed", () => {
    fc.assert(
      fc.property(
        validDoc,
        fc.array(fc.tuple(fc.array(fc.nat(), { maxLength: 5 }), hostileValue, fc.boolean()), { minLength: 1, maxLength: 3 }),
        contentType,
        (doc, edits, ct) => {
          let json: unknown = doc.json
          for (const [path, value, del] of edits) json = mutate(json, path, value, del) ?? {}
          checkManifest(enc.encode(JSON.stringify(json)), ct)
        },
      ),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("valid documents read back as written, whatever generic Content-Type comes with them", () => {
    fc.assert(
      fc.property(validDoc, fc.constantFrom(undefined, "", "application/json", "text/plain"), fc.boolean(), (doc, ct, dropType) => {
        const json = { ...doc.json }
        // OCI documents may leave the media type out: the shape decides then
        const oci = json.mediaType === MediaType.OciManifest || json.mediaType === MediaType.OciIndex
        if (dropType && oci) delete json.mediaType
        const r = checkManifest(enc.encode(JSON.stringify(json)), ct)
        expect(Either.isRight(r)).toBe(true)
        const m = Either.getOrThrow(r)
        expect(m.kind).toBe(doc.kind)
        const strip = (x: unknown) => JSON.parse(JSON.stringify(x))
        if (m.kind === "image") {
          expect(strip(m.layers)).toEqual(doc.json.layers)
          expect(strip(m.config)).toEqual(doc.json.config)
        } else expect(strip(m.manifests)).toEqual(doc.json.manifests)
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)

  test("image configs: arbitrary JSON and mutated valid configs give a config with Digest diff_ids, or a ManifestError", () => {
    const validConfig = fc.record({
      architecture: fc.constantFrom("amd64", "arm64"),
      os: fc.constant("linux"),
      rootfs: fc.record({ type: fc.constant("layers"), diff_ids: fc.array(digestArb, { maxLength: 4 }) }),
      config: fc.jsonValue({ maxDepth: 2 }),
    })
    const input = fc.oneof(
      fc.jsonValue({ maxDepth: 4 }),
      fc.tuple(validConfig, fc.array(fc.nat(), { maxLength: 4 }), hostileValue, fc.boolean()).map(([c, p, v, d]) => mutate(c, p, v, d) ?? {}),
    )
    fc.assert(
      fc.property(fc.oneof(input.map((v) => enc.encode(JSON.stringify(v))), fc.uint8Array({ maxLength: 100 })), (b) => {
        const r = parseImageConfig(b)
        if (Either.isLeft(r)) expect(r.left).toBeInstanceOf(ManifestError)
        else {
          for (const d of r.right.rootfs.diff_ids) expect(isDigest(d)).toBe(true)
          expect(typeof r.right.os).toBe("string")
          expect(typeof r.right.architecture).toBe("string")
        }
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("TOC digest annotations: a Digest or nothing, whatever the annotation holds", () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom("io.github.containers.zstd-chunked.manifest-checksum", "containerd.io/snapshot/stargz/toc.digest", "x"),
          hostileString,
        ),
        (a) => {
          const d = tocDigest(a)
          if (d !== undefined) expect(isDigest(d)).toBe(true)
        },
      ),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)
})

// Found while fuzzing with big generated documents, pinned.
describe("manifest decoder regressions", () => {
  test("an 800 KB manifest of 400,000 invalid layers is refused at once (formatting every problem took 29 s of CPU)", () => {
    const body = JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: {}, layers: Array.from({ length: 400_000 }, () => 1) })
    const t0 = performance.now()
    const r = parseManifest(enc.encode(body))
    const ms = performance.now() - t0
    expect(Either.isLeft(r)).toBe(true)
    expect(Either.isLeft(r) && r.left.message).toContain("invalid OCI image manifest: config.mediaType: is missing")
    // generous for a busy 2-core machine; the unbounded formatter needed ~30 s here
    expect(ms).toBeLessThan(8000)
  }, 60_000)

  test("a 4 MB image config of 1,000,000 invalid diff_ids is refused at once (took 20 s)", () => {
    const body = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: Array.from({ length: 1_000_000 }, () => "x") } })
    const t0 = performance.now()
    const r = parseImageConfig(enc.encode(body))
    expect(Either.isLeft(r)).toBe(true)
    expect(performance.now() - t0).toBeLessThan(8000)
  }, 60_000)
})
