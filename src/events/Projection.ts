/**
 * The store's state as a fold over its events: which layers exist, where they came from, which
 * references name them, and counters for pulls and failures.
 *
 * `evolve` is pure and total: no IO, no clock (time comes from the envelope), one case per
 * event type, checked exhaustive by the compiler. The state is persistent (Effect's HashMap
 * and HashSet share structure), so `evolve` never mutates its input and a fold over a million
 * events costs O(log n) per change, not a copy of every map. Both are iterable like Map/Set:
 * `for (const [digest, layer] of state.layers)`.
 */
import { HashMap, HashSet, Option } from "effect"
import type { Envelope, Event } from "./Events.ts"

export interface LayerRecord {
  readonly digest: string
  readonly diffId: string
  readonly diffSize: number
  readonly blobSize: number
  readonly tocDigest?: string
  readonly source: "pull" | "link"
  /** the pool a linked layer lives in */
  readonly pool?: string
  /** epoch ms of the LayerCommitted event */
  readonly committedAt: number
  /** references whose last RefIndexed lists this layer */
  readonly refs: HashSet.HashSet<string>
}

export interface RemovedLayer {
  readonly digest: string
  readonly reason: string
  readonly removedAt: number
  /** what the layer was when removed (absent if it was never committed in this log) */
  readonly last?: LayerRecord
}

export interface RefRecord {
  readonly ref: string
  /** the manifest last resolved or pulled for this ref */
  readonly manifestDigest?: string
  readonly layers: ReadonlyArray<string>
  readonly indexedAt: number
}

export interface Counters {
  readonly lookups: number
  readonly layersFound: number
  readonly layersMissing: number
  readonly poolProbes: number
  readonly poolHits: number
  readonly linksRefused: number
  readonly layersLinked: number
  /** layers committed from a registry pull */
  readonly layersPulled: number
  readonly layersExtracted: number
  readonly layersRemoved: number
  readonly pullsRequested: number
  readonly pullsCompleted: number
  readonly pullsFailed: number
  /** failed pulls by FailureReason code */
  readonly failuresByCode: Readonly<Record<string, number>>
  /** sum of BlobFetched bytes, failed pulls included */
  readonly bytesFetched: number
  /** blob bytes of layers a lookup found already stored (when the log knows their size) */
  readonly bytesFound: number
  /** blob bytes of layers linked from a pool instead of fetched */
  readonly bytesLinked: number
  readonly logRepairs: number
}

export interface StoreState {
  readonly initialized?: { readonly root: string; readonly alsVersion: string; readonly at: number }
  readonly layers: HashMap.HashMap<string, LayerRecord>
  readonly removed: HashMap.HashMap<string, RemovedLayer>
  readonly refs: HashMap.HashMap<string, RefRecord>
  /** the refs whose last RefIndexed lists each layer digest, committed or not (an index: a
   * layer committed later takes its refs from here instead of scanning every ref) */
  readonly refsByLayer: HashMap.HashMap<string, HashSet.HashSet<string>>
  /** the manifest digest last resolved for each ref, indexed or not */
  readonly manifests: HashMap.HashMap<string, string>
  /** `als serve`: holders per layer digest (acquired minus released, never below 0; absent: 0) */
  readonly uses: HashMap.HashMap<string, number>
  /** the same uses by the serving process that counted them (`host pid` of the envelope), so
   * that those of a dead server can be told apart (src/store/InUse.ts staleUses) */
  readonly usesByServer: HashMap.HashMap<string, HashMap.HashMap<string, number>>
  readonly counters: Counters
  readonly events: number
  readonly lastEventAt?: number
}

const zero: Counters = {
  lookups: 0,
  layersFound: 0,
  layersMissing: 0,
  poolProbes: 0,
  poolHits: 0,
  linksRefused: 0,
  layersLinked: 0,
  layersPulled: 0,
  layersExtracted: 0,
  layersRemoved: 0,
  pullsRequested: 0,
  pullsCompleted: 0,
  pullsFailed: 0,
  failuresByCode: {},
  bytesFetched: 0,
  bytesFound: 0,
  bytesLinked: 0,
  logRepairs: 0,
}

export const initialState: StoreState = {
  layers: HashMap.empty(),
  removed: HashMap.empty(),
  refs: HashMap.empty(),
  refsByLayer: HashMap.empty(),
  manifests: HashMap.empty(),
  uses: HashMap.empty(),
  usesByServer: HashMap.empty(),
  counters: zero,
  events: 0,
}

/** Anything with an envelope and an event: a LogEntry, a Recorded. */
export interface EnvelopedEvent {
  /** host and pid name the serving process behind use counts (absent: one unnamed server) */
  readonly envelope: Pick<Envelope, "time"> & Partial<Pick<Envelope, "host" | "pid">>
  readonly event: Event
}

const count = (s: StoreState, f: (c: Counters) => Partial<Counters>): StoreState => ({
  ...s,
  counters: { ...s.counters, ...f(s.counters) },
})

