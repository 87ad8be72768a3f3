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
 * With `recordOwner`, the holder writes `owner` (host name and pid) into the directory: a
 * waiter on the same host whose holder's pid no longer exists takes the lock over at once,
 * without waiting for it to go stale, and a waiter can say whom it waits for. The file is read
 * as untrusted (regular file, no symlink, 256 bytes at most, strict format).
 *
 * Why not proper-lockfile, which this replaces: loading it (graceful-fs, which patches `fs`,
 * retry, signal-exit) cost ~9 ms of every process's start, and `als lookup` runs once per
 * layer on podman's critical path. The protocol itself is this page.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { processAlive } from "./ProcessAlive.ts"

export interface MkdirLockOptions {
  /** how long to wait for the holder before giving up */
  readonly timeoutMs: number
  /** a lock not refreshed for this long is taken over */
  readonly staleMs: number
  /** waits between tries: minWaitMs·1.5^k, at most maxWaitMs, times random [1, 2) */
  readonly minWaitMs: number
  readonly maxWaitMs: number
  /** write host and pid into the lock, so that a dead holder on this host is known at once */
  readonly recordOwner?: boolean | undefined
  /** told once when the wait has lasted `noticeMs` (default 3 s), with the holder if known */
  readonly onWait?: ((holder: LockOwner | undefined, waitedMs: number) => void) | undefined
  readonly noticeMs?: number | undefined
}

/** Who holds a lock, as its `owner` file says. */
export interface LockOwner {
  readonly host: string
  readonly pid: number
}

export type LockFailure =
  | { readonly kind: "timeout"; readonly waitedMs: number; readonly holderAgeMs: number | undefined; readonly holder?: LockOwner | undefined }
  | { readonly kind: "io"; readonly error: unknown }

const OWNER = "owner"
const ownerLine = /^([A-Za-z0-9][A-Za-z0-9._-]{0,252}) ([1-9][0-9]{0,9})\n?$/

/** The lock's owner file, if it is there and well-formed; anything else is "unknown". */
export const readOwner = (lockPath: string): LockOwner | undefined => {
  let fd: number
  try {
    fd = fs.openSync(`${lockPath}/${OWNER}`, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch {
    return undefined
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return undefined
    const buf = Buffer.alloc(257)
    const n = fs.readSync(fd, buf, 0, buf.length, 0)
    if (n > 256) return undefined
    const m = ownerLine.exec(buf.subarray(0, n).toString("latin1"))
    return m ? { host: m[1]!, pid: Number(m[2]) } : undefined
  } catch {
    return undefined
  } finally {
    fs.closeSync(fd)
  }
}

/** A holder on this host whose process is gone (EPERM means it exists, under another user). */
const isDeadHere = (o: LockOwner | undefined): boolean => {
  if (!o || o.host !== os.hostname() || o.pid === process.pid) return false
  return !processAlive(o.pid)
}

const writeOwner = (lockPath: string) => {
  // exclusive create: a symlink or anything else planted there fails instead of being followed
  const fd = fs.openSync(`${lockPath}/${OWNER}`, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600)
  try {
    fs.writeSync(fd, `${os.hostname()} ${process.pid}\n`)
  } finally {
    fs.closeSync(fd)
  }
}

/** Removes a lock directory we own or took over: its owner file, then itself. */
const removeLockDir = (dir: string) => {
  try {
    fs.unlinkSync(`${dir}/${OWNER}`)
  } catch {
    // none written (yet), or already gone
  }
  fs.rmdirSync(dir)
}

/** A held lock. */
interface Held {
  release(): void
}

const code = (e: unknown): string | undefined => (e as { code?: string } | undefined)?.code

let graves = 0

/** What a waiter saw of the holder: the age of its last refresh, and who it is if known. */
interface Busy {
  readonly ageMs: number
  readonly holder: LockOwner | undefined
}

/** Takes the lock if it is free, stale or its holder dead; otherwise says who holds it. */
const tryTake = (lockPath: string, staleMs: number, recordOwner: boolean): Held | Busy | undefined => {
  for (let tries = 0; tries < 3; tries++) {
    try {
      fs.mkdirSync(lockPath, 0o700) // never world-writable, whatever the umask (docs/security.md)
    } catch (e) {
      if (code(e) !== "EEXIST") throw e
      const busy = takeOver(lockPath, staleMs)
      if (busy === "retry") continue
      return busy
    }
    if (recordOwner) {
      try {
        writeOwner(lockPath)
      } catch (e) {
        removeLockDir(lockPath)
        throw e
      }
    }
    return hold(lockPath, staleMs, recordOwner)
  }
  return undefined
}

/** The lock exists: "retry" when it was removed meanwhile, or moved aside as stale or dead. */
const takeOver = (lockPath: string, staleMs: number): Busy | "retry" => {
  let found: fs.Stats
  try {
    found = fs.statSync(lockPath)
  } catch (e) {
    if (code(e) === "ENOENT") return "retry" // released meanwhile: try again at once
    throw e
  }
  const age = Date.now() - found.mtimeMs
  const holder = readOwner(lockPath)
  if (age < staleMs && !isDeadHere(holder)) return { ageMs: Math.max(0, age), holder }
  const grave = `${lockPath}.stale.${process.pid}.${graves++}`
  try {
    fs.renameSync(lockPath, grave)
  } catch (e) {
    if (code(e) === "ENOENT") return "retry" // another waiter moved it first
    throw e
  }
  const moved = fs.statSync(grave)
  if (moved.ino === found.ino && moved.dev === found.dev) {
    removeLockDir(grave)
  } else {
    // a live lock, taken after the stale one went: give it back
    try {
      fs.renameSync(grave, lockPath)
    } catch {
      removeLockDir(grave)
    }
  }
  return "retry"
}

const hold = (lockPath: string, staleMs: number, recordOwner: boolean): Held => {
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
      if (recordOwner) {
        // taken over while this process was stopped: the lock is someone else's now
        const o = readOwner(lockPath)
        if (o?.host !== os.hostname() || o.pid !== process.pid) return
      }
      try {
        removeLockDir(lockPath)
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
    let told = false
    const attempt = (k: number): Effect.Effect<Held, F> => {
      let got: Held | Busy | undefined
      try {
        got = tryTake(lockPath, opts.staleMs, opts.recordOwner === true)
      } catch (error) {
        return Effect.fail(fail({ kind: "io", error }))
      }
      if (got !== undefined && "release" in got) return Effect.succeed(got)
      const waited = Date.now() - started
      if (waited >= opts.timeoutMs) {
        return Effect.fail(fail({ kind: "timeout", waitedMs: waited, holderAgeMs: got?.ageMs, holder: got?.holder }))
      }
      if (!told && opts.onWait && waited >= (opts.noticeMs ?? 3_000)) {
        told = true
        opts.onWait(got?.holder, waited)
      }
      const wait = Math.min(opts.minWaitMs * 1.5 ** k, opts.maxWaitMs) * (1 + Math.random())
      return Effect.zipRight(sleep(Math.min(wait, opts.timeoutMs - waited)), Effect.suspend(() => attempt(k + 1)))
    }
    return attempt(0)
  })
  return Effect.acquireUseRelease(acquire, () => use, (held) => Effect.sync(() => held.release()))
}
