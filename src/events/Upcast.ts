/**
 * Old event shapes, brought up to the current one when read. A shipped shape is never edited:
 * bumping `EventVersions[tag]` to n+1 adds `upcasts[tag][n]`, which turns a version-n
 * payload into a version-(n+1) one. Reading applies the steps in order, so a v1 frame read by
 * a v3 reader goes v1 → v2 → v3.
 */
import { EventVersions, type EventType } from "./Events.ts"

type Data = Record<string, unknown>
type Step = (data: Data) => Data

const upcasts: { readonly [K in EventType]?: { readonly [fromVersion: number]: Step } } = {
  LayerCommitted: {
    // v1 had no `source`: only pulls committed layers then.
    1: (d) => ({ ...d, source: "pull" }),
  },
}

export type UpcastResult = { readonly ok: true; readonly data: Data } | { readonly ok: false; readonly problem: string }

/** The current version of `tag`, or undefined for a tag this build does not know. */
export const currentVersion = (tag: string): number | undefined =>
  Object.prototype.hasOwnProperty.call(EventVersions, tag) ? EventVersions[tag as EventType] : undefined

/** Brings `data` (event fields without `_tag`) written as `tag` version `version` up to date. */
export const upcast = (tag: EventType, version: number, data: Data): UpcastResult => {
  const current = EventVersions[tag]
  let d = data
  for (let v = version; v < current; v++) {
    const step = upcasts[tag]?.[v]
    if (step === undefined) return { ok: false, problem: `no upcast for ${tag} v${v} → v${v + 1}` }
    d = step(d)
  }
  return { ok: true, data: d }
}
