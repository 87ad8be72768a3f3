/**
 * One process at a time works on a given layer, across processes and hosts: a mkdir lock
 * (atomic on local filesystems and NFS; no flock/fcntl, which NFS may lack) under
 * `<root>/.als/locks/`. The holder refreshes the lock's mtime while it works; a lock left by
 * a killed process goes stale and is taken over.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { withMkdirLock } from "../sys/MkdirLock.ts"
import type { Digest } from "../domain/Digest.ts"
import { ioError, StoreIoError } from "./errors.ts"

export interface LayerLockOptions {
  /** how long to wait for another process working on the same layer */
  readonly timeoutMs: number
  /** a lock not refreshed for this long belongs to a dead process */
  readonly staleMs: number
}

export const defaultLayerLock: LayerLockOptions = { timeoutMs: 30 * 60_000, staleMs: 10_000 }

export const layerLockPath = (locksDir: string, digest: Digest) =>
  path.join(locksDir, `${digest.replace(":", "-")}.lock`)

/** Runs `use` holding the lock for `digest`. */
export const withLayerLock = <A, E, R>(
  locksDir: string,
  digest: Digest,
  use: Effect.Effect<A, E, R>,
  opts: LayerLockOptions = defaultLayerLock,
): Effect.Effect<A, E | StoreIoError, R> => {
  const lockPath = layerLockPath(locksDir, digest)
  const locked = withMkdirLock(
    lockPath,
    { timeoutMs: opts.timeoutMs, staleMs: opts.staleMs, minWaitMs: 20, maxWaitMs: 500 },
    (f) =>
      new StoreIoError({
        op: "lock layer",
        path: lockPath,
        code: f.kind === "timeout" ? "ELOCKED" : (f.error as { code?: string })?.code ?? "EIO",
        detail: f.kind === "timeout"
          ? `another process has been working on layer ${digest} for longer than ${opts.timeoutMs / 1000}s`
          : String((f.error as Error)?.message ?? f.error),
      }),
    use,
  )
  return Effect.zipRight(
    Effect.tryPromise({ try: () => fs.promises.mkdir(locksDir, { recursive: true, mode: 0o700 }), catch: ioError("create", locksDir) }),
    locked,
  )
}
