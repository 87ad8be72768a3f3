/**
 * The `info` file containers/storage decodes into its `Layer` struct (ALS-PROTOCOL.md §3).
 * We always write it ourselves from verified metadata; a pool's own `info` is read only to
 * be checked against what we know.
 */
import type { Digest } from "./Digest.ts"

export const Compression = { none: 0, gzip: 2, zstd: 4 } as const
export type CompressionName = keyof typeof Compression

export interface LayerFacts {
  readonly blobDigest: Digest
  readonly blobSize: number
  readonly diffId: Digest
  /** -1 when unknown (allowed only together with a TOC digest) */
  readonly diffSize: number
  readonly compression: CompressionName
  readonly tocDigest?: Digest | undefined
}

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

export const layerInfoJson = (f: LayerFacts): LayerInfoJson => ({
  // id, parent and created are overwritten by the client
  id: "",
  parent: "",
  created: "1970-01-01T00:00:00Z",
  "compressed-diff-digest": f.blobDigest,
  "compressed-size": f.blobSize,
  "diff-digest": f.diffId,
  "diff-size": f.diffSize,
  compression: Compression[f.compression],
  ...(f.tocDigest ? { "toc-digest": f.tocDigest } : {}),
  flags: { "expected-layer-diffid": f.diffId },
})

export const renderLayerInfo = (f: LayerFacts): string => JSON.stringify(layerInfoJson(f))

const compressionByCode: Record<number, CompressionName> = { 0: "none", 2: "gzip", 4: "zstd" }

/** Reads the facts back from an `info` file's JSON; undefined when it lacks what clients need. */
export const parseLayerInfo = (text: string): Partial<LayerFacts> => {
  const j = JSON.parse(text) as Record<string, unknown>
  const str = (k: string) => (typeof j[k] === "string" && j[k] !== "" ? (j[k] as string) : undefined)
  const num = (k: string) => (typeof j[k] === "number" ? (j[k] as number) : undefined)
  return {
    blobDigest: str("compressed-diff-digest") as Digest | undefined,
    blobSize: num("compressed-size"),
    diffId: str("diff-digest") as Digest | undefined,
    diffSize: num("diff-size"),
    compression: compressionByCode[num("compression") ?? -1],
    tocDigest: str("toc-digest") as Digest | undefined,
  }
}
