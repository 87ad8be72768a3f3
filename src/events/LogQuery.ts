/**
 * Reading the log as a reviewer does (pure): filters and one table row per event.
 */
import type { Event } from "./Events.ts"
import type { LogEntry } from "./EventLog.ts"

export interface LogFilter {
  readonly types?: ReadonlySet<string> | undefined
  /** a digest or a prefix of its hex */
  readonly layer?: string | undefined
  readonly ref?: string | undefined
  /** epoch ms */
  readonly since?: number | undefined
}

const units: Record<string, number> = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }

/** `--since 90m`, `2h`, `3d`, or a date/time (`2026-11-29`, ISO 8601). Undefined when unreadable. */
export const parseSince = (s: string, now: number): number | undefined => {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(s.trim())
  if (m) return now - Number(m[1]) * units[m[2]!]!
  const t = Date.parse(s)
  return Number.isNaN(t) ? undefined : t
}

export const eventLayer = (ev: Event): string | undefined => ("layer" in ev ? ev.layer : undefined)

export const eventRef = (ev: Event): string | undefined => ("ref" in ev ? ev.ref : undefined)

const layerMatches = (want: string, ev: Event): boolean => {
  const w = want.replace(/^sha256:/, "")
  const hit = (d: string | undefined) => d !== undefined && d.replace(/^sha256:/, "").startsWith(w)
  if (hit(eventLayer(ev))) return true
  if (ev._tag === "ManifestResolved") return ev.layers.some((l) => hit(l.digest) || hit(l.tocDigest))
  if (ev._tag === "RefIndexed") return ev.layers.some(hit)
  return false
}

/**
 * A stateful predicate: `--ref` selects the events naming the ref and every later event of
 * the same workflow (a pull's layer events do not repeat the ref).
 */
export const makeMatcher = (f: LogFilter) => {
  const workflows = new Set<string>()
  return (e: LogEntry): boolean => {
    if (f.since !== undefined && e.envelope.time < f.since) return false
    if (f.types && !f.types.has(e.event._tag)) return false
    if (f.layer && !layerMatches(f.layer, e.event)) return false
    if (f.ref) {
      if (eventRef(e.event) === f.ref) {
        if (e.envelope.workflow) workflows.add(e.envelope.workflow)
        return true
      }
      return e.envelope.workflow !== "" && workflows.has(e.envelope.workflow)
    }
    return true
  }
}

/** The outcome column: what the event says happened, in a word or two. */
export const outcome = (ev: Event): string => {
  switch (ev._tag) {
    case "PoolProbed":
      return ev.hit ? `hit ${ev.kind}` : `miss ${ev.kind}`
    case "LayerFound":
      return "found"
    case "LayerMissing":
      return "missing"
    case "LayerLinked":
      return `linked ${ev.pool}`
    case "LinkRefused":
      return `refused: ${ev.reason}`
    case "TocIgnored":
      return `TOC ${ev.tocDigest} from ${ev.from} ignored: ${ev.reason}`
    case "LayerServedLazily":
      return `served lazily (${ev.format}, ${ev.files} files)`
    case "LazyChunksFetched":
      return `${ev.chunks} chunks, ${ev.bytes} B fetched, ${ev.cached} cached`
    case "LazyReadFailed":
      return `read of ${ev.file} failed: ${ev.reason}`
    case "LayerCommitted":
      return ev.source === "link" ? `committed (link)` : "committed (pull)"
    case "BlobFetched":
      return `${ev.bytes} B in ${ev.ms} ms`
    case "LayerExtracted":
      return `${ev.files} files`
    case "PullCompleted":
      return `ok: ${ev.found} found, ${ev.linked} linked, ${ev.pulled} pulled`
    case "PullFailed":
      return `FAILED ${ev.reason.code}: ${ev.reason.message}`
    case "LayerRemoved":
      return `removed: ${ev.reason}`
    case "StaleUsesReleased":
      return `${ev.uses} use(s) of gone als serve ${ev.serverPid} released`
    case "LogRepaired":
      return `cut ${ev.droppedBytes} B at ${ev.cutAt}`
    case "ManifestResolved":
      return `${ev.layers.length} layers, ${ev.platform}`
    case "RefIndexed":
      return `${ev.layers.length} layers`
    case "StoreInitialized":
      return ev.root
    default:
      return ""
  }
}

export const tableRow = (e: LogEntry): ReadonlyArray<string> => [
  new Date(e.envelope.time).toISOString().replace("T", " ").slice(0, 23),
  e.event._tag,
  (eventLayer(e.event) ?? "").replace(/^sha256:/, "").slice(0, 12),
  eventRef(e.event) ?? "",
  outcome(e.event),
]

export const TABLE_HEADER = ["TIME", "EVENT", "LAYER", "REF", "OUTCOME"] as const
