/**
 * A lock between processes and hosts: a directory that exists while someone holds it. mkdir
 * is atomic on local filesystems and on NFS alike (flock/fcntl are not always there on NFS).
 *
 * The holder refreshes the directory's mtime every staleMs/2; a lock not refreshed for staleMs
 * belongs to a dead process and is taken over. Taking over renames the stale directory to a
 * name of our own first (atomic), then checks it is the one found stale (same inode): a
 * waiter that lost the race to another waiter, which meanwhile removed the stale lock and
 * took a fresh one, puts that fresh lock back instead of removing it. (proper-lockfile
 * removes the stale directory outright, and two waiters racing there could both hold it.)
 *
 * Why not proper-lockfile, which this replaces: loading it (graceful-fs, which patches `fs`,
 * retry, signal-exit) cost ~9 ms of every process's start, and `als lookup` runs once per
 * layer on podman's critical path. The protocol itself is this page.
 */
import { Effect } from "effect"
import * as fs from "node:fs"

export interface MkdirLockOptions {
  /** how long to wait for the holder before giving up */
  readonly timeoutMs: number
  /** a lock not refreshed for this long is taken over */
  readonly staleMs: number
  /** waits between tries: minWaitMs·1.5^k, at most maxWaitMs, times random [1, 2) */
  readonly minWaitMs: number
  readonly maxWaitMs: number
}

export type LockFailure =
  | { readonly kind: "timeout"; readonly waitedMs: number; readonly holderAgeMs: number | undefined }
  | { readonly kind: "io"; readonly error: unknown }

/** A held lock. */
interface Held {
  release(): void
}

const code = (e: unknown): string | undefined => (e as { code?: string } | undefined)?.code

let graves = 0

/** Takes the lock if it is free or stale; otherwise returns the age of the holder's last refresh. */
const tryTake = (lockPath: string, staleMs: number): Held | number | undefined => {
  for (let tries = 0; tries < 3; tries++) {
    try {
      fs.mkdirSync(lockPath, 0o700) // never world-writable, whatever the umask (docs/security.md)
      return hold(lockPath, staleMs)
    } catch (e) {
      if (code(e) !== "EEXIST") throw e
    }
    let found: fs.Stats
    try {
      found = fs.statSync(lockPath)
    } catch (e) {
      if (code(e) === "ENOENT") continue // released meanwhile: try again at once
      throw e
    }
    const age = Date.now() - found.mtimeMs
    if (age < staleMs) return Math.max(0, age)
    const grave = `${lockPath}.stale.${process.pid}.${graves++}`
    try {
      fs.renameSync(lockPath, grave)
    } catch (e) {
      if (code(e) === "ENOENT") continue // another waiter moved it first
      throw e
    }
    const moved = fs.statSync(grave)
    if (moved.ino === found.ino && moved.dev === found.dev) {
      fs.rmdirSync(grave)
    } else {
      // a live lock, taken after the stale one went: give it back
      try {
        fs.renameSync(grave, lockPath)
      } catch {
        fs.rmdirSync(grave)
      }
    }
  }
  return undefined
}

const hold = (lockPath: string, staleMs: number): Held => {
  // Refreshing can fail only if the lock was taken over (this process stalled for staleMs):
  // nothing is left to undo then, as with proper-lockfile's onCompromised.
  const timer = setInterval(() => {
    const now = new Date()
    try {
      fs.utimesSync(lockPath, now, now)
    } catch {
      // see above
    }
  }, Math.max(100, Math.floor(staleMs / 2)))
  timer.unref?.()
  return {
    release: () => {
      clearInterval(timer)
      try {
        fs.rmdirSync(lockPath)
      } catch {
        // already gone (taken over): nothing to release
      }
    },
  }
}

const sleep = (ms: number) =>
  Effect.async<void>((resume) => {
    const t = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(t))
  })

/** Runs `use` holding the lock directory `lockPath`; `fail` names a failure to take it. */
export const withMkdirLock = <A, E, R, F>(
  lockPath: string,
  opts: MkdirLockOptions,
  fail: (f: LockFailure) => F,
  use: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | F, R> => {
  const acquire = Effect.suspend(() => {
    const started = Date.now()
    const attempt = (k: number): Effect.Effect<Held, F> => {
      let got: Held | number | undefined
      try {
        got = tryTake(lockPath, opts.staleMs)
      } catch (error) {
        return Effect.fail(fail({ kind: "io", error }))
      }
      if (typeof got === "object") return Effect.succeed(got)
      const waited = Date.now() - started
      if (waited >= opts.timeoutMs) return Effect.fail(fail({ kind: "timeout", waitedMs: waited, holderAgeMs: got }))
      const wait = Math.min(opts.minWaitMs * 1.5 ** k, opts.maxWaitMs) * (1 + Math.random())
      return Effect.zipRight(sleep(Math.min(wait, opts.timeoutMs - waited)), Effect.suspend(() => attempt(k + 1)))
    }
    return attempt(0)
  })
  return Effect.acquireUseRelease(acquire, () => use, (held) => Effect.sync(() => held.release()))
}
