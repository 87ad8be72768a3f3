/**
 * Comparing the events of a replay with the recorded ones (pure).
 *
 * Layers run in parallel (`--jobs`), so the global order of one layer's events against
 * another's depends on scheduling, not on the workflow. The comparison therefore splits each
 * run into streams whose order the workflow does fix, and compares those in order:
 *
 * - per workflow, the image-level events (PullRequested, ManifestResolved, RefIndexed,
 *   PullCompleted, PullFailed …), in order;
 * - per workflow and layer, that layer's events (LookupRequested … LayerCommitted), in order,
 *   each with its *phase*: how many image-level events of its workflow came before it (so a
 *   layer event that moved before ManifestResolved or after PullCompleted is a difference).
 *
 * Fields that differ by nature are left out beforehand (Volatile.ts).
 */
import type { EventType } from "../events/Events.ts"
import type { NormalEvent } from "./Volatile.ts"

/** Event types that belong to one layer's chain of steps. */
export const LAYER_EVENTS: ReadonlySet<EventType> = new Set<EventType>([
  "LookupRequested",
  "LayerFound",
  "LayerMissing",
  "PoolProbed",
  "LinkRefused",
  "TocIgnored",
  "LayerLinked",
  "BlobFetched",
  "LayerExtracted",
  "LayerCommitted",
  "LayerRemoved",
])

export interface EventDifference {
  /** which stream: `w1 image` or `w1 layer sha256:…` */
  readonly stream: string
  /** position in the stream, from 0 */
  readonly step: number
  /** index in the recorded / replayed event list, from 0 (absent when that side has no event) */
  readonly recordedIndex?: number
  readonly replayedIndex?: number
  readonly recordedType?: string
  readonly replayedType?: string
  /** the field that differs (`layers[1].diffId`), or "event" when one side has no event or another type */
  readonly field: string
  readonly recorded?: unknown
  readonly replayed?: unknown
}

interface Placed {
  readonly index: number
  readonly event: NormalEvent
  readonly phase: number
}

const streamsOf = (events: ReadonlyArray<NormalEvent>): Map<string, Array<Placed>> => {
  const streams = new Map<string, Array<Placed>>()
  const imageCount = new Map<string, number>()
  events.forEach((event, index) => {
    const layer = event.fields.layer
    const isLayer = LAYER_EVENTS.has(event.type) && typeof layer === "string"
    const key = isLayer ? `${event.workflow || "-"} layer ${layer}` : `${event.workflow || "-"} image`
    const phase = imageCount.get(event.workflow) ?? 0
    if (!isLayer) imageCount.set(event.workflow, phase + 1)
    const list = streams.get(key) ?? []
    list.push({ index, event, phase })
    streams.set(key, list)
  })
  return streams
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Every leaf where `a` and `b` differ, as [path, a, b]. */
export const deepDiff = (a: unknown, b: unknown, at = ""): Array<readonly [string, unknown, unknown]> => {
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: Array<readonly [string, unknown, unknown]> = []
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length || i >= b.length) out.push([`${at}[${i}]`, a[i], b[i]])
      else out.push(...deepDiff(a[i], b[i], `${at}[${i}]`))
    }
    return out
  }
  if (isObject(a) && isObject(b)) {
    const out: Array<readonly [string, unknown, unknown]> = []
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      out.push(...deepDiff(a[k], b[k], at === "" ? k : `${at}.${k}`))
    }
    return out
  }
  return Object.is(a, b) ? [] : [[at, a, b]]
}

/** The differences between the recorded and the replayed events (empty when they match). */
export const compareEvents = (
  recorded: ReadonlyArray<NormalEvent>,
  replayed: ReadonlyArray<NormalEvent>,
): Array<EventDifference> => {
  const rec = streamsOf(recorded)
  const rep = streamsOf(replayed)
  const out: Array<EventDifference> = []
  for (const key of new Set([...rec.keys(), ...rep.keys()])) {
    const a = rec.get(key) ?? []
    const b = rep.get(key) ?? []
    for (let step = 0; step < Math.max(a.length, b.length); step++) {
      const x = a[step]
      const y = b[step]
      const base = {
        stream: key,
        step,
        ...(x ? { recordedIndex: x.index, recordedType: x.event.type } : {}),
        ...(y ? { replayedIndex: y.index, replayedType: y.event.type } : {}),
      }
      if (!x || !y || x.event.type !== y.event.type) {
        out.push({ ...base, field: "event", recorded: x?.event.type, replayed: y?.event.type })
        continue
      }
      if (x.event.workflow !== y.event.workflow) out.push({ ...base, field: "workflow", recorded: x.event.workflow, replayed: y.event.workflow })
      if (x.event.v !== y.event.v) out.push({ ...base, field: "v", recorded: x.event.v, replayed: y.event.v })
      if (x.phase !== y.phase) {
        out.push({ ...base, field: "(image events before it)", recorded: x.phase, replayed: y.phase })
      }
      for (const [field, r, p] of deepDiff(x.event.fields, y.event.fields)) out.push({ ...base, field, recorded: r, replayed: p })
    }
  }
  // in recorded order, so that the first difference is the first thing that went otherwise
  const at = (d: EventDifference) => d.recordedIndex ?? d.replayedIndex ?? 0
  return out.sort((a, b) => at(a) - at(b))
}

const show = (v: unknown): string => (v === undefined ? "nothing" : typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v) ?? String(v))

/** One line a person can read: event index, field, recorded vs replayed. */
export const describeDifference = (d: EventDifference): string => {
  const where = [
    d.recordedIndex !== undefined ? `recorded event #${d.recordedIndex} ${d.recordedType}` : "no recorded event",
    d.replayedIndex !== undefined ? `replayed event #${d.replayedIndex} ${d.replayedType}` : "no replayed event",
  ].join(", ")
  const stream = d.stream.replace(/sha(256|512):([a-f0-9]{12})[a-f0-9]+/, "$2")
  const head = `${stream}, step ${d.step} (${where})`
  if (d.field === "event") return `${head}: recorded ${show(d.recorded)}, replayed ${show(d.replayed)}`
  return `${head}: ${d.field}: recorded ${show(d.recorded)}, replayed ${show(d.replayed)}`
}
