/**
 * Pools: read-only trees that may already show a layer (a lazy or shared filesystem).
 * Probing only stats; it never reads a layer's tree.
 */
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import type { Digest } from "../domain/Digest.ts"
import { type LayerFacts, parseLayerInfo } from "../domain/LayerInfo.ts"
import { cvmfsPoolPath, seedPoolPath, storePoolPaths } from "../domain/PoolPaths.ts"
import type { PoolKind } from "../events/Events.ts"

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
  /** the layer's tree, to become our `diff` */
  readonly diff: string
  /** the pool's copy of the blob and its size, when it has one */
  readonly blob?: { readonly path: string; readonly size: number } | undefined
  /** what the pool's own `info` says, when it has one */
  readonly info?: Partial<LayerFacts> | undefined
}

export interface Probe {
  readonly pool: Pool
  /** the path probed (the last one tried, for kinds with several candidates) */
  readonly path: string
  readonly hit?: PoolHit | undefined
}

const isDir = (p: string) => fs.stat(p).then((s) => s.isDirectory(), () => false)
const fileSize = (p: string) => fs.stat(p).then((s) => (s.isFile() ? s.size : undefined), () => undefined)
const readInfo = (p: string) =>
  fs.readFile(p, "utf8").then((t) => {
    try {
      return parseLayerInfo(t)
    } catch {
      return undefined // an unreadable info is treated as absent; ours is written from verified facts
    }
  }, () => undefined)

/** A directory laid out like an ALS layer (diff/, info, blob), or a bare tree. */
const hitAt = async (dir: string, bare: "tree" | "layer-only"): Promise<PoolHit | undefined> => {
  if (await isDir(path.join(dir, "diff"))) {
    const size = await fileSize(path.join(dir, "blob"))
    return {
      diff: path.join(dir, "diff"),
      blob: size === undefined ? undefined : { path: path.join(dir, "blob"), size },
      info: await readInfo(path.join(dir, "info")),
    }
  }
  if (bare === "tree" && (await isDir(dir))) return { diff: dir }
  return undefined
}

export const probePool = (
  pool: Pool,
  digest: Digest,
  ref: string | undefined,
  annotations: Readonly<Record<string, string>>,
): Effect.Effect<Probe> =>
  Effect.promise(async (): Promise<Probe> => {
    switch (pool.kind) {
      case "seed": {
        const p = seedPoolPath(pool.dir, digest, ref, annotations)
        return { pool, path: p, hit: await hitAt(p, "tree") }
      }
      case "store": {
        let last = ""
        for (const p of storePoolPaths(pool.dir, digest, ref)) {
          last = p
          const hit = await hitAt(p, "layer-only")
          if (hit) return { pool, path: p, hit }
        }
        return { pool, path: last }
      }
      case "cvmfs": {
        const p = cvmfsPoolPath(pool.dir, digest)
        if (!(await isDir(p))) return { pool, path: p }
        const size = await fileSize(path.join(path.dirname(p), "blob"))
        return {
          pool,
          path: p,
          hit: {
            diff: p,
            blob: size === undefined ? undefined : { path: path.join(path.dirname(p), "blob"), size },
            info: await readInfo(path.join(path.dirname(p), "info")),
          },
        }
      }
    }
  })
