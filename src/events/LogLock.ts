/**
 * The cross-process append lock: proper-lockfile's mkdir lock on `<root>/.als/log.lock`
 * (mkdir is atomic on local filesystems and NFS alike). The holder refreshes the directory's
 * mtime; a lock left by a killed process is taken over once it is `staleMs` old.
 *
 * The holder does not write who it is into the lock: creating a file costs ~0.4 ms on ext4
 * here, as much as the lock itself, on every append. Appends hold the lock only for a
 * synchronous write (+ fdatasync), so a lock that stays taken means its holder died (it
 * goes stale) or is stuck in I/O; LogLocked reports how long ago the lock was last refreshed.
 */
import * as fs from "node:fs"
import lockfile from "proper-lockfile"
import { Effect } from "effect"
import { LogIoError, logIoError, LogLocked } from "./LogErrors.ts"

export interface LockOptions {
  /** how long to wait for another appender before failing with LogLocked */
  readonly timeoutMs: number
  /** age after which a lock is considered left behind (proper-lockfile's minimum is 2000) */
  readonly staleMs: number
}

export const defaultLockOptions: LockOptions = { timeoutMs: 30_000, staleMs: 10_000 }

// Fast retries: appends hold the lock for well under a millisecond without fsync and a few
// milliseconds with it, so waiting long between tries only adds latency.
const MIN_WAIT = 1
const MAX_WAIT = 16

// min(MIN·1.5^k, MAX) × random[1, 2): the first ~7 tries take ~50 ms, then ≥ MAX each.
const retriesFor = (timeoutMs: number): number => 7 + Math.ceil(Math.max(0, timeoutMs - 50) / MAX_WAIT)

const lockAge = (lockPath: string): string | undefined => {
  try {
    return `a process that last refreshed it ${Math.round(Date.now() - fs.statSync(lockPath).mtimeMs)} ms ago`
  } catch {
    return undefined
  }
}

/** Runs `use` while holding the lock at `lockPath` (which guards `logPath`). */
export const withFileLock = <A, E, R>(
  logPath: string,
  lockPath: string,
  opts: LockOptions,
  use: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | LogLocked | LogIoError, R> =>
  Effect.acquireUseRelease(
    Effect.suspend(() => {
      const started = Date.now()
      return Effect.tryPromise({
        try: () =>
          lockfile.lock(logPath, {
            lockfilePath: lockPath,
            realpath: false,
            stale: opts.staleMs,
            retries: { retries: retriesFor(opts.timeoutMs), minTimeout: MIN_WAIT, maxTimeout: MAX_WAIT, factor: 1.5, randomize: true },
            // The default throws from a timer. Being taken over can only happen if this process
            // stalled for longer than staleMs while holding the lock; nothing is left to undo then.
            onCompromised: () => undefined,
          }),
        catch: (e) =>
          (e as { code?: string })?.code === "ELOCKED"
            ? new LogLocked({ path: lockPath, waitedMs: Date.now() - started, holder: lockAge(lockPath) })
            : logIoError("lock", lockPath, e),
      })
    }),
    () => use,
    (release) => Effect.promise(() => release().catch(() => undefined)),
  )
