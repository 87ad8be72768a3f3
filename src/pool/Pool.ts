/**
 * Pools: read-only trees that may already show a layer (a lazy or shared filesystem).
 * Probing only stats (and reads a small `info`); it never reads a layer's tree. What a pool
 * shows is checked where it enters (verify/PoolFiles.ts): file types, symlinks, real paths.
 */
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { Digest } from "../domain/Digest.ts"
import { InvalidLayerInfo, type LayerInfoClaims, parseLayerInfo } from "../domain/LayerInfo.ts"
import { cvmfsPoolPath, seedPoolPath, storePoolPaths } from "../domain/PoolPaths.ts"
import type { PoolKind } from "../events/Events.ts"
import { checkPoolTarget, readPoolFile } from "../verify/PoolFiles.ts"

export interface Pool {
  readonly kind: PoolKind
  readonly dir: string
}

/** `--pool DIR` (kind detected: `.layers/` means CVMFS-style, else an ALS store) or `--pool KIND:DIR`. */
export const parsePoolSpec = async (spec: string): Promise<Pool> => {
  const m = /^(seed|store|cvmfs):(.+)$/.exec(spec)
  if (m) return { kind: m[1] as PoolKind, dir: path.resolve(m[2]!) }
  const dir = path.resolve(spec)
  const isCvmfs = await fs.stat(path.join(dir, ".layers")).then((s) => s.isDirectory(), () => false)
  return { kind: isCvmfs ? "cvmfs" : "store", dir }
}

export interface PoolHit {
  /** the layer's tree, to become our `diff` (its real path, checked to lie inside the pool) */
  readonly diff: string
  /** the pool's copy of the blob (real path) and its size, when it has one */
  readonly blob?: { readonly path: string; readonly size: number } | undefined
  /** what the pool's own `info` says, when it has one (parsed: every digest in it is one) */
  readonly info?: LayerInfoClaims | undefined
  /** why this hit must not be linked: a file of the wrong type, a symlink, a path outside the pool */
  readonly refused?: string | undefined
}

export interface Probe {
  readonly pool: Pool
  /** the path probed (the last one tried, for kinds with several candidates) */
  readonly path: string
  readonly hit?: PoolHit | undefined
}

const refusedHit = (diff: string, reason: string): PoolHit => ({ diff, refused: reason })

/** The pool's `info`, parsed; a refusal when it is not a small regular file of valid JSON. */
const readInfo = (p: string): { info?: LayerInfoClaims | undefined; refused?: string } => {
  const r = readPoolFile(p)
  if (r._tag === "Missing") return {}
  if (r._tag === "Refused") return { refused: r.reason }
  try {
    return { info: parseLayerInfo(r.text) }
  } catch (e) {
    return { refused: `the pool's info is malformed (${e instanceof InvalidLayerInfo ? e.message : String(e)})` }
  }
}

/**
 * A layer the pool shows at `diff` (a directory), with `blob` and `info` beside it when the
 * pool has them. Undefined when there is nothing at `diff`; a refused hit when something is
 * there that als must not link or read.
 */
const layerAt = (pool: Pool, diff: string, blob: string, info: string): PoolHit | undefined => {
  const d = checkPoolTarget(diff, "directory", pool.dir)
  if (d._tag === "Missing") return undefined
  if (d._tag === "Refused") return refusedHit(diff, d.reason)
  const b = checkPoolTarget(blob, "file", pool.dir)
  if (b._tag === "Refused") return refusedHit(diff, b.reason)
  const i = readInfo(info)
  if (i.refused !== undefined) return refusedHit(diff, i.refused)
  return {
    diff: d.real,
    blob: b._tag === "Ok" ? { path: b.real, size: b.size } : undefined,
    info: i.info,
  }
}

/** A directory laid out like an ALS layer (diff/, info, blob), or a bare tree. */
const hitAt = (pool: Pool, dir: string, bare: "tree" | "layer-only"): PoolHit | undefined => {
  const layer = layerAt(pool, path.join(dir, "diff"), path.join(dir, "blob"), path.join(dir, "info"))
  if (layer !== undefined || bare === "layer-only") return layer
  const t = checkPoolTarget(dir, "directory", pool.dir)
  if (t._tag === "Missing") return undefined
  if (t._tag === "Refused") return refusedHit(dir, t.reason)
  return { diff: t.real }
}

export const probePool = (
  pool: Pool,
  digest: Digest,
  ref: string | undefined,
  annotations: Readonly<Record<string, string>>,
): Effect.Effect<Probe> =>
  Effect.sync((): Probe => {
    switch (pool.kind) {
      case "seed": {
        const p = seedPoolPath(pool.dir, digest, ref, annotations)
        return { pool, path: p, hit: hitAt(pool, p, "tree") }
      }
      case "store": {
        let last = ""
        for (const p of storePoolPaths(pool.dir, digest, ref)) {
          last = p
          const hit = hitAt(pool, p, "layer-only")
          if (hit) return { pool, path: p, hit }
        }
        return { pool, path: last }
      }
      case "cvmfs": {
        const p = cvmfsPoolPath(pool.dir, digest)
        const up = path.dirname(p)
        return { pool, path: p, hit: layerAt(pool, p, path.join(up, "blob"), path.join(up, "info")) }
      }
    }
  })
