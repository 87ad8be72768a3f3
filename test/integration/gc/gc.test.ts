// als rm / als gc against real podman 4.3.1: a layer podman uses (its graph root's
// `additionallayer` files name it) is never removed; once podman lets go, gc frees it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, readdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { als, alsLog, alsOk, eventsOf } from "../../lib/als.ts"
import { pushLayout, type RegistryHandle, startRegistry } from "../../lib/registry.ts"
import { alsPull, MIN, Resources } from "../../e2e/support.ts"

const fixture = resolve(import.meta.dir, "../../fixtures/hello")
const res = new Resources()
let registry: RegistryHandle
let ref: string

beforeAll(async () => {
  registry = await startRegistry()
  ref = `${registry.host}/gc/hello:1`
  await pushLayout(fixture, "latest", ref)
}, 2 * MIN)

afterAll(async () => {
  await res.cleanup()
  await registry?.stop()
})

const layerDirs = (root: string) => readdirSync(root).filter((n) => /^sha256:[a-f0-9]{64}$/.test(n))

describe("als gc", () => {
  test("keeps layers podman uses, removes them once unused, and logs every removal", async () => {
    const root = res.tempDir("gc-store")
    await alsPull(root, ref)
    const layers = layerDirs(root)
    expect(layers.length).toBe(2)

    const podman = await res.podman4()
    const pulled = await podman.pull(ref, { als: { root } })
    expect(pulled.skipped.length).toBe(2)
    expect(podman.additionalLayers().length).toBeGreaterThan(0)

    // while refs name the layers, gc keeps them
    let gc = await alsOk(["gc", "--root", root, "--graphroot", podman.graphRoot, "--json"])
    expect(JSON.parse(gc.stdout).remove).toEqual([])

    // without refs, podman's use still keeps them
    await alsOk(["rm", "--root", root, ref])
    gc = await alsOk(["gc", "--root", root, "--graphroot", podman.graphRoot, "--json"])
    const plan = JSON.parse(gc.stdout)
    expect(plan.remove).toEqual([])
    expect([...plan.keptInUse].sort()).toEqual([...layers].sort())
    for (const l of layers) expect(existsSync(join(root, l, "diff"))).toBe(true)

    // podman lets go: a dry run says what would go and removes nothing
    await podman.removeImage(ref)
    expect(podman.additionalLayers()).toEqual([])
    const dry = await alsOk(["gc", "--root", root, "--graphroot", podman.graphRoot, "--dry-run"])
    expect(dry.stdout).toContain("would remove")
    expect(layerDirs(root).length).toBe(2)

    const real = await alsOk(["gc", "--root", root, "--graphroot", podman.graphRoot])
    expect(real.stdout).toContain("2 removed")
    expect(layerDirs(root)).toEqual([])
    expect(readdirSync(join(root, ".als", "staging"))).toEqual([])
    // no name is left pointing at a removed layer
    expect(readdirSync(root).filter((n) => n !== ".als" && n !== ".pool")).toEqual([])

    const events = await alsLog(root)
    expect(eventsOf(events, "RefRemoved").length).toBeGreaterThanOrEqual(1)
    expect(eventsOf(events, "LayerRemoved").map((e) => e.layer).sort()).toEqual([...layers].sort())

    // the store still works: pulling again brings the layers back
    await alsPull(root, ref)
    expect(layerDirs(root).length).toBe(2)
  }, 5 * MIN)

  test("rm of a ref that is not there exits 1 and says so", async () => {
    const root = res.tempDir("gc-empty")
    await alsOk(["init", "--root", root])
    const r = await als(["rm", "--root", root, "127.0.0.1:1/none:1"])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toContain("not in the store")
  })
})
