// A CVMFS-style pool (`DIR/.layers/<2 hex>/<hex>/layerfs`) shows layer trees but no blob and no
// info. `als lookup` alone refuses such a hit (it cannot provide a true blob); `als pull --pool`
// links the tree, fetches and verifies only the blob, and podman 4.3.1 takes every layer.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { lstatSync, mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { als, alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { compareTrees } from "../lib/podman.ts"
import { pushLayout, type RegistryHandle, startRegistry } from "../lib/registry.ts"
import { runOk } from "../lib/sh.ts"
import { alsPull, expectAllSkipped, layerNames, MIN, readInfo, resolvesInto, Resources, stagingEntries } from "./support.ts"

const fixture = resolve(import.meta.dir, "../fixtures/hello")
const res = new Resources()
let registry: RegistryHandle
let ref: string

beforeAll(async () => {
  registry = await startRegistry()
  ref = `${registry.host}/cvmfs/hello:1`
  await pushLayout(fixture, "latest", ref)
}, 2 * MIN)

afterAll(async () => {
  await res.cleanup()
  await registry?.stop()
}, 2 * MIN)

describe("CVMFS-style pool", () => {
  test("lookup refuses a tree without blob; pull links the tree and fetches only the blob", async () => {
    // a full store to take the base layer's tree from, as a CVMFS publisher would unpack it
    const full = res.tempDir("cvmfs-full")
    await alsPull(full, ref)
    const layers = layerNames(full)
    expect(layers.length).toBe(2)
    const base = layers.find((d) => readInfo(join(full, d))["compressed-size"] > 1000)!
    const hex = base.slice("sha256:".length)
    const cvmfs = res.tempDir("cvmfs-pool")
    const layerfs = join(cvmfs, ".layers", hex.slice(0, 2), hex, "layerfs")
    mkdirSync(join(layerfs, ".."), { recursive: true })
    await runOk(["cp", "-a", join(full, base, "diff"), layerfs])

    const root = res.tempDir("cvmfs-store")
    await alsOk(["init", "--root", root]) // lookup needs a store
    const lookup = await als(["lookup", base, "--ref", ref, "--pool", cvmfs, "--root", root])
    expect(lookup.exitCode).toBe(1)
    expect(lookup.stderr).toContain("shows it, but")
    expect(lookup.stderr).toContain("als pull")
    expect(layerNames(root)).toEqual([])

    await alsPull(root, ref, ["--pool", cvmfs])
    expect(stagingEntries(root)).toEqual([])
    const diff = join(root, base, "diff")
    expect(lstatSync(diff).isSymbolicLink()).toBe(true)
    expect(resolvesInto(diff, cvmfs)).toBe(true)
    expect(lstatSync(join(root, base, "blob")).isFile()).toBe(true) // fetched, verified, ours
    expect(readInfo(join(root, base))["diff-digest"]).toBe(readInfo(join(full, base))["diff-digest"])

    const log = await alsLog(root)
    expect(eventsOf(log, "PoolProbed").some((e) => e.layer === base && e.hit === true && e.kind === "cvmfs")).toBe(true)
    expect(eventsOf(log, "LayerLinked").map((e) => e.layer)).toEqual([base])
    expect(eventsOf(log, "LayerExtracted").map((e) => e.layer)).not.toContain(base)
    expect(eventsOf(log, "BlobFetched").map((e) => e.layer).sort()).toEqual([...layers].sort())

    const podman = await res.podman4()
    const pulled = await podman.pull(ref, { als: { root } })
    expectAllSkipped(pulled, layers, "podman 4 with a CVMFS-linked layer")
    const plain = await res.podman4()
    await plain.pull(ref)
    const diffs = await compareTrees(await podman.imageMount(ref), await plain.imageMount(ref), { mtime: false })
    expect(diffs).toEqual([])
  }, 5 * MIN)
})
