/**
 * `als log` for people reviewing it (pure): one workflow's steps grouped under its first event
 * with +ms offsets and a duration per layer, and the store's counters as statistics.
 */
import { safeText } from "../domain/SafeText.ts"
import type { Event } from "../events/Events.ts"
import type { FoldEntry, LogEntry } from "../events/EventLog.ts"
import { eventLayer, eventRef, outcome } from "../events/LogQuery.ts"
import { type Counters, evolve, initialState, type StoreState } from "../events/Projection.ts"

const short = (d: string) => d.replace(/^sha\d+:/, "").slice(0, 12)

const stamp = (ms: number) => new Date(ms).toISOString().replace("T", " ").slice(0, 23)

export const humanBytes = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1 << 20
    ? `${(n / 1024).toFixed(1)} KiB`
    : n < 1 << 30
    ? `${(n / (1 << 20)).toFixed(1)} MiB`
    : `${(n / (1 << 30)).toFixed(2)} GiB`

export type Grouped =
  | { readonly kind: "workflow"; readonly workflow: string; readonly entries: ReadonlyArray<LogEntry> }
  | { readonly kind: "single"; readonly entry: LogEntry }

/** Entries grouped by workflow, groups in order of their first event; events of no workflow stand alone. */
export const groupByWorkflow = (entries: Iterable<LogEntry>): Array<Grouped> => {
  const out: Array<Grouped> = []
  const groups = new Map<string, Array<LogEntry>>()
  for (const e of entries) {
    const w = e.envelope.workflow
    if (w === "") {
      out.push({ kind: "single", entry: e })
      continue
    }
    let g = groups.get(w)
    if (!g) {
      g = []
      groups.set(w, g)
      out.push({ kind: "workflow", workflow: w, entries: g })
    }
    g.push(e)
  }
  return out
}

/** The events that end a layer's chain in a workflow. */
const LAYER_END: ReadonlySet<Event["_tag"]> = new Set(["LayerCommitted", "LayerFound"])

/** What a workflow was, from its first event, and how it ended, from its last. */
const headline = (es: ReadonlyArray<LogEntry>): string => {
  const first = es[0]!.event
  const last = es[es.length - 1]!.event
  const what = first._tag === "PullRequested"
    ? `pull ${first.ref} (${first.platform})`
    : first._tag === "LookupRequested"
    ? `lookup ${short(first.layer)}${first.ref ? ` for ${first.ref}` : ""}`
    : `${first._tag}${eventRef(first) ? ` ${eventRef(first)}` : eventLayer(first) ? ` ${short(eventLayer(first)!)}` : ""}`
  const ended = last._tag === "PullCompleted"
    ? `ok: ${last.found} found, ${last.linked} linked, ${last.pulled} pulled, ${humanBytes(last.bytesFetched)} fetched`
    : last._tag === "PullFailed"
    ? `FAILED ${last.reason.code}`
    : first._tag === "PullRequested"
    ? "not finished"
    : outcome(last)
  const took = es[es.length - 1]!.envelope.time - es[0]!.envelope.time
  return `${stamp(es[0]!.envelope.time)}  ${what}  ${ended}  in ${took} ms  (workflow ${es[0]!.envelope.workflow.slice(0, 8)})`
}

/**
 * A workflow's events under a headline: `+ms` from its first event; a layer's events indented
 * once more under its short digest; the event that ends a layer's chain (LayerCommitted or
 * LayerFound) carries the layer's duration from its LookupRequested.
 */
export const renderWorkflow = (es: ReadonlyArray<LogEntry>): Array<string> => {
  const t0 = es[0]!.envelope.time
  const lookupAt = new Map<string, number>()
  const lines = [headline(es)]
  for (const e of es) {
    const ev = e.event
    const layer = eventLayer(ev)
    if (ev._tag === "LookupRequested" && !lookupAt.has(ev.layer)) lookupAt.set(ev.layer, e.envelope.time)
    const offset = `+${e.envelope.time - t0} ms`.padStart(10)
    const what = layer !== undefined && ev._tag !== "PullFailed" ? `  ${short(layer)}  ${ev._tag}` : ev._tag
    const ref = eventRef(ev)
    const other = ref !== undefined && ref !== eventRef(es[0]!.event) && layer === undefined ? `  ${ref}` : ""
    let line = `${offset}  ${what.padEnd(34)}  ${outcome(ev)}${other}`.trimEnd()
    if (layer !== undefined && LAYER_END.has(ev._tag) && lookupAt.has(layer)) {
      line += `  (layer done in ${e.envelope.time - lookupAt.get(layer)!} ms)`
    }
    lines.push(line)
  }
  // refs, reasons and paths in events came from outside: each line shown safe
  return lines.map((l) => safeText(l))
}

