/**
 * Why a local image (OCI layout, docker-archive, oci-archive) cannot be read. One closed set
 * of codes, like RegistryError's; the message says what happened and what to run next.
 */
import { Schema } from "effect"

export const SourceErrorCode = Schema.Literal(
  "BadSpec", // a transport als does not read, or one without a path
  "NotFound", // the directory or file is missing
  "NotALayout", // a directory or archive without the files its format needs
  "TagNotFound", // the tag names no image of the layout
  "Ambiguous", // no tag given and several images to choose from
  "PlatformNotFound",
  "DigestMismatch", // a manifest, config or blob does not hash to its descriptor
  "InvalidManifest",
  "UnsupportedMediaType",
  "BlobMissing",
  "InvalidArchive", // a tar that cannot be read
  "NeedsName", // nothing in the source says what podman will call the image
  "Io",
)
export type SourceErrorCode = typeof SourceErrorCode.Type

export class SourceError extends Schema.TaggedError<SourceError>()("SourceError", {
  code: SourceErrorCode,
  /** the source as the user wrote it (`oci:./layout:1.0`) */
  source: Schema.String,
  message: Schema.String,
}) {}

export const sourceError = (code: SourceErrorCode, source: string, message: string) =>
  new SourceError({ code, source, message: `${source}: ${message}` })
