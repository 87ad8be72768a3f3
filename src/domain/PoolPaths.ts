/**
 * Where a pool may show a layer (pure). Three kinds:
 *
 * - seed: the original ALS proposal's layout under `<root>/.pool`:
 *     .pool/<b64("k1=v1")>/<b64("k2=v2")>/…/rootfs.<digest>
 *   one path element per annotation: the layer descriptor's annotations plus
 *   `containers/image/target.layerdigest=<digest>` and `containers/image/target.reference=<ref>`,
 *   ordered by key (plain byte order, so the result never depends on manifest order).
 *   b64 is standard base64 with padding; since standard base64 may contain `/`, which cannot
 *   appear in a path element, `/` is written as `_` (the seed left this unspecified).
 * - store: another ALS store (e.g. on NFS): `<dir>/<digest>/` or `<dir>/<b64(ref)>/<digest>/`.
 * - cvmfs: a CVMFS-style tree: `<dir>/.layers/<first 2 hex>/<hex>/layerfs`.
 */
import * as path from "node:path"
import { digestHex, type Digest } from "./Digest.ts"
import { encodeRef } from "./StorePaths.ts"

export const TARGET_LAYER_DIGEST = "containers/image/target.layerdigest"
export const TARGET_REFERENCE = "containers/image/target.reference"

export const poolElement = (key: string, value: string): string =>
  Buffer.from(`${key}=${value}`, "utf8").toString("base64").replaceAll("/", "_")

/** The annotations a seed pool is keyed by, in the documented order. */
export const seedAnnotations = (
  digest: Digest,
  ref: string | undefined,
  annotations: Readonly<Record<string, string>>,
): ReadonlyArray<readonly [string, string]> => {
  const all: Record<string, string> = { ...annotations, [TARGET_LAYER_DIGEST]: digest }
  if (ref !== undefined) all[TARGET_REFERENCE] = ref
  return Object.entries(all).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

export const seedPoolPath = (
  poolDir: string,
  digest: Digest,
  ref: string | undefined,
  annotations: Readonly<Record<string, string>>,
): string =>
  path.join(
    poolDir,
    ...seedAnnotations(digest, ref, annotations).map(([k, v]) => poolElement(k, v)),
    `rootfs.${digest}`,
  )

export const storePoolPaths = (dir: string, digest: Digest, ref: string | undefined): ReadonlyArray<string> =>
  ref === undefined
    ? [path.join(dir, digest)]
    : [path.join(dir, digest), path.join(dir, encodeRef(ref), digest)]

export const cvmfsPoolPath = (dir: string, digest: Digest): string => {
  const hex = digestHex(digest)
  return path.join(dir, ".layers", hex.slice(0, 2), hex, "layerfs")
}
