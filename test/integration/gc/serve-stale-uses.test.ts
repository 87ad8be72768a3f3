// Uses counted by an `als serve` that was SIGKILLed (issue 13, robustness): a client took a
// layer through the mount (created its `use` file), the server was killed, so the release that
// would follow goes to a dead mount. `als ls` and `als gc` no longer count the dead server's
// uses (its pid is gone from this host), and a server started again releases them with a
// StaleUsesReleased event; gc then removes the layer once no ref names it. While the first
// server lives its count keeps the layer. Real docker-registry on 127.0.0.1, real `als serve`
// (FUSE), the CLI as users run it; no podman needed: the `use` file is created by hand, as
// containers/storage creates it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, openSync } from "node:fs"
import { join } from "node:path"
import { encodeRef } from "../../../src/domain/StorePaths.ts"
import { type Serving, startServe } from "../../e2e/serveSupport.ts"
import { alsLog, alsOk, eventsOf } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { run } from "../../lib/sh.ts"
import { layerBlob, rawTar } from "../../lib/tars.ts"
import { pushLayers, TempDirs } from "../trust/support.ts"

const MIN = 60_000
const dirs = new TempDirs()
const servers: Serving[] = []
let registry: RegistryHandle
let ref: string
let layer: string

beforeAll(async () => {
  registry = await startRegistry()
  const l = layerBlob(rawTar([{ name: "held.txt", content: "held by a client of a server that died\n" }]), "gzip")
  const pushed = await pushLayers(registry.url, "gc/stale-uses", "1", [{ ...l, annotations: {} }])
  layer = pushed[0]!.digest
  ref = `${registry.host}/gc/stale-uses:1`
}, MIN)

afterAll(async () => {
  for (const s of servers) {
    s.stop("SIGTERM")
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 10_000))])
    await run(["umount", "-l", s.mountpoint]).catch(() => undefined)
  }
  dirs.cleanup()
  await registry?.stop()
}, MIN)

interface LsRow {
  readonly digest: string
  readonly uses: number
  readonly refs: ReadonlyArray<string>
}
const ls = async (root: string): Promise<LsRow[]> =>
  (await alsOk(["ls", "--root", root, "--json"])).stdout.trim().split("\n").filter((x) => x !== "").map((x) => JSON.parse(x) as LsRow)
const usesOf = async (root: string) => (await ls(root)).find((r) => r.digest === layer)?.uses

/** Polls until `ok` (the server writes use events in batches): event-based, generous bound. */
const until = async (what: string, ok: () => Promise<boolean>) => {
  const end = Date.now() + MIN
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

const gcJson = async (root: string, graphroot: string) =>
  JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot, "--json"])).stdout) as { remove: Array<{ digest: string }>; keptInUse: string[] }

describe("uses counted by a serve that was killed", () => {
  test("a use taken through a server that is then SIGKILLed: ls shows 0 uses, a new server releases it (StaleUsesReleased), gc removes the layer", async () => {
    const root = dirs.make("stale-store")
    const mnt = dirs.make("stale-mnt")
    // a graph root of a podman that uses nothing: only the server's counts can keep the layer
    const graphroot = dirs.make("stale-graphroot")
    mkdirSync(join(graphroot, "overlay"))
    await alsOk(["pull", "--root", root, "--tls-verify=false", ref])

    const first = await startServe(root, mnt, ["--lazy=false"])
    servers.push(first)
    // containers/storage's notification: create `use` in the layer directory (answered ENOENT)
    expect(() => openSync(join(mnt, encodeRef(ref), layer, "use"), "w")).toThrow(/ENOENT/)
    await until("the use in the log", async () => (await usesOf(root)) === 1)

    // no ref names it any more: the live server's count alone keeps it
    await alsOk(["rm", "--root", root, ref])
    let plan = await gcJson(root, graphroot)
    expect({ removed: plan.remove, kept: plan.keptInUse }).toEqual({ removed: [], kept: [layer] })

    first.stop("SIGKILL")
    expect(await first.exited).not.toBe(0)
    // the dead server's use no longer counts, with nothing written yet
    expect(await usesOf(root)).toBe(0)
    expect(eventsOf(await alsLog(root), "StaleUsesReleased")).toEqual([])

    // a server started again on the same (stale) mount point releases it in the log
    const second = await startServe(root, mnt, ["--lazy=false"])
    servers.push(second)
    expect(second.stderr()).toContain(`released 1 use(s) of 1 layer(s) counted by als serve processes that are gone (pid ${first.pid})`)
    const released = eventsOf(await alsLog(root), "StaleUsesReleased")
    expect(released.map((e) => [e.layer, e.uses, e.serverPid])).toEqual([[layer, 1, first.pid]])
    expect(await usesOf(root)).toBe(0)

    plan = await gcJson(root, graphroot)
    expect(plan.remove.map((r) => r.digest)).toEqual([layer])
    expect(await ls(root)).toEqual([])
    expect(await second.stop("SIGTERM")).toBe(0)
    // a third start finds nothing more to release
    const third = await startServe(root, mnt, ["--lazy=false"])
    servers.push(third)
    expect(third.stderr()).not.toContain("released")
    expect(await third.stop("SIGTERM")).toBe(0)
    expect(eventsOf(await alsLog(root), "StaleUsesReleased").length).toBe(1)
    await alsOk(["audit", "--root", root])
  }, 5 * MIN)
})
