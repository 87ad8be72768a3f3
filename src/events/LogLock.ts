/**
 * The cross-process append lock: a mkdir lock (src/sys/MkdirLock.ts) on `<root>/.als/log.lock`
 * (mkdir is atomic on local filesystems and NFS alike). The holder refreshes the directory's
 * mtime; a lock left by a killed process is taken over once it is `staleMs` old.
 *
 * The holder does not write who it is into the lock: creating a file costs ~0.4 ms on ext4
 * here, as much as the lock itself, on every append. Appends hold the lock only for a
 * synchronous write (+ fdatasync), so a lock that stays taken means its holder died (it
 * goes stale) or is stuck in I/O; LogLocked reports how long ago the lock was last refreshed.
 */
import { Effect } from "effect"
import { withMkdirLock } from "../sys/MkdirLock.ts"
import { LogIoError, logIoError, LogLocked } from "./LogErrors.ts"

export interface LockOptions {
  /** how long to wait for another appender before failing with LogLocked */
  readonly timeoutMs: number
  /** age after which a lock is considered left behind */
  readonly staleMs: number
}

export const defaultLockOptions: LockOptions = { timeoutMs: 30_000, staleMs: 10_000 }

// Fast retries: appends hold the lock for well under a millisecond without fsync and a few
// milliseconds with it, so waiting long between tries only adds latency.
const MIN_WAIT = 1
const MAX_WAIT = 16

/** Runs `use` while holding the lock at `lockPath`. */
export const withFileLock = <A, E, R>(
  lockPath: string,
  opts: LockOptions,
  use: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | LogLocked | LogIoError, R> =>
  withMkdirLock(
    lockPath,
    { timeoutMs: opts.timeoutMs, staleMs: opts.staleMs, minWaitMs: MIN_WAIT, maxWaitMs: MAX_WAIT },
    (f): LogLocked | LogIoError =>
      f.kind === "timeout"
        ? new LogLocked({
          path: lockPath,
          waitedMs: f.waitedMs,
          holder: f.holderAgeMs === undefined ? undefined : `a process that last refreshed it ${Math.round(f.holderAgeMs)} ms ago`,
        })
        : logIoError("lock", lockPath, f.error),
    use,
  )
