/**
 * A frame's payload: one event and its envelope as a msgpack map
 *
 *     { t: tag, v: shape version, e: { id, time, host, pid, workflow }, d: event fields without _tag }
 *
 * Two decoders:
 * - `decodeFast` (stream, fold): FastUnpack plus cheap checks of the envelope and of the tag and
 *   version, then upcasting. It trusts the fields inside `d`: the frame's sha256 has already
 *   proved that these are the bytes `append` wrote, and `append` checks every event against
 *   the schema. A full Schema decode costs several µs per event, more than the fold budget.
 * - `decodeStrict` (verify, i.e. `als audit`): msgpackr's Unpackr (an independent decoder) and a
 *   full Schema decode of envelope and event, so drift between writer and schema is found.
 */
import { Buffer } from "node:buffer"
import { Either, ParseResult, Schema } from "effect"
import { Packr } from "msgpackr/pack"
import { Unpackr } from "msgpackr/unpack"
import { Envelope, Event, EventVersions, type EventType } from "./Events.ts"
import { fastPayload, fastUnpack, payload, Unsupported } from "./FastUnpack.ts"
import { currentVersion, upcast } from "./Upcast.ts"

// `skipValues: [undefined]`: an optional field set to undefined is left out, as JSON would,
// instead of being written as nil (which would read back as null and fail the schema).
const packr = new Packr({ useRecords: false, skipValues: [undefined] } as ConstructorParameters<typeof Packr>[0])
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

export interface EnvelopeFields {
  readonly id: string
  readonly time: number
  readonly host: string
  readonly pid: number
  readonly workflow: string
}

export const encodePayload = (env: EnvelopeFields, event: Event): Buffer => {
  const { _tag, ...d } = event
  return packr.pack({
    t: _tag,
    v: EventVersions[_tag],
    e: { id: env.id, time: env.time, host: env.host, pid: env.pid, workflow: env.workflow },
    d,
  })
}

/** Writes a payload with an explicit version and data: for tests of upcasting old frames. */
export const encodeRawPayload = (tag: string, version: number, env: EnvelopeFields, data: Record<string, unknown>): Buffer =>
  packr.pack({ t: tag, v: version, e: env, d: data })

export interface Decoded {
  readonly envelope: Envelope
  readonly event: Event
}

export type DecodeResult = Decoded | string

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const envelopeOk = (e: Record<string, unknown>): boolean =>
  typeof e.id === "string" && typeof e.time === "number" && typeof e.host === "string" &&
  typeof e.pid === "number" && typeof e.workflow === "string"

/** Checks the outer shape and upcasts; returns the problem as a string. Mutates `p` (fresh). */
const finish = (p: unknown): DecodeResult => {
  if (!isObject(p)) return "payload is not a map"
  const t = p.t
  const v = p.v
  const e = p.e
  const d = p.d
  if (typeof t !== "string") return "payload has no event tag"
  const current = currentVersion(t)
  if (current === undefined) return `unknown event type ${JSON.stringify(t)} (written by a newer als?)`
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) return `bad shape version ${String(v)} for ${t}`
  if (v > current) return `${t} v${v} is newer than this als knows (v${current})`
  if (!isObject(e)) return "payload has no envelope"
  if (!envelopeOk(e)) return "envelope lacks id, time, host, pid or workflow"
  if (!isObject(d)) return "payload has no event data"
  let data = d
  if (v < current) {
    const up = upcast(t as EventType, v, d)
    if (!up.ok) return up.problem
    data = up.data as Record<string, unknown>
  }
  data._tag = t
  e.v = v
  return { envelope: e as unknown as Envelope, event: data as unknown as Event }
}

/** Where `decodeInto` leaves what it decoded: read it before the next call. */
export const decoded = { envelope: undefined as unknown as Envelope, event: undefined as unknown as Event }

/**
 * The fold path (see the module comment), without a result object per frame: fills `decoded`
 * and returns undefined, or returns the problem.
 */
export const decodeInto = (buf: Buffer, start: number, end: number): string | undefined => {
  let general: DecodeResult
  try {
    fastPayload(buf, start, end)
    // the common case, a payload as `encodePayload` writes it in this version's shape
    if (payload.version === currentVersion(payload.tag) && envelopeOk(payload.envelope)) {
      decoded.envelope = payload.envelope as unknown as Envelope
      decoded.event = payload.event as unknown as Event
      return undefined
    }
    general = decodeGeneral(buf, start, end)
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e
    general = decodeGeneral(buf, start, end)
  }
  if (typeof general === "string") return general
  decoded.envelope = general.envelope
  decoded.event = general.event
  return undefined
}

/** The fold path, as a value. */
export const decodeFast = (buf: Buffer, start: number, end: number): DecodeResult => {
  const problem = decodeInto(buf, start, end)
  return problem ?? { envelope: decoded.envelope, event: decoded.event }
}

/** Any payload msgpack can hold: older shapes to upcast, and the errors to name. */
const decodeGeneral = (buf: Buffer, start: number, end: number): DecodeResult => {
  let p: unknown
  try {
    p = fastUnpack(buf, start, end)
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e
    try {
      p = unpackr.unpack(buf.subarray(start, end))
    } catch (err) {
      return `payload is not msgpack: ${err instanceof Error ? err.message : String(err)}`
    }
  }
  return finish(p)
}

const decodeEvent = Schema.decodeUnknownEither(Event, { onExcessProperty: "error" })
const decodeEnvelope = Schema.decodeUnknownEither(Envelope, { onExcessProperty: "error" })

/** The audit path: see the module comment. */
export const decodeStrict = (payload: Uint8Array): DecodeResult => {
  let p: unknown
  try {
    p = unpackr.unpack(payload)
  } catch (err) {
    return `payload is not msgpack: ${err instanceof Error ? err.message : String(err)}`
  }
  if (isObject(p) && Object.keys(p).some((k) => k !== "t" && k !== "v" && k !== "e" && k !== "d")) {
    return `payload has unknown keys ${JSON.stringify(Object.keys(p))}`
  }
  const r = finish(p)
  if (typeof r === "string") return r
  const env = decodeEnvelope(r.envelope)
  if (Either.isLeft(env)) return `envelope does not match its schema: ${ParseResult.TreeFormatter.formatErrorSync(env.left)}`
  const ev = decodeEvent(r.event)
  if (Either.isLeft(ev)) return `${r.event._tag} does not match its schema: ${ParseResult.TreeFormatter.formatErrorSync(ev.left)}`
  return { envelope: env.right, event: ev.right }
}
