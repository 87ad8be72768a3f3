/**
 * Layer blob checks, written once: size and digest of the blob as received, and the DiffID of
 * its uncompressed content. Used by ingest (LayerIngest.ts, streaming) and by blob saving
 * (BlobFile.ts, a blob fetched for a layer linked from a pool). Pure: the callers hash.
 */
import type { Digest } from "../domain/DigestSyntax.ts"
import { LayerRejected } from "../extract/errors.ts"

/** The blob is longer than its descriptor says: stop reading at once. */
export const blobTooLong = (layer: Digest, size: number): LayerRejected =>
  new LayerRejected({
    code: "BlobSizeMismatch",
    message: `layer ${layer}: the registry sent more than the ${size} bytes the manifest declares; ` +
      `the download was stopped. Retry the pull; if it persists, the registry or a proxy serves wrong content.`,
  })

/** Size, then digest, of a whole blob against its descriptor; undefined when both match. */
export const checkBlob = (
  layer: Digest,
  got: { readonly size: number; readonly digest: string },
  want: { readonly size: number },
): LayerRejected | undefined => {
  if (got.size > want.size) return blobTooLong(layer, want.size)
  if (got.size !== want.size) {
    return new LayerRejected({
      code: "BlobSizeMismatch",
      message: `layer ${layer}: the registry sent ${got.size} bytes, the manifest declares ${want.size}; ` +
        `the download was cut short. Retry the pull.`,
    })
  }
  if (got.digest !== layer) {
    return new LayerRejected({
      code: "BlobDigestMismatch",
      message: `layer ${layer}: the blob received has digest ${got.digest}; the download was corrupted or the ` +
        `registry serves other content under this digest. Retry the pull; if it persists, check the registry or mirror.`,
    })
  }
  return undefined
}

/** The uncompressed content's digest against the image config's rootfs.diff_ids entry. */
export const checkDiffId = (layer: Digest, got: string, want: Digest): LayerRejected | undefined =>
  got === want ? undefined : new LayerRejected({
    code: "DiffIdMismatch",
    message: `layer ${layer}: the uncompressed layer has digest ${got}, but the image config's rootfs.diff_ids ` +
      `says ${want}. The image is inconsistent: rebuild or re-push it.`,
  })
