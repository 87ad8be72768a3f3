/**
 * One process at a time works on a given layer, across processes and hosts: a mkdir lock
 * (atomic on local filesystems and NFS; no flock/fcntl, which NFS may lack) under
 * `<root>/.als/locks/`. The holder refreshes the lock's mtime while it works; a lock left by
 * a killed process goes stale and is taken over.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import lockfile from "proper-lockfile"
import type { Digest } from "../domain/Digest.ts"
import { StoreIoError } from "./errors.ts"

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
  // proper-lockfile locks "a file"; the lock directory is what matters, the file need not exist
  const target = lockPath.slice(0, -".lock".length)
  return Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        await fs.promises.mkdir(locksDir, { recursive: true })
        return lockfile.lock(target, {
          lockfilePath: lockPath,
          realpath: false,
          stale: opts.staleMs,
          retries: {
            retries: Math.ceil(opts.timeoutMs / 500),
            minTimeout: 20,
            maxTimeout: 500,
            factor: 1.5,
            randomize: true,
          },
          onCompromised: () => undefined,
        })
      },
      catch: (e) =>
        new StoreIoError({
          op: "lock layer",
          path: lockPath,
          code: (e as { code?: string })?.code ?? "EIO",
          detail: (e as { code?: string })?.code === "ELOCKED"
            ? `another process has been working on layer ${digest} for longer than ${opts.timeoutMs / 1000}s`
            : String((e as Error)?.message ?? e),
        }),
    }),
    () => use,
    (release) => Effect.promise(() => release().catch(() => undefined)),
  )
}
