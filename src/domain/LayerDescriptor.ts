/**
 * A layer's facts, one type family from the manifest to the store's `info`:
 *
 *   LayerDescriptor  what the image says: parsed once where the image is read (the registry
 *                    client, the local OCI layout and docker-archive sources) and carried
 *                    unchanged through lookup, link planning and ingest
 *   VerifiedLayer    the descriptor's facts once proved, under the descriptor's names, by
 *                    ingest (extract/LayerIngest.ts) or a link (verify/PoolFacts.ts): what the
 *                    store commits; `info` maps them to ALS-PROTOCOL.md's keys (LayerInfo.ts
 *                    renders and parses that file; nothing else does)
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

/**
 * A layer once proved: the descriptor's blob digest, size, DiffID and compression under the
 * descriptor's own names (`info` maps them to ALS-PROTOCOL.md §3's keys: compressed-diff-digest,
 * compressed-size, diff-digest), as ingest measured them from the bytes or the link took them
 * from the verified descriptor, with what only the bytes tell. Not a whole LayerDescriptor: a
 * pool's layer may be linked with no image at all (`als lookup`, a seed), from the pool's own `info`.
 */
export interface VerifiedLayer extends Pick<LayerDescriptor, "digest" | "size" | "diffId" | "compression"> {
  /** the uncompressed tar's size; -1 when unknown (ALS-PROTOCOL.md allows it only with a TOC digest) */
  readonly diffSize: number
  /** what the blob's magic bytes are (ingest), else what the descriptor or the pool declares */
  readonly compression: LayerDescriptor["compression"]
  /** only a TOC digest checked against the blob that no other layer is named by (verify/Toc.ts) */
  readonly tocDigest?: Digest | undefined
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
