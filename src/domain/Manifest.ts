/**
 * Manifests, indexes and image configs as registries serve them (OCI 1.x and Docker v2
 * schema 2). All of it is untrusted input: every descriptor digest goes through the Digest
 * schema, so a "digest" such as `sha256:../x` is refused here, long before it could name a
 * path. Schema 1 and unknown media types are refused rather than guessed at.
 */
import { createHash } from "node:crypto"
import { Either, ParseResult, Schema } from "effect"
import { Digest } from "./Digest.ts"
import type { CompressionName } from "./LayerInfo.ts"
import type { Platform } from "./Platform.ts"
import { TocAnnotation } from "./TocAnnotation.ts"

export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  DockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  OciLayer: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OciLayerNondistributable: "application/vnd.oci.image.layer.nondistributable.v1.tar",
  OciLayerNondistributableGzip: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  OciLayerNondistributableZstd: "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  DockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
} as const

/** The manifest types we can resolve, best first: the Accept list for manifest GETs. */
export const manifestMediaTypes: ReadonlyArray<string> = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
]

export const isIndexMediaType = (t: string): boolean =>
  t === MediaType.OciIndex || t === MediaType.DockerManifestList

export const isConfigMediaType = (t: string): boolean => t === MediaType.OciConfig || t === MediaType.DockerConfig

const layerCompressions: Record<string, CompressionName> = {
  [MediaType.OciLayer]: "none",
  [MediaType.OciLayerGzip]: "gzip",
  [MediaType.OciLayerZstd]: "zstd",
  [MediaType.OciLayerNondistributable]: "none",
  [MediaType.OciLayerNondistributableGzip]: "gzip",
  [MediaType.OciLayerNondistributableZstd]: "zstd",
  [MediaType.DockerLayerGzip]: "gzip",
  [MediaType.DockerForeignLayerGzip]: "gzip",
}

/** The compression a layer media type implies; undefined for anything that is not a layer tar. */
export const layerCompression = (mediaType: string): CompressionName | undefined => layerCompressions[mediaType]

export { TocAnnotation }

/** The layer's TOC digest from its annotations, when it has a valid one. */
export const tocDigest = (annotations: Readonly<Record<string, string>> | undefined): Digest | undefined => {
  for (const key of [TocAnnotation.zstdChunked, TocAnnotation.estargz]) {
    const v = annotations?.[key]
    if (v !== undefined && Schema.is(Digest)(v)) return v
  }
  return undefined
}

// ---- schemas -------------------------------------------------------------------------

const Annotations = Schema.Record({ key: Schema.String, value: Schema.String })
const Size = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

export const Descriptor = Schema.Struct({
  mediaType: Schema.String,
  digest: Digest,
  size: Size,
  annotations: Schema.optional(Annotations),
  urls: Schema.optional(Schema.Array(Schema.String)),
})
export type Descriptor = typeof Descriptor.Type

export const PlatformSpec = Schema.Struct({
  architecture: Schema.String,
  os: Schema.String,
  variant: Schema.optional(Schema.String),
  "os.version": Schema.optional(Schema.String),
  "os.features": Schema.optional(Schema.Array(Schema.String)),
})

export const IndexEntry = Schema.Struct({
  ...Descriptor.fields,
  platform: Schema.optional(PlatformSpec),
})
export type IndexEntry = typeof IndexEntry.Type

export const OciManifest = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.optional(Schema.Literal(MediaType.OciManifest)),
  artifactType: Schema.optional(Schema.String),
  config: Descriptor,
  layers: Schema.Array(Descriptor),
  annotations: Schema.optional(Annotations),
})

export const DockerManifest = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.Literal(MediaType.DockerManifest),
  config: Descriptor,
  layers: Schema.Array(Descriptor),
})

export const OciIndex = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.optional(Schema.Literal(MediaType.OciIndex)),
  manifests: Schema.Array(IndexEntry),
  annotations: Schema.optional(Annotations),
})

export const DockerManifestList = Schema.Struct({
  schemaVersion: Schema.Literal(2),
  mediaType: Schema.Literal(MediaType.DockerManifestList),
  manifests: Schema.Array(Schema.Struct({ ...Descriptor.fields, platform: PlatformSpec })),
})

export const ImageConfig = Schema.Struct({
  architecture: Schema.String,
  os: Schema.String,
  variant: Schema.optional(Schema.String),
  created: Schema.optional(Schema.String),
  rootfs: Schema.Struct({
    type: Schema.Literal("layers"),
    diff_ids: Schema.Array(Digest),
  }),
  config: Schema.optional(Schema.Unknown),
  history: Schema.optional(Schema.Unknown),
})
export type ImageConfig = typeof ImageConfig.Type

// ---- parsing -------------------------------------------------------------------------

export class ManifestError extends Schema.TaggedError<ManifestError>()("ManifestError", {
  kind: Schema.Literal("InvalidManifest", "UnsupportedMediaType"),
  reason: Schema.String,
}) {
  override get message() {
    return this.reason
  }
}

const invalid = (reason: string) => new ManifestError({ kind: "InvalidManifest", reason })
const unsupported = (reason: string) => new ManifestError({ kind: "UnsupportedMediaType", reason })

