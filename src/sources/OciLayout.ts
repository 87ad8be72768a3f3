/**
 * An OCI image layout (a directory, or the same inside an oci-archive tar) as an image
 * source: index.json → (image index →) manifest → config, each verified against the
 * descriptor that named it (digest and size), as a registry pull verifies them.
 */
import { Effect, Either, Schema } from "effect"
import { digestAlgorithm, type Digest, digestHex } from "../domain/Digest.ts"
import { describeLayer } from "../domain/LayerDescriptor.ts"
import { checkContent } from "../verify/Content.ts"
import {
  configPlatform,
  entryPlatform,
  type IndexEntry,
  isConfigMediaType,
  isIndexMediaType,
  layerCompression,
  OciIndex,
  parseImageConfig,
  parseManifest,
} from "../domain/Manifest.ts"
import { choosePlatform, formatPlatform, type Platform } from "../domain/Platform.ts"
import type { SourceImage } from "../workflows/ImageSource.ts"
import type { FileTree } from "./FileTree.ts"
import { sourceError, type SourceError } from "./SourceError.ts"

export const REF_NAME = "org.opencontainers.image.ref.name"

const MAX_JSON = 4 << 20

export const blobName = (d: Digest): string => `blobs/${digestAlgorithm(d)}/${digestHex(d)}`

/** The tag an index.json entry carries, if any. */
export const entryTag = (e: IndexEntry): string | undefined => e.annotations?.[REF_NAME] || undefined

export type Pick =
  | { readonly _tag: "Picked"; readonly entry: IndexEntry }
  | { readonly _tag: "TagNotFound"; readonly tags: ReadonlyArray<string> }
  | { readonly _tag: "Ambiguous"; readonly choices: ReadonlyArray<string> }
  | { readonly _tag: "NoPlatform"; readonly available: ReadonlyArray<string> }
  | { readonly _tag: "Empty" }

const uniq = <A>(xs: ReadonlyArray<A>) => [...new Set(xs)]

/**
 * Which index.json entry `TAG` (or no tag) names. Several entries under one tag, or untagged
 * entries that all declare a platform, are the platforms of one image: `wanted` picks.
 */
export const pickEntry = (manifests: ReadonlyArray<IndexEntry>, tag: string | undefined, wanted: Platform): Pick => {
  if (manifests.length === 0) return { _tag: "Empty" }
  const tags = uniq(manifests.map(entryTag).filter((t): t is string => t !== undefined))
  const candidates = tag === undefined ? manifests : manifests.filter((e) => entryTag(e) === tag)
  if (candidates.length === 0) return { _tag: "TagNotFound", tags }
  if (candidates.length === 1) return { _tag: "Picked", entry: candidates[0]! }
  const names = uniq(candidates.map(entryTag))
  const allPlatforms = candidates.every((e) => entryPlatform(e) !== undefined)
  if (names.length === 1 && allPlatforms) {
    const chosen = choosePlatform(candidates.map((e) => ({ e, platform: entryPlatform(e) })), wanted)
    return chosen
      ? { _tag: "Picked", entry: chosen.e }
      : { _tag: "NoPlatform", available: candidates.map((e) => formatPlatform(entryPlatform(e)!)) }
  }
  return {
    _tag: "Ambiguous",
    choices: candidates.map((e) => entryTag(e) ?? `${e.digest} (untagged${e.platform ? `, ${e.platform.os}/${e.platform.architecture}` : ""})`),
  }
}

export interface LayoutImage extends SourceImage {
  /** the ref.name of the index.json entry used */
  readonly refName?: string | undefined
}

/** index.json's entries, for naming before anything is resolved. */
export const readIndex = (tree: FileTree, label: string): Effect.Effect<ReadonlyArray<IndexEntry>, SourceError> =>
  Effect.gen(function*() {
    if (tree.size("index.json") === undefined) {
      return yield* sourceError(
        "NotALayout",
        label,
        `${tree.location} has no index.json, so it is not an OCI image layout; make one with skopeo copy IMAGE oci:DIR:TAG or podman save --format oci-dir`,
      )
    }
    const bytes = yield* readSmall(tree, "index.json", label)
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder().decode(bytes))
    } catch (e) {
      return yield* sourceError("InvalidManifest", label, `index.json is not valid JSON: ${(e as Error).message}`)
    }
    const index = Schema.decodeUnknownEither(OciIndex)(json)
    if (Either.isLeft(index)) return yield* sourceError("InvalidManifest", label, `index.json is not an OCI image index: ${index.left.message.split("\n")[0]}`)
    return index.right.manifests
  })

const readSmall = (tree: FileTree, name: string, label: string) =>
  Effect.try({
    try: () => tree.read(name, MAX_JSON),
    catch: (e) => sourceError("Io", label, (e as Error).message),
  })

/** A blob named by a descriptor, checked against the descriptor's digest and size. */
const readVerified = (tree: FileTree, label: string, what: string, d: { digest: Digest; size: number }) =>
  Effect.gen(function*() {
    const name = blobName(d.digest)
    if (tree.size(name) === undefined) {
      return yield* sourceError("BlobMissing", label, `the ${what} ${d.digest} is not in ${tree.location}/blobs; the layout is incomplete: copy it again (skopeo copy)`)
    }
    const bytes = yield* readSmall(tree, name, label)
    const { problem } = checkContent(bytes, d)
    if (problem?.kind === "digest") {
      return yield* sourceError("DigestMismatch", label, `the ${what} ${name} does not hash to ${d.digest}: the layout is damaged; nothing was stored`)
    }
    if (problem?.kind === "size") {
      return yield* sourceError("DigestMismatch", label, `the ${what} ${d.digest} is ${bytes.length} bytes but its descriptor says ${d.size}; nothing was stored`)
    }
    return bytes
  })