// ---- statistics --------------------------------------------------------------------------

export interface LogStats {
  readonly events: number
  readonly since?: string | undefined
  readonly pulls: { readonly requested: number; readonly completed: number; readonly failed: number }
  readonly layers: { readonly pulled: number; readonly linked: number; readonly found: number; readonly missing: number; readonly removed: number }
  readonly bytes: {
    /** from registries (BlobFetched) */
    readonly fetched: number
    /** served from the store: layers a lookup found already there */
    readonly found: number
    /** served from pools: layers linked instead of fetched */
    readonly linked: number
  }
  readonly failuresByCode: Readonly<Record<string, number>>
  readonly logRepairs: number
}

const minus = (a: Counters, b: Counters): Counters => {
  const failures: Record<string, number> = {}
  for (const [k, v] of Object.entries(a.failuresByCode)) {
    const d = v - (b.failuresByCode[k] ?? 0)
    if (d !== 0) failures[k] = d
  }
  const out = { ...a, failuresByCode: failures } as Record<string, unknown>
  for (const [k, v] of Object.entries(a)) if (typeof v === "number") out[k] = v - ((b as unknown as Record<string, number>)[k] ?? 0)
  return out as unknown as Counters
}

/** The fold behind `logStats`, one entry at a time (`EventLog.fold` runs it without holding the log). */
export interface StatsFold {
  readonly since?: number | undefined
  readonly state: StoreState
  /** the counters just before the first event at or after `since` */
  readonly before?: Counters | undefined
  readonly events: number
}

export const statsStart = (since?: number): StatsFold => ({ since, state: initialState, events: 0 })

export const statsStep = (f: StatsFold, e: FoldEntry): StatsFold => {
  // from the first event at or after `since` on (the log is in append order)
  const before = f.since !== undefined && f.before === undefined && e.envelope.time >= f.since ? f.state.counters : f.before
  const counted = f.since === undefined || before !== undefined
  return { since: f.since, state: evolve(f.state, e), before, events: f.events + (counted ? 1 : 0) }
}

/**
 * The Projection's counters over the whole log, or over the events from `since` on (the fold
 * still runs from the start, so that a layer found later knows its size).
 */
export const statsOf = (f: StatsFold): LogStats => {
  const c = f.since === undefined ? f.state.counters : minus(f.state.counters, f.before ?? f.state.counters)
  return {
    events: f.events,
    ...(f.since !== undefined ? { since: new Date(f.since).toISOString() } : {}),
    pulls: { requested: c.pullsRequested, completed: c.pullsCompleted, failed: c.pullsFailed },
    layers: { pulled: c.layersPulled, linked: c.layersLinked, found: c.layersFound, missing: c.layersMissing, removed: c.layersRemoved },
    bytes: { fetched: c.bytesFetched, found: c.bytesFound, linked: c.bytesLinked },
    failuresByCode: c.failuresByCode,
    logRepairs: c.logRepairs,
  }
}

export const logStats = (entries: Iterable<LogEntry>, since?: number): LogStats => {
  let f = statsStart(since)
  for (const e of entries) f = statsStep(f, e)
  return statsOf(f)
}

export const renderStats = (st: LogStats): Array<string> => {
  const served = st.bytes.found + st.bytes.linked
  const total = served + st.bytes.fetched
  const pct = (n: number) => (total === 0 ? "" : ` (${Math.round((100 * n) / total)}%)`)
  const failures = Object.entries(st.failuresByCode).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
  return [
    `events:    ${st.events}${st.since ? ` since ${st.since}` : ""}`,
    `pulls:     ${st.pulls.requested} requested, ${st.pulls.completed} completed, ${st.pulls.failed} failed`,
    `layers:    ${st.layers.pulled} pulled, ${st.layers.linked} linked from pools, ${st.layers.found} found in the store, ${st.layers.removed} removed`,
    `bytes:     ${humanBytes(st.bytes.fetched)} fetched from registries${pct(st.bytes.fetched)}; ` +
    `served without fetching: ${humanBytes(st.bytes.found)} from the store (found)${pct(st.bytes.found)}, ` +
    `${humanBytes(st.bytes.linked)} from pools (linked)${pct(st.bytes.linked)}`,
    `failures:  ${failures.length === 0 ? "none" : failures.map(([code, n]) => `${code} ${n}`).join(", ")}`,
    ...(st.logRepairs > 0 ? [`log:       ${st.logRepairs} torn tails repaired`] : []),
  ].map((l) => safeText(l))
}
