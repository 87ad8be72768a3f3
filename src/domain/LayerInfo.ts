/**
 * The `info` file containers/storage decodes into its `Layer` struct (ALS-PROTOCOL.md §3): the
 * codec of a VerifiedLayer (LayerDescriptor.ts). We always write it ourselves from what ingest
 * or a link proved; any `info` read back (ours, or a pool's) is parsed into the claims it
 * makes, or refused, and a pool's claims are only checked against what we know.
 */
import { type Digest, isDigest } from "./Digest.ts"
import type { VerifiedLayer } from "./LayerDescriptor.ts"

export const Compression = { none: 0, gzip: 2, zstd: 4 } as const
export type CompressionName = keyof typeof Compression

/** What an `info` file read back says: each field a parsed value, or absent. Claims, not proof. */
export type LayerInfoClaims = Partial<VerifiedLayer>

export interface LayerInfoJson {
  readonly id: string
  readonly parent: string
  readonly created: string
  readonly "compressed-diff-digest": string
  readonly "compressed-size": number
  readonly "diff-digest": string
  readonly "diff-size": number
  readonly compression: number
  readonly "toc-digest"?: string
  readonly flags: Record<string, unknown>
}

export const layerInfoJson = (f: VerifiedLayer): LayerInfoJson => ({
  // id, parent and created are overwritten by the client
  id: "",
  parent: "",
  created: "1970-01-01T00:00:00Z",
  "compressed-diff-digest": f.digest,
  "compressed-size": f.size,
  "diff-digest": f.diffId,
  "diff-size": f.diffSize,
  compression: Compression[f.compression],
  ...(f.tocDigest ? { "toc-digest": f.tocDigest } : {}),
  flags: { "expected-layer-diffid": f.diffId },
})

export const renderLayerInfo = (f: VerifiedLayer): string => JSON.stringify(layerInfoJson(f))

const compressionByCode: Record<number, CompressionName> = { 0: "none", 2: "gzip", 4: "zstd" }

/** An `info` whose JSON, or one of whose fields, is not what containers/storage writes. */
export class InvalidLayerInfo extends Error {
  override readonly name = "InvalidLayerInfo"
}

/**
 * Reads the facts back from an `info` file's JSON (ours, or a pool's: untrusted either way).
 * A field that is absent or empty is left out; a field that is present but malformed (a
 * "digest" that does not parse, a size that is not a whole number) throws InvalidLayerInfo,
 * so that no unchecked string ever becomes a Digest.
 */
export const parseLayerInfo = (text: string): LayerInfoClaims => {
  let j: unknown
  try {
    j = JSON.parse(text)
  } catch (e) {
    throw new InvalidLayerInfo(`not JSON: ${(e as Error).message}`)
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new InvalidLayerInfo("not a JSON object")
  const o = j as Record<string, unknown>
  const digest = (k: string): Digest | undefined => {
    const v = o[k]
    if (v === undefined || v === null || v === "") return undefined
    if (typeof v !== "string" || !isDigest(v)) throw new InvalidLayerInfo(`${k} is not a digest: ${JSON.stringify(v)?.slice(0, 100)}`)
    return v
  }
  const size = (k: string, min: number): number | undefined => {
    const v = o[k]
    if (v === undefined || v === null) return undefined
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      throw new InvalidLayerInfo(`${k} is not a size: ${JSON.stringify(v)?.slice(0, 100)}`)
    }
    return v
  }
  const code = size("compression", 0)
  if (code !== undefined && compressionByCode[code] === undefined) throw new InvalidLayerInfo(`unknown compression ${code}`)
  return {
    digest: digest("compressed-diff-digest"),
    size: size("compressed-size", 0),
    diffId: digest("diff-digest"),
    diffSize: size("diff-size", -1),
    compression: code === undefined ? undefined : compressionByCode[code],
    tocDigest: digest("toc-digest"),
  }
}
