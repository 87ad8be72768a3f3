/**
 * Which image of a reference als pulls, and whether it can: the index entry for the wanted
 * platform (this machine's by default), and an image manifest whose config and layers are
 * something als unpacks. Pure: each check answers a RegistryError for the reference.
 */
import { Either } from "effect"
import { entryPlatform, type IndexEntry, isConfigMediaType, isIndexMediaType, layerCompression, type ParsedManifest } from "../domain/Manifest.ts"
import { choosePlatform, detectHostPlatform, formatPlatform, type Platform } from "../domain/Platform.ts"
import { err } from "./Messages.ts"
import type { RegistryError } from "./RegistryError.ts"

/** This machine's platform, the default for `resolve` (detected once, in domain/Platform.ts). */
export const currentPlatform = (): Platform => detectHostPlatform()

/** The entry of an index to pull for `wanted`, with its platform as `os/arch[/variant]`. */
export const chooseIndexEntry = (
  label: string,
  manifests: ReadonlyArray<IndexEntry>,
  wanted: Platform,
): Either.Either<{ readonly entry: IndexEntry; readonly platform: string }, RegistryError> => {
  const entries = manifests.map((e) => ({ entry: e, platform: entryPlatform(e) }))
  const chosen = choosePlatform(entries, wanted)
  if (!chosen) {
    const available = entries
      .filter((e) => e.platform && e.platform.os !== "unknown" && !isIndexMediaType(e.entry.mediaType))
      .map((e) => formatPlatform(e.platform!))
    return Either.left(
      err(
        "PlatformNotFound",
        label,
        `${label}: no image for ${formatPlatform(wanted)}; the index has ${available.length ? available.join(", ") : "no platforms"}; pass --platform to choose one`,
      ),
    )
  }
  if (isIndexMediaType(chosen.entry.mediaType)) {
    return Either.left(err("InvalidManifest", label, `${label}: the index entry for ${formatPlatform(chosen.platform!)} is itself an index; nested indexes are not supported`))
  }
  return Either.right({ entry: chosen.entry, platform: formatPlatform(chosen.platform!) })
}

type ImageManifest = Extract<ParsedManifest, { kind: "image" }>

/** The manifest as an image als can pull: a container config of at most `maxConfigBytes`, layer tars. */
export const pullableImage = (
  label: string,
  digest: string,
  m: ParsedManifest,
  maxConfigBytes: number,
): Either.Either<ImageManifest, RegistryError> => {
  if (m.kind !== "image") {
    return Either.left(err("InvalidManifest", label, `${label}: ${digest} is an index where an image manifest was expected`))
  }
  if (!isConfigMediaType(m.config.mediaType)) {
    return Either.left(
      err("UnsupportedMediaType", label, `${label}: config media type ${JSON.stringify(m.config.mediaType)} is not a container image config (an OCI artifact?); als pulls container images only`),
    )
  }
  for (const [i, l] of m.layers.entries()) {
    if (layerCompression(l.mediaType) === undefined) {
      return Either.left(
        err("UnsupportedMediaType", label, `${label}: layer ${i} (${l.digest}) has media type ${JSON.stringify(l.mediaType)}, which is not a layer tar als can unpack`),
      )
    }
  }
  if (m.config.size > maxConfigBytes) {
    return Either.left(err("InvalidManifest", label, `${label}: the image config is ${m.config.size} bytes, more than the ${maxConfigBytes} allowed`))
  }
  return Either.right(m)
}