/** Sets `ref` in or out of the refs of each layer in `digests` that exists. */
const tagLayers = (
  layers: HashMap.HashMap<string, LayerRecord>,
  digests: Iterable<string>,
  ref: string,
  on: boolean,
): HashMap.HashMap<string, LayerRecord> => {
  let out = layers
  for (const d of digests) {
    const layer = HashMap.get(out, d)
    if (Option.isSome(layer)) {
      const refs = on ? HashSet.add(layer.value.refs, ref) : HashSet.remove(layer.value.refs, ref)
      out = HashMap.set(out, d, { ...layer.value, refs })
    }
  }
  return out
}

/** Adds `ref` to (or removes it from) the index entry of each layer in `digests`. */
const indexRef = (
  index: HashMap.HashMap<string, HashSet.HashSet<string>>,
  digests: Iterable<string>,
  ref: string,
  on: boolean,
): HashMap.HashMap<string, HashSet.HashSet<string>> => {
  let out = index
  for (const d of digests) {
    const before = Option.getOrElse(HashMap.get(out, d), () => HashSet.empty<string>())
    const after = on ? HashSet.add(before, ref) : HashSet.remove(before, ref)
    out = HashSet.size(after) === 0 ? HashMap.remove(out, d) : HashMap.set(out, d, after)
  }
  return out
}

/** The state after one more event. */
/** The serving process behind a use count: host and pid of its events' envelopes. */
export const serverKey = (host: string, pid: number): string => `${host} ${pid}`

type ServerUses = HashMap.HashMap<string, HashMap.HashMap<string, number>>

const addServerUse = (m: ServerUses, server: string, layer: string, d: number): ServerUses => {
  const layers = Option.getOrElse(HashMap.get(m, server), () => HashMap.empty<string, number>())
  const n = Option.getOrElse(HashMap.get(layers, layer), () => 0) + d
  const next = n > 0 ? HashMap.set(layers, layer, n) : HashMap.remove(layers, layer)
  return HashMap.size(next) > 0 ? HashMap.set(m, server, next) : HashMap.remove(m, server)
}

/**
 * One use less: the releasing server's own first, else one another server counted (podman
 * took the layer through a server that has since been restarted, and lets it go through this one).
 */
const releaseServerUse = (m: ServerUses, server: string, layer: string): ServerUses => {
  const holds = (k: string) => Option.getOrElse(HashMap.get(Option.getOrElse(HashMap.get(m, k), () => HashMap.empty<string, number>()), layer), () => 0) > 0
  if (holds(server)) return addServerUse(m, server, layer, -1)
  for (const k of HashMap.keys(m)) if (holds(k)) return addServerUse(m, k, layer, -1)
  return m
}

