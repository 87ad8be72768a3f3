// gc and ls under `als serve` (issue 13, issue 11 class 6): podman 4.3.1 pulls through the
// mount, so its `additionallayer` files name paths inside the mount and its use/rmdir are
// counted by the server. While podman holds the image, `als gc` keeps the layers even with no
// ref naming them — by the additionallayer files, and by the use counts alone when gc is given
// a graph root that is not podman's; `als ls` shows the counts. After `podman rmi`, gc frees them.
// Real docker-registry on 127.0.0.1, real podman; nothing is skipped.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { als, alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { alsServeMounts } from "../../src/doctor/Probes.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { MIN, Resources } from "./support.ts"
import { busyboxLayer, layerOf, pushLayers, type Serving, startServe, stopServers } from "./serveSupport.ts"

let registry: RegistryHandle
const res = new Resources()
const servers: Serving[] = []

beforeAll(async () => {
  registry = await startRegistry()
}, 5 * MIN)

afterAll(async () => {
  await stopServers(servers)
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

interface LsRow {
  readonly digest: string
  readonly uses: number
  readonly refs: ReadonlyArray<string>
}

const ls = async (root: string): Promise<LsRow[]> =>
  (await alsOk(["ls", "--root", root, "--json"])).stdout.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as LsRow)

interface GcJson {
  readonly remove: ReadonlyArray<{ digest: string }>
  readonly keptInUse: ReadonlyArray<string>
}

const gcJson = async (root: string, graphroot: string): Promise<GcJson> =>
  JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot, "--json"])).stdout) as GcJson

