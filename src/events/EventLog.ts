/**
 * The event log service: append-only, hash-chained, safe for several appending processes.
 *
 * - `EventLogFile(root)`: `<root>/.als/log`, appends serialised across processes by the lock
 *   in LogLock.ts (and within the process by a semaphore).
 * - `EventLogMemory`: the same format in a buffer, for replay and tests.
 *
 * An append, under the lock: find the tail (O(1) from the file's end, or only the frames other
 * processes added since this process last looked), cut a torn tail if there is one and log
 * `LogRepaired` first, frame the batch onto the chain, write it with one write call, fdatasync
 * (unless `sync: false`). Payloads are encoded before the lock is taken; only hashing, which
 * needs the tail's hash, happens under it. Readers take no lock: a frame still being written
 * looks like a torn tail and ends their read.
 *
 * Group commit: the fdatasync runs on another thread, and the appends of this process that
 * arrive meanwhile wait in a queue; the next lock holder writes the whole queue with one write
 * and one fdatasync. Each append still returns only once its events are synced (or fails with
 * the batch's error, its frames cut again).
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { Chunk, Clock, Context, Effect, Either, Layer, Option, ParseResult, Schema, type Scope, Stream } from "effect"
import { type Envelope, Event, EventVersions } from "./Events.ts"
import { Ids } from "./Ids.ts"
import { isLogError, type LogError, logIoError, LogIoError } from "./LogErrors.ts"
import { startVerifier, VERIFY_THREAD_MIN_BYTES } from "./FoldVerifier.ts"
import { FILE_HEADER, FRAME_OVERHEAD, frameSize, hashHex, HEADER_SIZE, MAX_PAYLOAD, writeFrame } from "./LogFormat.ts"
import { defaultLockOptions, type LockOptions, withFileLock } from "./LogLock.ts"
import { FrameReader, startAt } from "./FrameReader.ts"
import type { FoldEntry, LogEntry, Tail } from "./LogFrames.ts"
import { locateTail } from "./LogTail.ts"
import { verifyStore, type VerifyReport } from "./LogVerify.ts"
import { type ByteStore, FileStore, MemoryStore, readAt } from "./LogStore.ts"
import { encodePayload, type EnvelopeFields } from "./Payload.ts"

export { Ids, IdsLive, IdsSequential, randomIds } from "./Ids.ts"
export * from "./LogErrors.ts"
export type { FoldEntry, LogEntry } from "./LogFrames.ts"
export type { VerifyProblem, VerifyReport } from "./LogVerify.ts"

export interface LogHead {
  /** bytes up to the end of the last good frame */
  readonly size: number
  /** that frame's hash, hex (32 zero bytes for an empty log) */
  readonly hash: string
  readonly frames?: number
}

export interface EventLogApi {
  /** Appends `events` in order under one lock; returns their entries (a repair's LogRepaired is not among them). */
  readonly append: (events: ReadonlyArray<Event>, workflow: string) => Effect.Effect<ReadonlyArray<LogEntry>, LogError>
  /** Every entry from the start, or from `fromOffset` (an entry's offset), read in 1 MiB chunks. */
  readonly stream: (opts?: { readonly fromOffset?: number }) => Stream.Stream<LogEntry, LogError>
  /** Every entry from the start, in order, without the entries' hashes (see FoldEntry). */
  readonly fold: <S>(initial: S, f: (s: S, e: FoldEntry) => S) => Effect.Effect<S, LogError>
  /** Full scan: every checksum, link and event schema (`als audit`). */
  readonly verify: () => Effect.Effect<VerifyReport, LogError>
  /** The last good frame, found from the end in O(1) (`als audit --checkpoint`). */
  readonly head: () => Effect.Effect<LogHead, LogError>
}

export class EventLog extends Context.Tag("als/EventLog")<EventLog, EventLogApi>() {}

export interface EventLogOptions {
  /** fdatasync after every append (default true) */
  readonly sync?: boolean
  readonly lock?: Partial<LockOptions>
  /** check a big log's checksums on a second thread while folding (default true; FoldVerifier.ts) */
  readonly verifyThread?: boolean
  /** from how many bytes to fold on (default VERIFY_THREAD_MIN_BYTES) */
  readonly verifyThreadMinBytes?: number
}

type Locker = <A>(use: Effect.Effect<A, LogError>) => Effect.Effect<A, LogError>

