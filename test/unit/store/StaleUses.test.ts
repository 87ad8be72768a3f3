/**
 * Uses counted by `als serve` processes that are gone (issue 13, robustness): the fold keeps
 * each server's counts apart (host and pid of its envelopes); staleUses names those of servers
 * gone from this host, liveUses leaves them out, and a StaleUsesReleased event takes them off
 * the fold, once.
 */
import { describe, expect, test } from "bun:test"
import { HashMap, Option } from "effect"
import type { Event } from "../../../src/events/Events.ts"
import { evolve, initialState, type StoreState } from "../../../src/events/Projection.ts"
import { liveUses, staleUses } from "../../../src/store/InUse.ts"

const A = `sha256:${"a".repeat(64)}`
const B = `sha256:${"b".repeat(64)}`
const HERE = { host: "node1", pid: 300 }

const by = (s: StoreState, host: string, pid: number, event: Event): StoreState => evolve(s, { envelope: { time: 1, host, pid }, event })
const acquired = (layer: string): Event => ({ _tag: "LayerAcquired", layer, key: layer, clientPid: 42 })
const released = (layer: string): Event => ({ _tag: "LayerReleased", layer, key: layer, clientPid: 42 })
const uses = (s: StoreState, d: string) => Option.getOrElse(HashMap.get(s.uses, d), () => 0)
const alive = (pids: ReadonlyArray<number>) => (pid: number) => pids.includes(pid)

describe("uses of serve processes that are gone", () => {
  // server 100 on node1 took A twice and B once; server 200 on node1 took A once; server 100 on node2 took B
  const s0 = [
    ["node1", 100, acquired(A)],
    ["node1", 100, acquired(A)],
    ["node1", 100, acquired(B)],
    ["node1", 200, acquired(A)],
    ["node2", 100, acquired(B)],
  ].reduce((s, [h, p, e]) => by(s, h as string, p as number, e as Event), initialState)

  test("the fold counts uses per server; a dead server on this host is stale, a live one, another host's, and this process never are", () => {
    expect([uses(s0, A), uses(s0, B)]).toEqual([3, 2])
    const stale = staleUses(s0.usesByServer, HERE, alive([200]))
    expect([...stale].sort((x, y) => x.layer.localeCompare(y.layer))).toEqual([
      { host: "node1", pid: 100, layer: A, uses: 2 },
      { host: "node1", pid: 100, layer: B, uses: 1 },
    ])
    expect(staleUses(s0.usesByServer, HERE, alive([100, 200]))).toEqual([])
    expect(staleUses(s0.usesByServer, { host: "node1", pid: 100 }, alive([]))).toEqual([{ host: "node1", pid: 200, layer: A, uses: 1 }])
    // liveUses: A keeps server 200's use, B node2's
    expect(Object.fromEntries(liveUses(s0, HERE, alive([200])))).toEqual({ [A]: 1, [B]: 1 })
    expect(Object.fromEntries(liveUses(s0, HERE, alive([])))).toEqual({ [B]: 1 })
  })

  test("StaleUsesReleased takes a dead server's uses off the fold once; a repeat changes nothing", () => {
    const rel = (layer: string, n: number): Event => ({ _tag: "StaleUsesReleased", layer, uses: n, serverHost: "node1", serverPid: 100, reason: "gone" })
    const s1 = by(by(s0, "node1", 300, rel(A, 2)), "node1", 300, rel(B, 1))
    expect([uses(s1, A), uses(s1, B)]).toEqual([1, 1])
    expect(staleUses(s1.usesByServer, HERE, alive([]))).toEqual([{ host: "node1", pid: 200, layer: A, uses: 1 }])
    const again = by(s1, "node1", 300, rel(A, 2))
    expect([uses(again, A), uses(again, B)]).toEqual([1, 1])
  })

  test("a release through a restarted server takes the use another server counted (podman took the layer before the restart)", () => {
    const s1 = by(s0, "node1", 300, released(A))
    expect(uses(s1, A)).toBe(2)
    // server 300 held none of A: one of the earlier servers' uses went
    const held = (pid: number) => Option.getOrElse(HashMap.get(Option.getOrElse(HashMap.get(s1.usesByServer, `node1 ${pid}`), () => HashMap.empty<string, number>()), A), () => 0)
    expect(held(100) + held(200)).toBe(2)
    expect(HashMap.has(s1.usesByServer, "node1 300")).toBe(false)
    // all of A released: every server's count of A is gone, nothing is stale for A
    const s2 = by(by(s1, "node1", 300, released(A)), "node1", 300, released(A))
    expect(uses(s2, A)).toBe(0)
    expect(staleUses(s2.usesByServer, HERE, alive([])).filter((x) => x.layer === A)).toEqual([])
  })
})
