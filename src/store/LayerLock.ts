/**
 * One process at a time works on a given layer, across processes and hosts: a mkdir lock
 * (atomic on local filesystems and NFS; no flock/fcntl, which NFS may lack) under
 * `<root>/.als/locks/`. The holder refreshes the lock's mtime while it works and records its
 * host and pid in it: a lock whose holder is a dead process on this host is taken over at
 * once, one left by another host when it goes stale (staleMs). A waiter says on stderr whom it
 * waits for after a few seconds, and gives up after timeoutMs (StoreIoError ELOCKED, exit 5).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { type LockOwner, withMkdirLock } from "../sys/MkdirLock.ts"
import type { Digest } from "../domain/Digest.ts"
import { ioError, StoreIoError } from "./errors.ts"

export interface LayerLockOptions {
  /** how long to wait for another process working on the same layer */
  readonly timeoutMs: number
  /** a lock not refreshed for this long belongs to a dead process */
  readonly staleMs: number
  /** told once, a few seconds into a wait, who holds the layer (stderr by default) */
  readonly onWait?: ((digest: Digest, holder: LockOwner | undefined, waitedMs: number) => void) | undefined
}

const holderText = (h: LockOwner | undefined) => (h ? `another als (pid ${h.pid} on ${h.host})` : "another process")

const tellWaiting = (digest: Digest, holder: LockOwner | undefined, waitedMs: number, timeoutMs: number) => {
  process.stderr.write(
    `als: waiting for layer ${digest}: ${holderText(holder)} is working on it (${Math.round(waitedMs / 1000)} s so far; giving up after ${Math.round(timeoutMs / 60_000)} min)\n`,
  )
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
    {
      timeoutMs: opts.timeoutMs,
      staleMs: opts.staleMs,
      minWaitMs: 20,
      maxWaitMs: 500,
      recordOwner: true,
      onWait: (holder, waited) => (opts.onWait ?? ((d, h, w) => tellWaiting(d, h, w, opts.timeoutMs)))(digest, holder, waited),
    },
    (f) =>
      new StoreIoError({
        op: "lock layer",
        path: lockPath,
        code: f.kind === "timeout" ? "ELOCKED" : (f.error as { code?: string })?.code ?? "EIO",
        detail: f.kind === "timeout"
          ? `${holderText(f.holder)} has been working on layer ${digest} for longer than ${opts.timeoutMs / 1000} s; try again later, or end that process`
          : String((f.error as Error)?.message ?? f.error),
      }),
    use,
  )
  return Effect.zipRight(
    Effect.tryPromise({ try: () => fs.promises.mkdir(locksDir, { recursive: true, mode: 0o700 }), catch: ioError("create", locksDir) }),
    locked,
  )
}