/** An append in the queue: its frames' parts, and how its caller learns the outcome. */
interface Waiting {
  readonly payloads: ReadonlyArray<Buffer>
  readonly envelopes: ReadonlyArray<Envelope>
  readonly events: ReadonlyArray<Event>
  readonly time: number
  readonly workflow: string
  readonly settle: (outcome: Effect.Effect<ReadonlyArray<LogEntry>, LogError>) => void
}

/** Runs imperative log code, turning thrown LogErrors into failures and anything else into defects. */
const attempt = <A>(f: () => A): Effect.Effect<A, LogError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (e) {
      return isLogError(e) ? Effect.fail(e) : Effect.die(e)
    }
  })

const host = os.hostname()

// Checked once, here, where events enter the log: readers can then trust what a valid frame
// holds (Payload.ts decodes it without a schema on the fold path). Typed callers cannot fail
// this, so a failure is a defect, not an expected error.
const isEvent = Schema.is(Event)
const invalidEvent = (event: unknown, i: number): Error => {
  const why = Either.match(Schema.validateEither(Event)(event), {
    onLeft: (e) => ParseResult.TreeFormatter.formatErrorSync(e),
    onRight: () => "",
  })
  return new Error(`EventLog.append: event ${i} does not match the Event schema: ${why}`)
}

/**
 * `serial` orders this process's appends (a semaphore); `fileLock` keeps other processes out
 * while one writes.
 */
