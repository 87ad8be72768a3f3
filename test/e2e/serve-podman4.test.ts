// Issue 13: `als serve` mounts the store as a FUSE filesystem that podman 4.3.1 drives itself.
// An empty store, podman pointed at MOUNTPOINT:ref: every layer is looked up, pulled by als
// while the LOOKUP waits, and skipped by podman; `use`/`rmdir` are counted; SIGTERM unmounts;
// a killed server's stale mount is cleared by the next one; hostile names are ENOENT.
// Real docker-registry on 127.0.0.1, real podman; nothing is skipped.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import { join } from "node:path"
import { als, alsLog, alsOk, eventsOf } from "../lib/als.ts"
import type { Digest } from "../../src/domain/Digest.ts"
import { seedPoolPath } from "../../src/domain/PoolPaths.ts"
import { startFaultProxy } from "../lib/faultProxy.ts"
import { buildFeatureImage, buildMultiArchIndex, push, type FeatureImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { isMountPoint, run } from "../lib/sh.ts"
import { b64, expectAllSkipped, MIN, Resources } from "./support.ts"
import { busyboxLayer, fetchesPerLayer, layerOf, pushLayers, type Serving, startServe, stopServers, useCounts } from "./serveSupport.ts"

let registry: RegistryHandle
let feature: FeatureImage
const res = new Resources()
/** podman sessions, released before the servers stop */
const podmen = new Resources()
const servers: Serving[] = []

const serve = async (root: string, mnt: string, extra: ReadonlyArray<string> = []) => {
  // whole-layer pulls: what these tests check is a committed layer once podman pull returns
  const s = await startServe(root, mnt, ["--lazy=false", ...extra])
  servers.push(s)
  return s
}

beforeAll(async () => {
  registry = await startRegistry()
  feature = await buildFeatureImage()
}, 10 * MIN)

afterAll(async () => {
  // podman first (its overlay mounts hold the stores' diffs), then the servers, then the dirs
  await podmen.cleanup().catch(() => undefined)
  await stopServers(servers)
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

const errnoOf = (f: () => unknown): string | undefined => {
  try {
    f()
    return undefined
  } catch (e) {
    return (e as NodeJS.ErrnoException).code
  }
}

describe("als serve → podman 4.3.1 pulls through the mount", () => {
  for (const compression of ["gzip", "zstd"] as const) {
    test(`empty store, feature image (${compression}): every layer skipped, no store warning, the tree equals a plain pull's, rmi releases every use`, async () => {
      const pushed = await push(feature, registry.host, `serve/feature-${compression}`, "1", { compress: compression })
      const root = res.tempDir("serve-store")
      const mnt = res.tempDir("serve-mnt")
      const server = await serve(root, mnt)

      const podman = await podmen.podman4()
      const r = await podman.pull(pushed.ref, { als: { root: mnt } })
      expectAllSkipped(r, pushed.layers.map((l) => l.digest), `podman 4 pull of ${pushed.ref} through als serve`)
      expect(r.alsWarnings).toEqual([])
      // podman's layers point into the mount, under the ref it pulled
      const used = podman.additionalLayers()
      expect(used.sort()).toEqual(pushed.layers.map((l) => `${mnt}/${b64(pushed.ref)}/${l.digest}`).sort())

      const plain = await podmen.podman4()
      await plain.pull(pushed.ref)
      expect(await compareTrees(await plain.imageMount(pushed.ref), await podman.imageMount(pushed.ref))).toEqual([])
      await podman.imageUnmount(pushed.ref)

      // every layer was fetched once, by als, and is held while podman has the image
      let events = await alsLog(root)
      expect(Object.fromEntries(fetchesPerLayer(events))).toEqual(Object.fromEntries(pushed.layers.map((l) => [l.digest, 1])))
      const held = useCounts(events)
      for (const l of pushed.layers) expect({ layer: l.digest, holders: (held.get(l.digest) ?? 0) > 0 }).toEqual({ layer: l.digest, holders: true })

      await podman.podman(["--storage-opt", `overlay.additionallayerstore=${mnt}:ref`, "rmi", pushed.ref])
      // stopping writes the events still batched, then unmounts
      expect(await server.stop("SIGTERM")).toBe(0)
      expect(await isMountPoint(mnt)).toBe(false)
      events = await alsLog(root)
      const after = useCounts(events)
      expect(Object.fromEntries(pushed.layers.map((l) => [l.digest, after.get(l.digest) ?? 0])))
        .toEqual(Object.fromEntries(pushed.layers.map((l) => [l.digest, 0])))
      // every release names the process that asked
      for (const e of eventsOf(events, "LayerAcquired", "LayerReleased")) expect((e as unknown as { clientPid: number }).clientPid).toBeGreaterThan(0)
      expect((await als(["audit", "--root", root])).exitCode).toBe(0)
    }, 10 * MIN)
  }

  test("a multi-arch index: als serve resolves the host's platform; podman skips every layer and the other platform's layer is never fetched", async () => {
    const pushed = await push(await buildMultiArchIndex(), registry.host, "serve/multi", "1")
    const amd = pushed.manifests?.find((m) => m.platform?.architecture === "amd64")
    const arm = pushed.manifests?.find((m) => m.platform?.architecture === "arm64")
    expect(amd && arm).toBeDefined()
    const root = res.tempDir("serve-store")
    const mnt = res.tempDir("serve-mnt")
    const server = await serve(root, mnt)
    const podman = await podmen.podman4()
    const r = await podman.pull(pushed.ref, { als: { root: mnt }, arch: "amd64" })
    expectAllSkipped(r, amd!.layers.map((l) => l.digest), "podman 4 pull of the index through als serve")
    expect(r.alsWarnings).toEqual([])
    expect(await server.stop()).toBe(0)
    const fetched = [...fetchesPerLayer(await alsLog(root)).keys()].sort()
    expect(fetched).toEqual(amd!.layers.map((l) => l.digest).sort())
    const armOnly = arm!.layers.map((l) => l.digest).filter((d) => !fetched.includes(d))
    expect(armOnly.length).toBeGreaterThan(0)
  }, 10 * MIN)

  test("podman run works on an image served through the mount; its layers stay on disk (diff is a symlink into the store)", async () => {
    const ref = await pushLayers(registry.host, "serve/busybox", "1", [await busyboxLayer(), await layerOf({ "etc/motd": "served by als\n" })])
    const root = res.tempDir("serve-store")
    const mnt = res.tempDir("serve-mnt")
    await serve(root, mnt)
    const podman = await podmen.podman4()
    const r = await podman.pull(ref, { als: { root: mnt } })
    expect(r.copied).toEqual([])
    expect(r.skipped.length).toBe(2)
    const out = await podman.run(ref, ["/bin/sh", "-c", "cat /etc/motd"], { als: { root: mnt } })
    expect(out.stdout).toBe("served by als\n")
    // the mount only names: diff resolves to the store's real directory
    const key = r.skipped[0]!
    expect(fs.readlinkSync(join(mnt, b64(ref), key, "diff"))).toBe(join(root, key, "diff"))
  }, 10 * MIN)
})

describe("als serve: names, failures, signals", () => {
  test("hostile and unknown names are ENOENT, never a path; writes other than the notifications are refused", async () => {
    const root = res.tempDir("serve-store")
    const mnt = res.tempDir("serve-mnt")
    await serve(root, mnt)
    const ref = `${registry.host}/serve/none:1`
    const names = [
      "not base64!",
      b64("../../etc"),
      b64("/etc/passwd"),
      b64("..") ,
      "Li4=", // ".." in base64
      "x".repeat(1000),
      b64("docker.io/library/alpine"), // not normalized: no tag
      `sha256:${"0".repeat(63)}`,
      `sha256:${"A".repeat(64)}`,
      ".pool/garbage",
      `.pool/${Buffer.from("a=b").toString("base64")}/rootfs.sha256:${"0".repeat(64)}`, // annotations name no such digest
      `${b64(ref)}/..%2f..%2fetc`,
      `${b64(ref)}/etc`,
      `sha256:${"0".repeat(64)}`, // a digest the store lacks, with no ref to pull it from
    ]
    for (const n of names) expect({ name: n, errno: errnoOf(() => fs.statSync(join(mnt, n))) }).toEqual({ name: n, errno: "ENOENT" })
    expect(fs.readdirSync(mnt)).toEqual([])
    expect(errnoOf(() => fs.mkdirSync(join(mnt, "new")))).toBe("EROFS")
    expect(errnoOf(() => fs.writeFileSync(join(mnt, "file"), "x"))).toBe("EROFS")
  }, 5 * MIN)

  test("a stored layer is served at the root by its digest and at the seed's .pool path from its annotations; its use is counted", async () => {
    const layer = await layerOf({ "seed.txt": "found by annotations\n" })
    const ref = await pushLayers(registry.host, "serve/seed", "1", [layer])
    const root = res.tempDir("serve-store")
    await alsOk(["pull", "--root", root, "--tls-verify=false", ref])
    const mnt = res.tempDir("serve-mnt")
    const server = await serve(root, mnt)
    expect(fs.readlinkSync(join(mnt, layer.digest, "diff"))).toBe(join(root, layer.digest, "diff"))
    const seed = seedPoolPath(join(mnt, ".pool"), layer.digest as Digest, ref, {})
    expect(fs.readFileSync(join(seed, "diff", "seed.txt"), "utf8")).toBe("found by annotations\n")
    // the same path naming another reference is no path to this layer's pull (the store has it: found)
    expect(errnoOf(() => fs.statSync(seedPoolPath(join(mnt, ".pool"), `sha256:${"e".repeat(64)}` as Digest, ref, {})))).toBe("ENOENT")
    // containers/storage's notification: `use` is ENOENT and counted
    expect(errnoOf(() => fs.writeFileSync(join(mnt, layer.digest, "use"), ""))).toBe("ENOENT")
    expect(errnoOf(() => fs.rmdirSync(join(mnt, layer.digest)))).toBe("ENOENT")
    expect(await server.stop()).toBe(0)
    const events = await alsLog(root)
    expect(eventsOf(events, "LayerAcquired", "LayerReleased").map((e) => [e.type, e.layer, e.clientPid])).toEqual([
      ["LayerAcquired", layer.digest, process.pid],
      ["LayerReleased", layer.digest, process.pid],
    ])
  }, 5 * MIN)

  test("a key no layer of the image has: ENOENT at once, and a PullFailed event naming it", async () => {
    const ref = await pushLayers(registry.host, "serve/one", "1", [await layerOf({ "a.txt": "a\n" })])
    const root = res.tempDir("serve-store")
    const mnt = res.tempDir("serve-mnt")
    const server = await serve(root, mnt)
    const key = `sha256:${"ab".repeat(32)}`
    const t0 = Date.now()
    expect(errnoOf(() => fs.statSync(join(mnt, b64(ref), key, "diff")))).toBe("ENOENT")
    expect(Date.now() - t0).toBeLessThan(30_000)
    expect(await server.stop()).toBe(0)
    const failed = eventsOf(await alsLog(root), "PullFailed")
    expect(failed.map((e) => [e.ref, e.layer, (e.reason as { code: string }).code])).toEqual([[ref, key, "LayerNotInImage"]])
  }, 5 * MIN)

  test("a lookup held by a stalled registry answers ENOENT after --timeout; SIGKILL mid-lookup leaves a stale mount that the next als serve clears, then serves", async () => {
    const [a, b] = [await layerOf({ "a.bin": new Uint8Array(256 * 1024).fill(7) }), await layerOf({ "b.bin": new Uint8Array(128 * 1024).fill(8) })]
    await pushLayers(registry.host, "serve/stall", "1", [a, b])
    // only the layers stall: the manifest and config come through
    const proxy = await startFaultProxy(registry.url, [{ path: new RegExp(`/blobs/(${a.digest}|${b.digest})`), fault: { kind: "stall" } }])
    try {
      const ref = `${proxy.host}/serve/stall:1`
      const root = res.tempDir("serve-store")
      const mnt = res.tempDir("serve-mnt")
      const entry = (l: { digest: string }) => join(mnt, b64(ref), l.digest, "diff")

      // the deadline: ENOENT once --timeout has passed, not the registry's minutes
      const first = await serve(root, mnt, ["--timeout", "3"])
      const t0 = Date.now()
      const st = await run(["stat", entry(a)], { timeoutMs: 120_000 })
      expect(st.exitCode).not.toBe(0)
      expect(st.stderr).toContain("No such file or directory")
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2_500)
      expect(Date.now() - t0).toBeLessThan(3_000 + 20_000)

      // SIGKILL while a lookup waits on the stalled download of b
      const waiting = run(["stat", entry(b)], { timeoutMs: 120_000 })
      const until = Date.now() + 60_000
      while (proxy.requestsFor(new RegExp(`/blobs/${b.digest}`)).length < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50))
      expect(proxy.requestsFor(new RegExp(`/blobs/${b.digest}`)).length).toBeGreaterThanOrEqual(1)
      first.stop("SIGKILL")
      await first.exited
      const killed = await waiting
      expect(killed.exitCode).not.toBe(0) // the client sees an error, never a hang
      expect(errnoOf(() => fs.statSync(mnt))).toBe("ENOTCONN")

      // restart on the same mount point: the stale mount goes, the layer is served
      proxy.setRules([])
      const second = await serve(root, mnt)
      // async: the fault proxy runs in this process and must keep answering while the lookup waits
      expect((await fs.promises.stat(entry(b))).isDirectory()).toBe(true)
      expect((await fs.promises.readFile(join(entry(b), "b.bin"))).length).toBe(128 * 1024)
      expect(await second.stop("SIGINT")).toBe(0)
      expect(await isMountPoint(mnt)).toBe(false)
    } finally {
      await proxy.stop()
    }
  }, 10 * MIN)

  test("8 concurrent podman pulls of overlapping images through one als serve: each layer fetched once, audit clean", async () => {
    const base = await busyboxLayer()
    const shared = await layerOf({ "usr/share/shared.txt": "shared by all\n" })
    const refs: string[] = []
    const layers = new Set([base.digest, shared.digest])
    for (let i = 0; i < 4; i++) {
      const own = await layerOf({ [`app${i}/data.txt`]: `image ${i}\n`.repeat(1000 * (i + 1)) })
      layers.add(own.digest)
      refs.push(await pushLayers(registry.host, `serve/overlap${i}`, "1", [base, shared, own]))
    }
    const root = res.tempDir("serve-store")
    const mnt = res.tempDir("serve-mnt")
    const server = await serve(root, mnt)
    const sessions = await Promise.all(Array.from({ length: 8 }, () => podmen.podman4()))
    const results = await Promise.all(sessions.map((p, i) => p.pull(refs[i % 4]!, { als: { root: mnt } })))
    for (const r of results) {
      expect(r.copied).toEqual([])
      expect(r.skipped.length).toBe(3)
      expect(r.alsWarnings).toEqual([])
    }
    expect(await server.stop()).toBe(0)
    const fetched = fetchesPerLayer(await alsLog(root))
    expect(Object.fromEntries(fetched)).toEqual(Object.fromEntries([...layers].map((d) => [d, 1])))
    const audit = await als(["audit", "--root", root])
    expect({ exit: audit.exitCode, out: audit.stdout + audit.stderr }).toEqual({ exit: 0, out: expect.any(String) })
  }, 15 * MIN)
})

test("als serve --help names the mount layout and the podman option", async () => {
  const r = await alsOk(["serve", "--help"])
  expect(r.stdout).toContain("additionallayerstore=")
  expect(r.stdout).toContain("MOUNTPOINT")
})
