/**
 * What a replay may change by nature, named in this one place (docs/replay.md explains each).
 *
 * Everything not named here must come out of a replay exactly as it was recorded. Each name is
 * here for a reason a replay cannot undo:
 * - `envelope.id`: fresh random ids (a replay feeds the recorded ids back, but layers run in
 *   parallel, so which event draws which id depends on scheduling);
 * - `envelope.time` and the `ms` durations: wall-clock readings (fed back from the recording in
 *   the order they are asked for, which parallel layers also reorder);
 * - `envelope.host`, `envelope.pid`: the machine and process that ran;
 * - `envelope.workflow`: a fresh id per pull; it is not ignored but renumbered (w1, w2 … in
 *   order of first appearance), so that the events of one pull must stay one pull;
 * - paths under the store root: a replay runs in a scratch store; the root is written as
 *   `<root>` in the fields listed in `ROOT_PATH_FIELDS` before comparing.
 */
import type { Event, EventType } from "../events/Events.ts"

/** Event fields left out of the comparison, per event type. */
export const VOLATILE_FIELDS: { readonly [K in EventType]?: ReadonlyArray<string> } = {
  BlobFetched: ["ms"],
  PullCompleted: ["ms"],
}

/** Event fields holding a path under the store root: the root is replaced by `<root>`. */
export const ROOT_PATH_FIELDS: { readonly [K in EventType]?: ReadonlyArray<string> } = {
  StoreInitialized: ["root"],
  LayerFound: ["path"],
  PoolProbed: ["pool", "path"],
  LinkRefused: ["pool", "path"],
  LayerLinked: ["pool", "poolPath"],
  LayerCommitted: ["pool"],
}

/** A recorded or replayed event reduced to what must be equal. */
export interface NormalEvent {
  readonly type: EventType
  /** `w1`, `w2` … by first appearance; "" for events outside any workflow */
  readonly workflow: string
  /** the shape version the event was written with */
  readonly v: number
  /** the event's fields, volatile ones removed, root paths rewritten */
  readonly fields: Readonly<Record<string, unknown>>
}

export interface RawEvent {
  /** only these envelope fields are compared: id, time, host and pid are never read */
  readonly envelope: { readonly workflow: string; readonly v: number }
  readonly event: Event
}

const underRoot = (value: unknown, root: string): unknown => {
  if (typeof value !== "string" || root === "") return value
  if (value === root) return "<root>"
  return value.startsWith(`${root}/`) ? `<root>${value.slice(root.length)}` : value
}

/** Normalises a list of events from one run (recorded or replayed) made in store `root`. */
export const normalizeEvents = (events: ReadonlyArray<RawEvent>, root: string): Array<NormalEvent> => {
  const workflows = new Map<string, string>()
  return events.map(({ envelope, event }) => {
    const { _tag, ...rest } = event as Event & Record<string, unknown>
    const drop = new Set(VOLATILE_FIELDS[_tag] ?? [])
    const paths = new Set(ROOT_PATH_FIELDS[_tag] ?? [])
    const fields: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(rest)) {
      if (drop.has(k) || v === undefined) continue
      fields[k] = paths.has(k) ? underRoot(v, root) : v
    }
    let workflow = ""
    if (envelope.workflow !== "") {
      workflow = workflows.get(envelope.workflow) ?? `w${workflows.size + 1}`
      workflows.set(envelope.workflow, workflow)
    }
    return { type: _tag, workflow, v: envelope.v, fields }
  })
}