const makeApi = (
  store: ByteStore,
  ids: { readonly next: () => string },
  serial: Locker,
  fileLock: Locker,
  opts?: EventLogOptions,
): EventLogApi => {
  const sync = opts?.sync ?? true
  const verifyThread = opts?.verifyThread ?? true
  const verifyThreadMinBytes = opts?.verifyThreadMinBytes ?? VERIFY_THREAD_MIN_BYTES
  // The tail this process saw last: later appends check only what was added since.
  let known: Tail | undefined

  const writeLocked = (
    payloads: ReadonlyArray<Buffer>,
    envelopes: ReadonlyArray<Envelope>,
    events: ReadonlyArray<Event>,
    time: number,
    workflow: string,
  ): { readonly entries: ReadonlyArray<LogEntry>; readonly base: number } => {
    const size = store.size()
    const state = locateTail(store, size, known)
    if (state.kind === "corrupt") throw state.error
    const tail = state.tail
    let repair: { payload: Buffer; envelope: EnvelopeFields; event: Event } | undefined
    if (state.kind === "torn") {
      const droppedBytes = size - tail.end
      // at most one frame's worth: a torn tail is one cut-short frame (or zeros)
      store.keepCut(tail.end, readAt(store, tail.end, Math.min(droppedBytes, FRAME_OVERHEAD + MAX_PAYLOAD)))
      store.truncate(tail.end)
      const event: Event = { _tag: "LogRepaired", cutAt: tail.end, droppedBytes }
      const envelope = { id: ids.next(), time, host, pid: process.pid, workflow }
      repair = { payload: encodePayload(envelope, event), envelope, event }
    }
    const header = tail.end === 0
    const base = tail.end
    let total = header ? HEADER_SIZE : 0
    if (repair) total += frameSize(repair.payload.length)
    for (const p of payloads) total += frameSize(p.length)
    const out = Buffer.allocUnsafe(total)
    let at = 0
    if (header) at = FILE_HEADER.copy(out, 0)
    let prev: Uint8Array = tail.hash
    let index = tail.nextIndex
    if (repair) {
      const hashAt = writeFrame(out, at, index, prev, repair.payload)
      prev = out.subarray(hashAt, hashAt + 32)
      at += frameSize(repair.payload.length)
      index++
    }
    const entries = new Array<LogEntry>(payloads.length)
    for (let i = 0; i < payloads.length; i++) {
      const payload = payloads[i]
      const hashAt = writeFrame(out, at, index, prev, payload)
      prev = out.subarray(hashAt, hashAt + 32)
      entries[i] = { offset: base + at, index, hash: hashHex(out, hashAt), envelope: envelopes[i], event: events[i] }
      at += frameSize(payload.length)
      index++
    }
    try {
      store.append(out)
    } catch (e) {
      cutBack(base)
      throw e
    }
    known = { end: base + total, hash: Buffer.from(prev), nextIndex: index }
    return { entries, base }
  }

  /** Leaves only whole, synced frames behind (best effort: a later append would cut them anyway). */
  const cutBack = (base: number): void => {
    known = undefined
    try {
      store.truncate(base)
    } catch {
      // the original error says more
    }
  }

  /** fdatasync on another thread; a failure cuts the frames written since `base` again. */
  const syncFrom = (base: number): Effect.Effect<void, LogError> =>
    !sync ? Effect.void : Effect.async<void, LogError>((resume) => {
      store.syncAsync((e) => {
        if (e === undefined) return resume(Effect.void)
        cutBack(base)
        resume(isLogError(e) ? Effect.fail(e) : Effect.die(e))
      })
    })

  /** Appends waiting for the lock; whoever holds it next writes them all (group commit). */
  let queue: Array<Waiting> = []

  /** Under the lock: writes and syncs every queued append, then settles each. */
  const writeQueue = Effect.suspend(() => {
    const batch = queue
    queue = []
    if (batch.length === 0) return Effect.void
    const first = batch[0]
    const all = <T>(pick: (w: Waiting) => ReadonlyArray<T>): ReadonlyArray<T> => batch.length === 1 ? pick(first) : batch.flatMap(pick)
    return attempt(() => writeLocked(all((w) => w.payloads), all((w) => w.envelopes), all((w) => w.events), first.time, first.workflow)).pipe(
      Effect.tap(({ base }) => syncFrom(base)),
      Effect.match({
        onFailure: (e) => {
          for (const w of batch) w.settle(Effect.fail(e))
        },
        onSuccess: ({ entries }) => {
          let at = 0
          for (const w of batch) {
            w.settle(Effect.succeed(batch.length === 1 ? entries : entries.slice(at, at + w.events.length)))
            at += w.events.length
          }
        },
      }),
      // started, it finishes: the others in the batch wait on it, and a write is not undone by an interruption
      Effect.uninterruptible,
    )
  })

  const append = Effect.fn("EventLog.append")(function*(events: ReadonlyArray<Event>, workflow: string) {
    if (events.length === 0) return [] as ReadonlyArray<LogEntry>
    const time = yield* Clock.currentTimeMillis
    const pid = process.pid
    const envelopes = new Array<Envelope>(events.length)
    const payloads = new Array<Buffer>(events.length)
    for (let i = 0; i < events.length; i++) {
      const event = events[i]
      if (!isEvent(event)) return yield* Effect.die(invalidEvent(event, i))
      const envelope: Envelope = { id: ids.next(), time, host, pid, workflow, v: EventVersions[event._tag] }
      const payload = encodePayload(envelope, event)
      if (payload.length > MAX_PAYLOAD) {
        return yield* new LogIoError({
          op: "append to",
          path: store.path,
          code: "EFBIG",
          detail: `a ${event._tag} event encodes to ${payload.length} bytes, more than the ${MAX_PAYLOAD} a frame may hold`,
        })
      }
      envelopes[i] = envelope
      payloads[i] = payload
    }
    let settled: Effect.Effect<ReadonlyArray<LogEntry>, LogError> | undefined
    const waiting: Waiting = { payloads, envelopes, events, time, workflow, settle: (r) => void (settled = r) }
    queue.push(waiting)
    // an earlier holder may have written this append with its own batch: then no lock is taken
    yield* serial(Effect.suspend(() => (settled !== undefined ? Effect.void : fileLock(writeQueue)))).pipe(
      // not written (interrupted, or the lock could not be had: LogLocked): out of the queue, never written later
      Effect.ensuring(Effect.sync(() => {
        if (settled === undefined) queue = queue.filter((w) => w !== waiting)
      })),
    )
    if (settled === undefined) return yield* Effect.die(new Error("EventLog.append: the append was neither written nor refused"))
    return yield* settled
  })

  const BATCH = 1024
  const stream = (opts?: { readonly fromOffset?: number }): Stream.Stream<LogEntry, LogError> =>
    Stream.suspend(() => {
      let reader: FrameReader | null | undefined
      const pull = Effect.suspend((): Effect.Effect<Chunk.Chunk<LogEntry>, Option.Option<LogError>> => {
        try {
          if (reader === undefined) {
            const start = startAt(store, opts?.fromOffset)
            reader = start === undefined ? null : new FrameReader(store, start)
          }
          if (reader === null) return Effect.fail(Option.none())
          const out: Array<LogEntry> = []
          for (let e = reader.next(); e !== undefined; e = out.length < BATCH ? reader.next() : undefined) out.push(e)
          return out.length === 0 ? Effect.fail(Option.none()) : Effect.succeed(Chunk.unsafeFromArray(out))
        } catch (e) {
          return isLogError(e) ? Effect.fail(Option.some(e)) : Effect.die(e)
        }
      })
      return Stream.repeatEffectChunkOption(pull)
    })

  const fold = <S>(initial: S, f: (s: S, e: FoldEntry) => S): Effect.Effect<S, LogError> =>
    attempt(() => {
      let s = initial
      const start = startAt(store, undefined)
      if (start === undefined) return s
      const reader = new FrameReader(store, start)
      // a big log's checksums are checked on a second thread, ahead of this one (FoldVerifier.ts)
      const size = store.size()
      const verifier = store instanceof FileStore && verifyThread && size - start.offset >= verifyThreadMinBytes
        ? startVerifier(store.path, start.offset, size)
        : undefined
      if (verifier !== undefined) reader.trustVerifier(verifier.verifiedEnd)
      try {
        for (let e = reader.nextFolded(); e !== undefined; e = reader.nextFolded()) s = f(s, e)
      } finally {
        verifier?.stop()
      }
      return s
    }).pipe(Effect.withSpan("EventLog.fold"))

  const verify = () => attempt(() => verifyStore(store)).pipe(Effect.withSpan("EventLog.verify"))

  const head = () =>
    attempt((): LogHead => {
      const state = locateTail(store, store.size())
      if (state.kind === "corrupt") throw state.error
      return { size: state.tail.end, hash: Buffer.from(state.tail.hash).toString("hex"), frames: state.tail.nextIndex }
    }).pipe(Effect.withSpan("EventLog.head"))

  return { append, stream, fold, verify, head }
}