export const evolve = (state: StoreState, entry: EnvelopedEvent): StoreState => {
  const s: StoreState = { ...state, events: state.events + 1, lastEventAt: entry.envelope.time }
  const at = entry.envelope.time
  const event = entry.event
  switch (event._tag) {
    case "StoreInitialized":
      return { ...s, initialized: { root: event.root, alsVersion: event.alsVersion, at } }
    case "LogRepaired":
      return count(s, (c) => ({ logRepairs: c.logRepairs + 1 }))
    case "LookupRequested":
      return count(s, (c) => ({ lookups: c.lookups + 1 }))
    case "LayerFound": {
      const known = HashMap.get(s.layers, event.layer)
      const bytes = Option.isSome(known) ? known.value.blobSize : 0
      return count(s, (c) => ({ layersFound: c.layersFound + 1, bytesFound: c.bytesFound + bytes }))
    }
    case "LayerMissing":
      return count(s, (c) => ({ layersMissing: c.layersMissing + 1 }))
    case "PoolProbed":
      return count(s, (c) => ({ poolProbes: c.poolProbes + 1, poolHits: c.poolHits + (event.hit ? 1 : 0) }))
    case "LinkRefused":
      return count(s, (c) => ({ linksRefused: c.linksRefused + 1 }))
    case "TocIgnored":
    case "LayerServedLazily":
    case "LazyChunksFetched":
    case "LazyReadFailed":
      return s
    case "LayerLinked":
      return count(s, (c) => ({ layersLinked: c.layersLinked + 1 }))
    case "PullRequested":
      return count(s, (c) => ({ pullsRequested: c.pullsRequested + 1 }))
    case "ManifestResolved":
      return { ...s, manifests: HashMap.set(s.manifests, event.ref, event.manifestDigest) }
    case "BlobFetched":
      return count(s, (c) => ({ bytesFetched: c.bytesFetched + event.bytes }))
    case "LayerExtracted":
      return count(s, (c) => ({ layersExtracted: c.layersExtracted + 1 }))
    case "LayerCommitted": {
      // A layer committed again (after a removal, or re-pulled) keeps the refs that name it.
      const refs = Option.getOrElse(HashMap.get(s.refsByLayer, event.layer), () => HashSet.empty<string>())
      const layer: LayerRecord = {
        digest: event.layer,
        diffId: event.diffId,
        diffSize: event.diffSize,
        blobSize: event.blobSize,
        source: event.source,
        committedAt: at,
        refs,
        ...(event.tocDigest !== undefined ? { tocDigest: event.tocDigest } : {}),
        ...(event.pool !== undefined ? { pool: event.pool } : {}),
      }
      const next: StoreState = {
        ...s,
        layers: HashMap.set(s.layers, event.layer, layer),
        removed: HashMap.remove(s.removed, event.layer),
      }
      return event.source === "pull"
        ? count(next, (c) => ({ layersPulled: c.layersPulled + 1 }))
        : count(next, (c) => ({ bytesLinked: c.bytesLinked + event.blobSize }))
    }
    case "RefIndexed": {
      const before = HashMap.get(s.refs, event.ref)
      const dropped = Option.isSome(before) ? before.value.layers.filter((d) => !event.layers.includes(d)) : []
      const manifestDigest = Option.getOrUndefined(HashMap.get(s.manifests, event.ref))
      const ref: RefRecord = {
        ref: event.ref,
        layers: event.layers,
        indexedAt: at,
        ...(manifestDigest !== undefined ? { manifestDigest } : {}),
      }
      const layers = tagLayers(tagLayers(s.layers, dropped, event.ref, false), event.layers, event.ref, true)
      const refsByLayer = indexRef(indexRef(s.refsByLayer, dropped, event.ref, false), event.layers, event.ref, true)
      return { ...s, layers, refsByLayer, refs: HashMap.set(s.refs, event.ref, ref) }
    }
    case "PullCompleted": {
      const ref = HashMap.get(s.refs, event.ref)
      const next: StoreState = {
        ...s,
        manifests: HashMap.set(s.manifests, event.ref, event.manifestDigest),
        refs: Option.isSome(ref)
          ? HashMap.set(s.refs, event.ref, { ...ref.value, manifestDigest: event.manifestDigest })
          : s.refs,
      }
      return count(next, (c) => ({ pullsCompleted: c.pullsCompleted + 1 }))
    }
    case "PullFailed":
      return count(s, (c) => ({
        pullsFailed: c.pullsFailed + 1,
        failuresByCode: { ...c.failuresByCode, [event.reason.code]: (c.failuresByCode[event.reason.code] ?? 0) + 1 },
      }))
    case "RefRemoved": {
      const before = HashMap.get(s.refs, event.ref)
      if (Option.isNone(before)) return s
      const layers = tagLayers(s.layers, before.value.layers, event.ref, false)
      const refsByLayer = indexRef(s.refsByLayer, before.value.layers, event.ref, false)
      return { ...s, layers, refsByLayer, refs: HashMap.remove(s.refs, event.ref) }
    }
    case "LayerRemoved": {
      const last = HashMap.get(s.layers, event.layer)
      const removed: RemovedLayer = {
        digest: event.layer,
        reason: event.reason,
        removedAt: at,
        ...(Option.isSome(last) ? { last: last.value } : {}),
      }
      const next: StoreState = {
        ...s,
        layers: HashMap.remove(s.layers, event.layer),
        removed: HashMap.set(s.removed, event.layer, removed),
      }
      return count(next, (c) => ({ layersRemoved: c.layersRemoved + 1 }))
    }
    case "LayerAcquired": {
      const n = Option.getOrElse(HashMap.get(s.uses, event.layer), () => 0) + 1
      const server = serverKey(entry.envelope.host ?? "", entry.envelope.pid ?? 0)
      return { ...s, uses: HashMap.set(s.uses, event.layer, n), usesByServer: addServerUse(s.usesByServer, server, event.layer, 1) }
    }
    case "LayerReleased": {
      const n = Option.getOrElse(HashMap.get(s.uses, event.layer), () => 0) - 1
      const server = serverKey(entry.envelope.host ?? "", entry.envelope.pid ?? 0)
      return {
        ...s,
        uses: n > 0 ? HashMap.set(s.uses, event.layer, n) : HashMap.remove(s.uses, event.layer),
        usesByServer: releaseServerUse(s.usesByServer, server, event.layer),
      }
    }
    case "StaleUsesReleased": {
      // only what that server still held: a second release of the same uses changes nothing
      const server = serverKey(event.serverHost, event.serverPid)
      const held = Option.getOrElse(HashMap.get(Option.getOrElse(HashMap.get(s.usesByServer, server), () => HashMap.empty<string, number>()), event.layer), () => 0)
      const k = Math.min(held, Math.max(0, event.uses))
      const n = Option.getOrElse(HashMap.get(s.uses, event.layer), () => 0) - k
      return {
        ...s,
        uses: n > 0 ? HashMap.set(s.uses, event.layer, n) : HashMap.remove(s.uses, event.layer),
        usesByServer: addServerUse(s.usesByServer, server, event.layer, -k),
      }
    }
  }
}

/** The state after all of `entries`, from the empty store. */
export const project = (entries: Iterable<EnvelopedEvent>, from: StoreState = initialState): StoreState => {
  let s = from
  for (const e of entries) s = evolve(s, e)
  return s
}
