/**
 * What a name in the served tree means, parsed at the boundary (pure). A name comes from
 * whatever process walks the mount: anything that is not exactly one of these shapes is
 * `undefined`, which the filesystem answers ENOENT. No name ever becomes a path: the paths
 * served are built from the parsed digest alone.
 *
 *   <root>/<b64(ref)>                a ref directory (standard base64, decoded, parsed, normalized)
 *   <root>/<key>, <ref dir>/<key>    a layer directory (a digest)
 *   <root>/.pool/<b64(k=v)>/…        the seed's annotation path, one element per annotation
 *   <…>/rootfs.<digest>              the layer the annotations name
 *   <layer dir>/{diff,info,blob}     the layer's entries, symlinks into the store
 *   <layer dir>/use                  containers/storage's notification file (never exists)
 */
import { type Digest, isDigest } from "../domain/Digest.ts"
import { TARGET_LAYER_DIGEST, TARGET_REFERENCE } from "../domain/PoolPaths.ts"
import { formatReference, parseReference } from "../domain/Reference.ts"
import { decodeRef, LAYER_ENTRIES } from "../domain/StorePaths.ts"

/** The kernel allows 1024 bytes per name; a ref is at most 255 + a digest, base64 4/3 of that. */
export const MAX_NAME = 1024
/** Annotations along one .pool path: more is not a layer descriptor, it is a walk. */
export const MAX_POOL_DEPTH = 64
export const POOL_DIR = ".pool"
export const USE_FILE = "use"

export type LayerEntry = (typeof LAYER_ENTRIES)[number]

/** A `:ref` directory name: the normalized reference it encodes, or undefined. */
export const parseRefName = (name: string): string | undefined => {
  if (name.length === 0 || name.length > MAX_NAME) return undefined
  const ref = decodeRef(name)
  if (ref === undefined || ref.length === 0) return undefined
  try {
    // only the fully normalized spelling: podman sends no other, and one ref has one directory
    return formatReference(parseReference(ref)) === ref ? ref : undefined
  } catch {
    return undefined
  }
}

export const parseKey = (name: string): Digest | undefined => (isDigest(name) ? name : undefined)

export const parseLayerEntry = (name: string): LayerEntry | undefined =>
  (LAYER_ENTRIES as ReadonlyArray<string>).includes(name) ? (name as LayerEntry) : undefined

/** One `.pool` element: base64 (with `_` for `/`) of `key=value`. */
export const parsePoolElement = (name: string): readonly [string, string] | undefined => {
  if (name.length === 0 || name.length > MAX_NAME || name.length % 4 !== 0) return undefined
  if (!/^[A-Za-z0-9+_]+={0,2}$/.test(name)) return undefined
  const std = name.replaceAll("_", "/")
  const bytes = Buffer.from(std, "base64")
  if (bytes.toString("base64") !== std) return undefined
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
  const eq = text.indexOf("=")
  if (eq <= 0 || /[\0\n]/.test(text)) return undefined
  return [text.slice(0, eq), text.slice(eq + 1)]
}

/** `rootfs.<digest>` at the end of a .pool path. */
export const parseRootfsName = (name: string): Digest | undefined =>
  name.startsWith("rootfs.") ? parseKey(name.slice("rootfs.".length)) : undefined

export interface PoolTarget {
  readonly digest: Digest
  readonly ref?: string | undefined
  /** the layer descriptor's own annotations (the two target.* ones taken out) */
  readonly annotations: Readonly<Record<string, string>>
}

/**
 * The layer a `.pool/…/rootfs.<digest>` path names: the annotations must be in the
 * documented order (by key, no repeats), name the same layer digest, and a reference that
 * parses. Anything else is not a path the seed's layout can produce.
 */
export const poolTarget = (annotations: ReadonlyArray<readonly [string, string]>, digest: Digest): PoolTarget | undefined => {
  for (let i = 1; i < annotations.length; i++) if (!(annotations[i - 1]![0] < annotations[i]![0])) return undefined
  const all = Object.fromEntries(annotations)
  if (all[TARGET_LAYER_DIGEST] !== digest) return undefined
  const ref = all[TARGET_REFERENCE]
  if (ref !== undefined && parseRefName(Buffer.from(ref, "utf8").toString("base64")) === undefined) return undefined
  // fromEntries defines own properties: `rest[k] = v` would drop a `__proto__` annotation
  const rest = Object.fromEntries(annotations.filter(([k]) => k !== TARGET_LAYER_DIGEST && k !== TARGET_REFERENCE))
  return { digest, ref, annotations: rest }
}