/** The path of the log under a store root. */
export const logPath = (root: string): string => path.join(root, ".als", "log")

/** What EventLogFile provides (the lean lookup path builds it without layers). */
export const makeEventLogFile = (root: string, opts?: EventLogOptions): Effect.Effect<EventLogApi, LogError, Ids | Scope.Scope> =>
  Effect.gen(function*() {
    const ids = yield* Ids
    const file = logPath(root)
    const dir = path.dirname(file)
    const lockPath = path.join(dir, "log.lock")
    const lockOpts: LockOptions = { ...defaultLockOptions, ...opts?.lock }
    const store = yield* Effect.acquireRelease(
      attempt(() => {
        try {
          if (!fs.existsSync(dir)) {
            // modes whatever the umask (docs/security.md): the root clients read, .als als's own
            const root = path.dirname(dir)
            if (!fs.existsSync(root)) {
              fs.mkdirSync(root, { recursive: true })
              fs.chmodSync(root, 0o755)
            }
            fs.mkdirSync(dir, { mode: 0o700 })
            fs.chmodSync(dir, 0o700)
          }
        } catch (e) {
          if (!fs.existsSync(dir)) throw logIoError("create", dir, e) // else: a read-only store
        }
        return FileStore.open(file)
      }),
      (s) => Effect.sync(() => s.close()),
    )
    const semaphore = yield* Effect.makeSemaphore(1)
    return makeApi(store, ids, semaphore.withPermits(1), (use) => withFileLock(lockPath, lockOpts, use), opts)
  })

/** The log at `<root>/.als/log`; creates `<root>/.als` and the file if missing. */
export const EventLogFile = (root: string, opts?: EventLogOptions): Layer.Layer<EventLog, LogError, Ids> =>
  Layer.scoped(EventLog, makeEventLogFile(root, opts))

/**
 * A log over the given buffer store (tests that damage bytes keep a handle on it); `sync: true`
 * calls the store's syncAsync as a file's log does.
 */
export const EventLogOn = (store: MemoryStore, opts?: EventLogOptions): Layer.Layer<EventLog, never, Ids> =>
  Layer.effect(
    EventLog,
    Effect.gen(function*() {
      const ids = yield* Ids
      const semaphore = yield* Effect.makeSemaphore(1)
      return makeApi(store, ids, semaphore.withPermits(1), (use) => use, { sync: false, ...opts })
    }),
  )

/** A fresh, empty in-memory log in the same format. */
export const EventLogMemory: Layer.Layer<EventLog, never, Ids> = Layer.suspend(() => EventLogOn(new MemoryStore()))

export { MemoryStore } from "./LogStore.ts"
