/**
 * One layer of an image, as the image describes it: parsed once where the image is read (the
 * registry client, the local OCI layout and docker-archive sources) and carried unchanged
 * through lookup, link, ingest and commit. The store's `info` facts (LayerInfo.ts) are what
 * ingest or linking proved of it.
 */
import type { Digest } from "./Digest.ts"
import type { CompressionName } from "./LayerInfo.ts"
import { declaredCompression } from "../extract/MediaType.ts"
import { tocClaimsOf } from "../verify/Toc.ts"

export { TocAnnotation } from "./TocAnnotation.ts"

export interface LayerDescriptor {
  /** the blob's digest, from the manifest descriptor */
  readonly digest: Digest
  /** the blob's size, from the manifest descriptor */
  readonly size: number
  readonly mediaType: string
  /** from the image config's rootfs.diff_ids, paired by position */
  readonly diffId: Digest
  /** what the media type declares (the blob's magic bytes decide at ingest) */
  readonly compression: CompressionName
  /**
   * The TOC digest the annotations claim, parsed; a name of the layer only once checked
   * against the blob (verify/Toc.ts). Undefined without a (well-formed) TOC annotation.
   */
  readonly tocDigest?: Digest | undefined
  /** the descriptor's annotations, as given (ingest re-reads the TOC position from them) */
  readonly annotations: Readonly<Record<string, string>>
}

/** The descriptor of a layer whose digest, size and DiffID the caller has already parsed. */
export const describeLayer = (l: {
  readonly digest: Digest
  readonly size: number
  readonly mediaType: string
  readonly diffId: Digest
  readonly annotations?: Readonly<Record<string, string>> | undefined
}): LayerDescriptor => {
  const annotations = l.annotations ?? {}
  const tocDigest = tocClaimsOf("", annotations).claims[0]?.digest
  return {
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    diffId: l.diffId,
    compression: compressionOfMediaType(l.mediaType),
    ...(tocDigest !== undefined ? { tocDigest } : {}),
    annotations,
  }
}

/**
 * The compression a layer media type declares (extract/MediaType.ts). Every source refuses a
 * media type that is not a layer tar before it describes the layer, so "none" is only a default.
 */
export const compressionOfMediaType = (mediaType: string): CompressionName => declaredCompression(mediaType) ?? "none"
