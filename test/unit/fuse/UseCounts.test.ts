/**
 * The fold of `als serve`'s notifications, given(events) / when(event) / then(uses): holders per
 * layer are acquisitions minus releases, never below zero, gone from the map at zero.
 */
import { describe, expect, test } from "bun:test"
import { HashMap, Option } from "effect"
import type { Event } from "../../../src/events/Events.ts"
import { evolve, initialState, project, type StoreState } from "../../../src/events/Projection.ts"

const A = `sha256:${"a".repeat(64)}`
const B = `sha256:${"b".repeat(64)}`
const T = `sha256:${"c".repeat(64)}` // a TOC digest naming A
const REF = "registry.example/app:1"

const given = (...events: ReadonlyArray<Event>): StoreState => project(events.map((event, i) => ({ envelope: { time: i }, event })))
const when = (s: StoreState, event: Event): StoreState => evolve(s, { envelope: { time: 99 }, event })
const acquired = (layer: string, key = layer, pid = 100): Event => ({ _tag: "LayerAcquired", layer, key, ref: REF, clientPid: pid })
const released = (layer: string, key = layer, pid = 100): Event => ({ _tag: "LayerReleased", layer, key, clientPid: pid })
const uses = (s: StoreState, d: string) => Option.getOrElse(HashMap.get(s.uses, d), () => 0)

describe("use counts", () => {
  test("given nothing, when a layer is acquired (by its blob or TOC digest), then it has one holder per acquisition", () => {
    const then = when(given(acquired(A)), acquired(A, T, 200))
    expect([uses(then, A), uses(then, B)]).toEqual([2, 0])
  })

  test("given two holders, when one releases, then one is left; when the other releases, the layer leaves the map", () => {
    const one = when(given(acquired(A), acquired(A, T)), released(A))
    expect(uses(one, A)).toBe(1)
    const none = when(one, released(A, T))
    expect(HashMap.has(none.uses, A)).toBe(false)
  })

  test("a release with no holder (a server restarted while podman held the layer) never goes below zero", () => {
    const then = when(when(initialState, released(B)), acquired(B))
    expect(uses(then, B)).toBe(1)
  })
})
