/**
 * One process at a time works on a given layer, across processes and hosts: a mkdir lock
 * (atomic on local filesystems and NFS; no flock/fcntl, which NFS may lack) under
 * `<root>/.als/locks/`. The holder refreshes the lock's mtime while it works and records its
 * host and pid in it: a lock whose holder is a dead process on this host is taken over at
 * once, one left by another host when it goes stale (staleMs). A waiter says whom it waits for
 * after a few seconds (through the Reporter, so -q and --json stay quiet; stderr where there
 * is none), and gives up after timeoutMs (StoreIoError ELOCKED, exit 5).
 *
 * `als pull --timeout S` waits LOCK_WAIT_PER_TIMEOUT × S for a layer (LayerLockWait): the
 * holder is another pull of the same layer, bounded by the same kind of --timeout per stall,
 * so 30 × S leaves it room to finish; the default (30 min) is 30 × the 60 s download default.
 */
import { Context, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import process from "node:process"
import { type LockOwner, withMkdirLock } from "../sys/MkdirLock.ts"
import type { Digest } from "../domain/Digest.ts"
import { Reporter } from "../events/Journal.ts"
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

/** A duration for people: seconds up to two minutes, minutes beyond. */
const duration = (ms: number) => (ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`)

export const waitingLine = (digest: Digest, holder: LockOwner | undefined, waitedMs: number, timeoutMs: number) =>
  `als: waiting for layer ${digest}: ${holderText(holder)} is working on it (${duration(waitedMs)} so far; giving up after ${duration(timeoutMs)})`

/** How many --timeouts a pull waits for another process's layer lock. */
export const LOCK_WAIT_PER_TIMEOUT = 30

export const defaultLayerLock: LayerLockOptions = { timeoutMs: 30 * 60_000, staleMs: 10_000 }

/** A pull's wait for a layer lock, from its --timeout in seconds (the default without one). */
export const lockWaitFor = (timeoutSeconds: number | undefined): number =>
  timeoutSeconds === undefined ? defaultLayerLock.timeoutMs : LOCK_WAIT_PER_TIMEOUT * timeoutSeconds * 1000

/** How long withLayerLock waits when not told otherwise: a command sets it from its --timeout. */
export class LayerLockWait extends Context.Reference<LayerLockWait>()("als/LayerLockWait", {
  defaultValue: () => defaultLayerLock.timeoutMs,
}) {}

export const layerLockPath = (locksDir: string, digest: Digest) =>
  path.join(locksDir, `${digest.replace(":", "-")}.lock`)

/** Runs `use` holding the lock for `digest`. */
export const withLayerLock = <A, E, R>(
  locksDir: string,
  digest: Digest,
  use: Effect.Effect<A, E, R>,
  given?: LayerLockOptions,
): Effect.Effect<A, E | StoreIoError, R> =>
  Effect.flatMap(Effect.all([LayerLockWait, Effect.serviceOption(Reporter)]), ([waitMs, reporter]) => {
    const opts: LayerLockOptions = given ?? { ...defaultLayerLock, timeoutMs: waitMs }
    // the notice goes where the command's other notices go; stderr for commands without a reporter
    const notice = Option.match(reporter, { onNone: () => undefined, onSome: (r) => r.notice }) ??
      ((line: string) => void process.stderr.write(line + "\n"))
    const lockPath = layerLockPath(locksDir, digest)
    const locked = withMkdirLock(
      lockPath,
      {
        timeoutMs: opts.timeoutMs,
        staleMs: opts.staleMs,
        minWaitMs: 20,
        maxWaitMs: 500,
        recordOwner: true,
        onWait: (holder, waited) => (opts.onWait ?? ((d, h, w) => notice(waitingLine(d, h, w, opts.timeoutMs))))(digest, holder, waited),
      },
      (f) =>
        new StoreIoError({
          op: "lock layer",
          path: lockPath,
          code: f.kind === "timeout" ? "ELOCKED" : (f.error as { code?: string })?.code ?? "EIO",
          detail: f.kind === "timeout"
            ? `${holderText(f.holder)} has been working on layer ${digest} for longer than ${duration(opts.timeoutMs)}${given ? "" : ` (als pull waits ${LOCK_WAIT_PER_TIMEOUT} × --timeout)`}; try again later, or end that process`
            : String((f.error as Error)?.message ?? f.error),
        }),
      use,
    )
    return Effect.zipRight(
      Effect.tryPromise({ try: () => fs.promises.mkdir(locksDir, { recursive: true, mode: 0o700 }), catch: ioError("create", locksDir) }),
      locked,
    )
  })