/** Polls `als ls` until `ok` holds (the server writes use events in batches): event-based, generous bound. */
const lsUntil = async (root: string, ok: (rows: LsRow[]) => boolean, what: string): Promise<LsRow[]> => {
  const deadline = Date.now() + 60_000
  for (;;) {
    const rows = await ls(root)
    if (ok(rows)) return rows
    if (Date.now() > deadline) throw new Error(`${what}: als ls still shows ${JSON.stringify(rows)}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

describe("als gc under als serve (podman 4.3.1)", () => {
  test("layers podman uses through the mount stay (additionallayer paths in the mount, and use counts alone); after podman rmi gc frees them", async () => {
    const ref = await pushLayers(registry.host, "serve-gc/app", "1", [await busyboxLayer(), await layerOf({ "etc/motd": "kept while used\n" })])
    const root = res.tempDir("serve-gc-store")
    const mnt = res.tempDir("serve-gc-mnt")
    const server = await startServe(root, mnt, ["--lazy=false"])
    servers.push(server)
    const podman = await res.podman4()
    const r = await podman.pull(ref, { als: { root: mnt } })
    expect(r.copied).toEqual([])
    const layers = [...r.skipped].sort()
    expect(layers.length).toBe(2)
    // podman's additionallayer files name paths inside the mount, never the store
    for (const p of podman.additionalLayers()) expect(p.startsWith(`${mnt}/`)).toBe(true)

    // als ls shows the holders (USES column, uses in --json)
    await lsUntil(root, (rows) => layers.every((d) => (rows.find((x) => x.digest === d)?.uses ?? 0) > 0), "uses after the pull")
    const table = (await alsOk(["ls", "--root", root])).stdout
    expect(table.split("\n")[0]).toMatch(/^LAYER\s+SOURCE\s+SIZE\s+USES\s+REFS$/)

    // podman runs the image from the store (its lookups name the layers under the ref again)
    const out = await podman.run(ref, ["/bin/sh", "-c", "cat /etc/motd"], { als: { root: mnt } })
    expect(out.stdout).toBe("kept while used\n")

    // no ref names them any more: only podman's use keeps them
    await alsOk(["rm", "--root", root, ref])
    await lsUntil(root, (rows) => rows.every((x) => x.refs.length === 0), "refs after als rm")

    // gc with podman's graph root: in use (podman's files name the mount; gc never stats it)
    let plan = await gcJson(root, podman.graphRoot)
    expect(plan.remove).toEqual([])
    expect([...plan.keptInUse].sort()).toEqual(layers)
    // gc with a graph root that is not podman's: the server's use counts alone keep them
    const elsewhere = res.tempDir("serve-gc-other-graphroot")
    mkdirSync(join(elsewhere, "overlay"))
    plan = await gcJson(root, elsewhere)
    expect(plan.remove).toEqual([])
    expect([...plan.keptInUse].sort()).toEqual(layers)
    expect((await ls(root)).map((x) => x.digest).sort()).toEqual(layers)

    // podman rmi releases every use; then gc frees the layers
    await podman.podman(["--storage-opt", `overlay.additionallayerstore=${mnt}:ref`, "rmi", ref])
    await lsUntil(root, (rows) => rows.every((x) => x.uses === 0), "uses after podman rmi")
    plan = await gcJson(root, podman.graphRoot)
    expect({ removed: plan.remove.map((x) => x.digest).sort(), plan }).toEqual({ removed: layers, plan })
    expect(await ls(root)).toEqual([])
    expect(await server.stop("SIGTERM")).toBe(0)
    expect((await alsOk(["audit", "--root", root])).exitCode).toBe(0)
  }, 10 * MIN)
})

describe("als doctor with an als serve mount up", () => {
  test("storage.conf pointing at the mount is ok (serve and storage.conf checks); pointing at the store warns: point podman at the mount", async () => {
    const root = res.tempDir("serve-doctor-store")
    const mnt = res.tempDir("serve-doctor-mnt")
    await alsOk(["init", "--root", root])
    const server = await startServe(root, mnt, ["--lazy=false"])
    servers.push(server)
    // a second server of another store, up at the same time: the doctor must not name its mount
    const otherRoot = res.tempDir("serve-doctor-other-store")
    const otherMnt = res.tempDir("serve-doctor-other-mnt")
    await alsOk(["init", "--root", otherRoot])
    const other = await startServe(otherRoot, otherMnt, ["--lazy=false"])
    servers.push(other)
    // the mount table names the store each mount serves
    const table = alsServeMounts(readFileSync("/proc/self/mountinfo", "utf8"))
    expect(table.find((m) => m.mountpoint === mnt)?.source).toBe(root)
    expect(table.find((m) => m.mountpoint === otherMnt)?.source).toBe(otherRoot)
    const conf = (stores: string) => {
      const file = join(res.tempDir("serve-doctor-conf"), "storage.conf")
      writeFileSync(file, `[storage]\ndriver = "overlay"\ngraphroot = "/var/lib/containers/storage"\nrunroot = "/run/containers/storage"\n\n[storage.options]\nadditionallayerstores = ["${stores}"]\n`)
      return file
    }
    const doctor = async (file: string) => {
      const r = await als(["doctor", "--json", "--root", root], { env: { CONTAINERS_STORAGE_CONF: file } })
      const checks = (JSON.parse(r.stdout) as { checks: Array<{ id: string; status: string; detail: string; fix?: string }> }).checks
      return Object.fromEntries(checks.filter((c) => c.id === "serve" || c.id === "storage.conf").map((c) => [c.id, c]))
    }
    const atMount = await doctor(conf(`${mnt}:ref`))
    expect([atMount.serve?.status, atMount["storage.conf"]?.status]).toEqual(["ok", "ok"])
    const atStore = await doctor(conf(`${root}:ref`))
    expect(atStore.serve?.status).toBe("warn")
    expect(atStore.serve?.fix).toContain(`additionallayerstores = ["${mnt}:ref"]`)
    expect(atStore.serve?.detail).not.toContain(otherMnt)
    expect(await other.stop("SIGTERM")).toBe(0)
    // the doctor never looked a layer up through the mount
    expect(await server.stop("SIGTERM")).toBe(0)
    expect(eventsOf(await alsLog(root), "LookupRequested")).toEqual([])
    // no mount, no serve check
    expect((await doctor(conf(`${root}:ref`))).serve).toBeUndefined()
  }, 5 * MIN)
})