/** Resolves `tag` (or the only image) for `wanted` to a verified manifest, config and layer list. */
export const resolveLayout = (
  tree: FileTree,
  label: string,
  tag: string | undefined,
  wanted: Platform,
): Effect.Effect<LayoutImage, SourceError> =>
  Effect.gen(function*() {
    const manifests = yield* readIndex(tree, label)
    const pick = pickEntry(manifests, tag, wanted)
    switch (pick._tag) {
      case "Empty":
        return yield* sourceError("NotALayout", label, `${tree.location}/index.json lists no image`)
      case "TagNotFound":
        return yield* sourceError(
          "TagNotFound",
          label,
          `no image tagged ${JSON.stringify(tag)}; the layout has ${pick.tags.length ? `tags: ${pick.tags.join(", ")}` : "no tags"}`,
        )
      case "Ambiguous":
        return yield* sourceError(
          "Ambiguous",
          label,
          `the layout holds several images; name one with ${label.replace(/:[^/]*$/, "")}:TAG. It has: ${pick.choices.join(", ")}`,
        )
      case "NoPlatform":
        return yield* sourceError(
          "PlatformNotFound",
          label,
          `no image for ${formatPlatform(wanted)}; it has ${pick.available.join(", ")}; pass --platform to choose one`,
        )
    }
    const entry = pick.entry
    let top = yield* readVerified(tree, label, "manifest", entry)
    let parsed = parseManifest(top, entry.mediaType)
    if (Either.isLeft(parsed)) return yield* sourceError("InvalidManifest", label, parsed.left.reason)
    let indexDigest: Digest | undefined
    let manifestDigest: Digest = entry.digest
    let platform: string | undefined = entryPlatform(entry) ? formatPlatform(entryPlatform(entry)!) : undefined
    if (parsed.right.kind === "index") {
      const entries = parsed.right.manifests.map((e) => ({ e, platform: entryPlatform(e) }))
      const chosen = choosePlatform(entries, wanted)
      if (!chosen) {
        const available = entries.filter((x) => x.platform && x.platform.os !== "unknown").map((x) => formatPlatform(x.platform!))
        return yield* sourceError(
          "PlatformNotFound",
          label,
          `no image for ${formatPlatform(wanted)}; the index has ${available.length ? available.join(", ") : "no platforms"}; pass --platform to choose one`,
        )
      }
      if (isIndexMediaType(chosen.e.mediaType)) {
        return yield* sourceError("InvalidManifest", label, `the index entry for ${formatPlatform(chosen.platform!)} is itself an index; nested indexes are not supported`)
      }
      indexDigest = entry.digest
      manifestDigest = chosen.e.digest
      platform = formatPlatform(chosen.platform!)
      top = yield* readVerified(tree, label, "manifest", chosen.e)
      parsed = parseManifest(top, chosen.e.mediaType)
      if (Either.isLeft(parsed)) return yield* sourceError("InvalidManifest", label, parsed.left.reason)
    }
    const m = parsed.right
    if (m.kind !== "image") return yield* sourceError("InvalidManifest", label, `${manifestDigest} is an index where an image manifest was expected`)
    if (!isConfigMediaType(m.config.mediaType)) {
      return yield* sourceError("UnsupportedMediaType", label, `config media type ${JSON.stringify(m.config.mediaType)} is not a container image config (an OCI artifact?); als stores container images only`)
    }
    for (const [i, l] of m.layers.entries()) {
      if (layerCompression(l.mediaType) === undefined) {
        return yield* sourceError("UnsupportedMediaType", label, `layer ${i} (${l.digest}) has media type ${JSON.stringify(l.mediaType)}, which is not a layer tar als can unpack`)
      }
    }
    for (const l of m.layers) {
      // a truncated or swapped blob is refused before any layer is stored; a missing one is
      // fine as long as the store has the layer already (the pull says so if it has not)
      const size = tree.size(blobName(l.digest))
      if (size !== undefined && size !== l.size) {
        return yield* sourceError("DigestMismatch", label, `layer ${l.digest} is ${size} bytes in ${tree.location} but the manifest says ${l.size}: the layout is damaged; nothing was stored`)
      }
    }
    const configBytes = yield* readVerified(tree, label, "image config", m.config)
    const config = parseImageConfig(configBytes)
    if (Either.isLeft(config)) return yield* sourceError("InvalidManifest", label, config.left.reason)
    const diffIds = config.right.rootfs.diff_ids
    if (diffIds.length !== m.layers.length) {
      return yield* sourceError("InvalidManifest", label, `the manifest lists ${m.layers.length} layers but the config lists ${diffIds.length} diff_ids; the image is broken`)
    }
    const image: LayoutImage = {
      indexDigest,
      manifestDigest,
      manifestMediaType: m.mediaType,
      platform: platform ?? formatPlatform(configPlatform(config.right)),
      configDigest: m.config.digest,
      layers: m.layers.map((l, i) => describeLayer({
        digest: l.digest,
        size: l.size,
        mediaType: l.mediaType,
        annotations: l.annotations ?? {},
        diffId: diffIds[i]!,
      })),
      refName: entryTag(entry),
    }
    return image
  })

/** A layer blob of the layout, streamed; a missing blob is said plainly. */
export const layoutBlob = (tree: FileTree, label: string, digest: Digest, offset?: number) =>
  Effect.gen(function*() {
    const name = blobName(digest)
    const size = tree.size(name)
    if (size === undefined) {
      return yield* sourceError("BlobMissing", label, `layer ${digest} is not in ${tree.location}/blobs; the layout is incomplete: copy it again (skopeo copy)`)
    }
    return { size, body: tree.stream(name, offset ?? 0) }
  })
