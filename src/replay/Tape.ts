/**
 * The clock and the ids a pull takes, recorded and played back.
 *
 * Only `Clock.currentTimeMillis` is taped: it is what workflows, the event log and the
 * registry client (token expiry) read. The `unsafe*` readings are Effect's own (span timing,
 * scheduling) and pass through untouched. On replay, readings come back in the order they are
 * asked for, so time-dependent decisions (a cached token still valid, a Retry-After) see the
 * times they saw when recorded, and `sleep` returns at once: a recorded retry's back-off is
 * not waited for again.
 */
import { Clock, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { Ids } from "../events/Ids.ts"

/** A Clock that reads `base` and writes down each `currentTimeMillis` reading. */
export const recordingClock = (base: Clock.Clock, readings: Array<number>): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
  currentTimeMillis: Effect.sync(() => {
    const t = base.unsafeCurrentTimeMillis()
    readings.push(t)
    return t
  }),
  currentTimeNanos: base.currentTimeNanos,
  sleep: (d) => base.sleep(d),
})

export interface ReplayClock extends Clock.Clock {
  /** readings asked for so far */
  readonly used: () => number
}

/**
 * A Clock that answers `currentTimeMillis` from `readings`, in order; past their end it keeps
 * counting one millisecond per reading from the last one. `sleep` does not wait.
 */
export const replayClock = (readings: ReadonlyArray<number>, base: Clock.Clock = Clock.make()): ReplayClock => {
  let i = 0
  let now = readings[0] ?? 0
  const next = () => {
    now = i < readings.length ? readings[i]! : now + 1
    i++
    return now
  }
  return {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis(),
    unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos(),
    currentTimeMillis: Effect.sync(next),
    currentTimeNanos: Effect.sync(() => BigInt(now) * 1_000_000n),
    sleep: () => Effect.void,
    used: () => i,
  }
}

/** Ids from the live source, each written down. */
export const recordingIds = (ids: Array<string>, live: () => string = randomUUID): Layer.Layer<Ids> =>
  Layer.succeed(Ids, {
    next: () => {
      const id = live()
      ids.push(id)
      return id
    },
  })

/**
 * The recorded ids, in order; past their end `replay-<n>`. The position lives outside the
 * layer, so every service built from it draws from the one sequence.
 */
export const replayIds = (ids: ReadonlyArray<string>): { readonly layer: Layer.Layer<Ids>; readonly used: () => number } => {
  let i = 0
  const next = () => {
    const id = i < ids.length ? ids[i]! : `replay-${i + 1}`
    i++
    return id
  }
  return { layer: Layer.succeed(Ids, { next }), used: () => i }
}
