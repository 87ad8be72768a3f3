/**
 * A `docker save` / `podman save` tarball as an image source. Its manifest.json lists, per
 * image, a config file and layer files (plain tar or gzip, as saved); there is no registry
 * manifest, so one is described from what the archive holds: each layer's digest and size
 * are those of the file as stored (hashed once, here, streaming from the archive), and the
 * config's digest is computed too. Files named after a digest are checked against it.
 */
import { Effect, Either, Schema } from "effect"
import { type Digest, isDigest, parseDigest } from "../domain/Digest.ts"
import { checkContent } from "../verify/Content.ts"
import { configPlatform, digestBytes, MediaType, parseImageConfig } from "../domain/Manifest.ts"
import { formatPlatform } from "../domain/Platform.ts"
import { formatReference, isReference, parseReference } from "../domain/Reference.ts"
import { sniffCompression } from "../extract/MediaType.ts"
import type { SourceImage } from "../workflows/ImageSource.ts"
import { describeLayer, type LayerDescriptor } from "../domain/LayerDescriptor.ts"
import type { FileTree } from "./FileTree.ts"
import { sourceError, type SourceError } from "./SourceError.ts"

export const ArchiveManifest = Schema.Array(Schema.Struct({
  Config: Schema.String,
  RepoTags: Schema.optionalWith(Schema.NullOr(Schema.Array(Schema.String)), { default: () => [] }),
  Layers: Schema.Array(Schema.String),
}))
export type ArchiveEntry = (typeof ArchiveManifest.Type)[number]

const MAX_JSON = 16 << 20

/** The digest a file name claims (`<hex>.tar`, `<hex>.json`, `blobs/sha256/<hex>`), if any. */
export const claimedDigest = (name: string): Digest | undefined => {
  const parts = name.split("/")
  const base = parts[parts.length - 1]!.replace(/\.(tar|json|tar\.gz|tgz)$/, "")
  const algo = parts.length >= 2 && (parts[parts.length - 2] === "sha256" || parts[parts.length - 2] === "sha512")
    ? parts[parts.length - 2]!
    : "sha256"
  const d = `${algo}:${base}`
  return isDigest(d) ? d : undefined
}

const sameRef = (a: string, b: string) => isReference(a) && isReference(b) && formatReference(parseReference(a)) === formatReference(parseReference(b))

export type ArchivePick =
  | { readonly _tag: "Picked"; readonly entry: ArchiveEntry; readonly index: number }
  | { readonly _tag: "TagNotFound"; readonly tags: ReadonlyArray<string> }
  | { readonly _tag: "Ambiguous"; readonly choices: ReadonlyArray<string> }
  | { readonly _tag: "Empty" }

/** Which image of the archive: `:REF` matches a RepoTags entry (normalized), `:@N` by position, else the only one. */
export const pickArchiveImage = (
  entries: ReadonlyArray<ArchiveEntry>,
  want: { readonly reference?: string | undefined; readonly index?: number | undefined },
): ArchivePick => {
  if (entries.length === 0) return { _tag: "Empty" }
  const allTags = entries.flatMap((e) => e.RepoTags ?? [])
  if (want.index !== undefined) {
    const e = entries[want.index]
    return e ? { _tag: "Picked", entry: e, index: want.index } : { _tag: "TagNotFound", tags: entries.map((_, i) => `@${i}`) }
  }
  if (want.reference !== undefined) {
    const i = entries.findIndex((e) => (e.RepoTags ?? []).some((t) => t === want.reference || sameRef(t, want.reference!)))
    return i === -1 ? { _tag: "TagNotFound", tags: allTags } : { _tag: "Picked", entry: entries[i]!, index: i }
  }
  if (entries.length === 1) return { _tag: "Picked", entry: entries[0]!, index: 0 }
  return { _tag: "Ambiguous", choices: entries.map((e, i) => (e.RepoTags?.length ? e.RepoTags.join(" ") : `@${i} (untagged)`)) }
}