export type ParsedManifest =
  | {
      readonly kind: "image"
      readonly mediaType: string
      readonly config: Descriptor
      readonly layers: ReadonlyArray<Descriptor>
    }
  | {
      readonly kind: "index"
      readonly mediaType: string
      readonly manifests: ReadonlyArray<IndexEntry>
    }

const describeParseError = (what: string, e: ParseResult.ParseError): string => {
  const shown = ParseResult.ArrayFormatter.formatErrorSync(e)
    .map((i) => `${i.path.length ? i.path.join(".") : "(top)"}: ${i.message}`)
    .join("; ")
  return `invalid ${what}: ${shown}`
}

// The first problem only: formatting every problem of a hostile document (a 4 MiB manifest of
// 400,000 bad layers) took minutes of CPU.
const decode = <A, I>(schema: Schema.Schema<A, I>, what: string, json: unknown): Either.Either<A, ManifestError> =>
  Either.mapLeft(Schema.decodeUnknownEither(schema, { errors: "first" })(json), (e) => invalid(describeParseError(what, e)))

const parseJson = (what: string, bytes: Uint8Array): Either.Either<Record<string, unknown>, ManifestError> => {
  try {
    const v: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes))
    if (v === null || typeof v !== "object" || Array.isArray(v)) return Either.left(invalid(`${what} is not a JSON object`))
    return Either.right(v as Record<string, unknown>)
  } catch (e) {
    return Either.left(invalid(`${what} is not valid JSON: ${(e as Error).message}`))
  }
}

/** `application/json; charset=utf-8` → `application/json` */
const bareMediaType = (contentType: string | undefined | null): string =>
  (contentType ?? "").split(";")[0].trim().toLowerCase()

// Registries that know no better send these for any JSON; the body's own fields decide then.
const genericContentTypes = new Set(["", "application/json", "text/plain", "application/octet-stream", "binary/octet-stream"])

const schema1Reason =
  "this is a Docker schema 1 manifest, a format retired in 2019 that als does not read; push the image again with a current tool (podman push, skopeo copy)"

/**
 * Parses a manifest or index. The body's own `mediaType` wins over the Content-Type header
 * (the body is what the digest covers); without either, the shape decides.
 */
export const parseManifest = (
  bytes: Uint8Array,
  contentType?: string | null,
): Either.Either<ParsedManifest, ManifestError> =>
  Either.flatMap(parseJson("manifest", bytes), (json): Either.Either<ParsedManifest, ManifestError> => {
    const header = bareMediaType(contentType)
    if (json.schemaVersion === 1 || header === MediaType.DockerSchema1 || header === MediaType.DockerSchema1Signed) {
      return Either.left(unsupported(schema1Reason))
    }
    const declared = typeof json.mediaType === "string" ? json.mediaType : undefined
    let mediaType: string = declared ?? (genericContentTypes.has(header) ? "" : header)
    if (mediaType === "") {
      if (Array.isArray(json.manifests)) mediaType = MediaType.OciIndex
      else if (json.config !== undefined && Array.isArray(json.layers)) mediaType = MediaType.OciManifest
      else return Either.left(invalid("manifest has neither a mediaType nor the fields of a manifest or index"))
    }
    switch (mediaType) {
      case MediaType.OciManifest:
        return Either.map(decode(OciManifest, "OCI image manifest", json), (m) => ({
          kind: "image" as const,
          mediaType,
          config: m.config,
          layers: m.layers,
        }))
      case MediaType.DockerManifest:
        return Either.map(decode(DockerManifest, "Docker image manifest", json), (m) => ({
          kind: "image" as const,
          mediaType,
          config: m.config,
          layers: m.layers,
        }))
      case MediaType.OciIndex:
        return Either.map(decode(OciIndex, "OCI image index", json), (m) => ({
          kind: "index" as const,
          mediaType,
          manifests: m.manifests,
        }))
      case MediaType.DockerManifestList:
        return Either.map(decode(DockerManifestList, "Docker manifest list", json), (m) => ({
          kind: "index" as const,
          mediaType,
          manifests: m.manifests,
        }))
      case MediaType.DockerSchema1:
      case MediaType.DockerSchema1Signed:
        return Either.left(unsupported(schema1Reason))
      default:
        return Either.left(
          unsupported(`unsupported manifest media type ${JSON.stringify(mediaType)}: not a container image (an OCI artifact?)`),
        )
    }
  })

export const parseImageConfig = (bytes: Uint8Array): Either.Either<ImageConfig, ManifestError> =>
  Either.flatMap(parseJson("image config", bytes), (json) => decode(ImageConfig, "image config", json))

/** The platform an index entry declares, in the domain's shape. */
export const entryPlatform = (e: IndexEntry): Platform | undefined =>
  e.platform
    ? { os: e.platform.os, architecture: e.platform.architecture, variant: e.platform.variant || undefined }
    : undefined

/** The platform an image config describes. */
export const configPlatform = (c: ImageConfig): Platform => ({
  os: c.os,
  architecture: c.architecture,
  variant: c.variant || undefined,
})

// ---- digests of content --------------------------------------------------------------

/** Digest of some bytes with the given algorithm (sha256 unless told otherwise). */
export const digestBytes = (bytes: Uint8Array, algorithm: "sha256" | "sha512" = "sha256"): Digest =>
  `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}` as Digest
