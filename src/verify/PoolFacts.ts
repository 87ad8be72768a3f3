/**
 * Deciding whether a pool hit may be exposed, and with which `info` (pure).
 *
 * `info` must be right: clients compute layer IDs from the DiffID and `podman push/save`
 * serve `blob` as the layer. So every fact comes from verified registry metadata when the
 * caller has it, else from the pool's own info when that names this very layer; and a pool
 * that disagrees with the registry is refused rather than trusted. A TOC digest is never taken
 * from here: it is a name in the store, set only once checked against the blob (Toc.ts).
 */
import type { Digest } from "../domain/Digest.ts"
import type { LayerDescriptor, VerifiedLayer } from "../domain/LayerDescriptor.ts"
import type { PoolHit } from "../pool/Pool.ts"

export type LinkPlan =
  | { readonly _tag: "Link"; readonly facts: VerifiedLayer; readonly blob: string }
  | { readonly _tag: "NeedBlob"; readonly facts: VerifiedLayer }
  | { readonly _tag: "Refuse"; readonly reason: string }

/** `meta`: the layer as the caller's verified image (manifest + config) describes it, when it has one. */
export const planLink = (
  digest: Digest,
  hit: PoolHit,
  meta: Pick<LayerDescriptor, "size" | "diffId" | "compression"> | undefined,
): LinkPlan => {
  if (hit.refused !== undefined) return { _tag: "Refuse", reason: hit.refused }
  const info = hit.info
  if (info?.digest !== undefined && info.digest !== digest) {
    return { _tag: "Refuse", reason: `the pool's info names another layer (${info.digest})` }
  }
  if (meta && info?.diffId !== undefined && info.diffId !== meta.diffId) {
    return { _tag: "Refuse", reason: `the pool's DiffID ${info.diffId} differs from the image config's ${meta.diffId}` }
  }
  const blobSize = meta?.size ?? info?.size
  const diffId = meta?.diffId ?? info?.diffId
  if (blobSize === undefined || diffId === undefined) {
    return {
      _tag: "Refuse",
      reason: "the pool has no info for this layer (DiffID and size unknown); " +
        "run `als pull REF`, which takes them from the registry",
    }
  }
  if (meta && info?.size !== undefined && info.size !== meta.size) {
    return { _tag: "Refuse", reason: `the pool's blob size ${info.size} differs from the manifest's ${meta.size}` }
  }
  const facts: VerifiedLayer = {
    digest,
    size: blobSize,
    diffId,
    diffSize: info?.diffSize ?? -1,
    compression: meta?.compression ?? info?.compression ?? "gzip",
  }
  if (hit.blob && hit.blob.size === blobSize) return { _tag: "Link", facts, blob: hit.blob.path }
  if (hit.blob) {
    return meta
      ? { _tag: "NeedBlob", facts }
      : { _tag: "Refuse", reason: `the pool's blob has ${hit.blob.size} bytes, its info says ${blobSize}` }
  }
  return meta
    ? { _tag: "NeedBlob", facts }
    : {
      _tag: "Refuse",
      reason: "the pool shows the tree but not the blob, which `podman save/push` need; " +
        "run `als pull REF`, which fetches the blob from the registry and links the tree",
    }
}