export const readArchiveManifest = (tree: FileTree, label: string): Effect.Effect<ReadonlyArray<ArchiveEntry>, SourceError> =>
  Effect.gen(function*() {
    if (tree.size("manifest.json") === undefined) {
      return yield* sourceError(
        "NotALayout",
        label,
        `${tree.location} has no manifest.json, so it is not a docker-archive (an OCI archive? try oci-archive:${tree.location})`,
      )
    }
    const bytes = yield* Effect.try({ try: () => tree.read("manifest.json", MAX_JSON), catch: (e) => sourceError("Io", label, (e as Error).message) })
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder().decode(bytes))
    } catch (e) {
      return yield* sourceError("InvalidManifest", label, `manifest.json is not valid JSON: ${(e as Error).message}`)
    }
    const m = Schema.decodeUnknownEither(ArchiveManifest)(json)
    if (Either.isLeft(m)) return yield* sourceError("InvalidManifest", label, `manifest.json does not list images as docker save writes them: ${m.left.message.split("\n")[0]}`)
    return m.right
  })

/** The media type a stored layer file is, by its first bytes (docker-archive says nothing). */
const layerMediaType = (head: Uint8Array): string | undefined => {
  switch (sniffCompression(head)) {
    case "none":
      return MediaType.OciLayer
    case "gzip":
      return MediaType.OciLayerGzip
    case "zstd":
      return MediaType.OciLayerZstd
    default:
      return undefined
  }
}

export interface ArchiveImage extends SourceImage {
  /** layer digest → the archive member holding it */
  readonly files: ReadonlyMap<Digest, string>
}

/** Reads, hashes and checks one image of the archive. */
export const resolveArchive = (tree: FileTree, label: string, entry: ArchiveEntry): Effect.Effect<ArchiveImage, SourceError> =>
  Effect.gen(function*() {
    const io = <A>(f: () => A) => Effect.try({ try: f, catch: (e) => sourceError("Io", label, (e as Error).message) })
    if (tree.size(entry.Config) === undefined) {
      return yield* sourceError("BlobMissing", label, `the config ${entry.Config} named by manifest.json is not in the archive; save the image again`)
    }
    const configBytes = yield* io(() => tree.read(entry.Config, MAX_JSON))
    const claimed = claimedDigest(entry.Config)
    const { actual: configDigest, problem } = checkContent(configBytes, { digest: claimed })
    if (problem !== undefined) {
      return yield* sourceError("DigestMismatch", label, `the config ${entry.Config} hashes to ${configDigest}, not the digest its name gives: the archive is damaged; nothing was stored`)
    }
    const config = parseImageConfig(configBytes)
    if (Either.isLeft(config)) return yield* sourceError("InvalidManifest", label, config.left.reason)
    const diffIds = config.right.rootfs.diff_ids
    if (diffIds.length !== entry.Layers.length) {
      return yield* sourceError("InvalidManifest", label, `manifest.json lists ${entry.Layers.length} layers but the config lists ${diffIds.length} diff_ids; the archive is broken`)
    }
    const files = new Map<Digest, string>()
    const layers: Array<LayerDescriptor> = []
    for (const [i, name] of entry.Layers.entries()) {
      const size = tree.size(name)
      if (size === undefined) {
        return yield* sourceError("BlobMissing", label, `layer ${i} (${name}) named by manifest.json is not in the archive; save the image again`)
      }
      const mediaType = layerMediaType(yield* io(() => tree.head(name, 8)))
      if (mediaType === undefined) {
        return yield* sourceError("UnsupportedMediaType", label, `layer ${i} (${name}) is neither a tar nor gzip- or zstd-compressed`)
      }
      const digest = parseDigest(`sha256:${yield* io(() => tree.hash(name, "sha256"))}`)
      const named = claimedDigest(name)
      // podman names a layer file by its DiffID, docker >= 25 by its blob digest: either holds
      if (named !== undefined && named !== digest && !(mediaType === MediaType.OciLayer && named === diffIds[i])) {
        return yield* sourceError("DigestMismatch", label, `layer ${i} (${name}) hashes to ${digest}, not the digest its name gives: the archive is damaged; nothing was stored`)
      }
      if (mediaType === MediaType.OciLayer && digest !== diffIds[i]) {
        return yield* sourceError("DigestMismatch", label, `layer ${i} (${name}) is a plain tar hashing to ${digest}, but the config says its DiffID is ${diffIds[i]}: the archive is damaged; nothing was stored`)
      }
      files.set(digest, name)
      layers.push(describeLayer({ digest, size, mediaType, diffId: diffIds[i]! }))
    }
    // the registry manifest this image would have, so that the log names a manifest digest
    const manifest = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }))
    const image: ArchiveImage = {
      manifestDigest: digestBytes(manifest),
      manifestMediaType: MediaType.OciManifest,
      platform: formatPlatform(configPlatform(config.right)),
      configDigest,
      layers,
      files,
    }
    return image
  })
