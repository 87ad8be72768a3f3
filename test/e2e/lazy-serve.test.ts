// Issue 14: `als serve --lazy=true` serves layers with a TOC (zstd:chunked, eStargz) before
// they are pulled: a lookup returns once the TOC is fetched by range and verified, `diff` is
// a FUSE tree built from it, reads fetch only their chunks (each checked before a byte is
// served), and the background pull completes the layer into the store. Real docker-registry
// behind a counting proxy on 127.0.0.1; trees compared with a plain `als pull`'s.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import { join } from "node:path"
import { alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { type CountingProxy, startCountingProxy } from "../lib/countingProxy.ts"
import { ESTARGZ_TOC_ANNOTATION, toEstargz } from "../lib/estargz.ts"
import { buildFeatureImage, push, type FeatureImage, type PushedImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { pushLayout, startRegistry, writeImage, tagLayout, type RegistryHandle } from "../lib/registry.ts"
import { run } from "../lib/sh.ts"
import { b64, MIN, Resources } from "./support.ts"
import { busyboxLayer, layerOf, type Serving, startServe } from "./serveSupport.ts"

const TOC = "io.github.containers.zstd-chunked.manifest-checksum"

let registry: RegistryHandle
let proxy: CountingProxy
let feature: FeatureImage
let chunked: PushedImage
const res = new Resources()
const servers: Serving[] = []

const serve = async (root: string, mnt: string, extra: ReadonlyArray<string> = []) => {
  const s = await startServe(root, mnt, ["--lazy=true", ...extra])
  servers.push(s)
  return s
}

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startCountingProxy(registry.url)
  feature = await buildFeatureImage()
  chunked = await push(feature, registry.host, "lazy/feature-chunked", "1", { compress: "zstd:chunked" })
  for (const l of chunked.layers) expect(l.annotations[TOC]).toMatch(/^sha256:[0-9a-f]{64}$/)
}, 20 * MIN)

afterAll(async () => {
  for (const s of servers) {
    s.stop("SIGTERM")
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 10_000))])
  }
  for (const s of servers) await run(["umount", "-l", s.mountpoint]).catch(() => undefined)
  await res.cleanup()
  await proxy?.stop()
  await registry?.stop()
}, 5 * MIN)

/** the same image through the proxy */
const viaProxy = (ref: string) => ref.replace(registry.host, proxy.host)

/** differences between two layer diffs; whiteouts are 0/0 devices in both, as overlay wants */
const layerDiffs = async (a: string, b: string) =>
  (await compareTrees(a, b)).filter((l) => !l.startsWith("overlay whiteout (0/0 char device)"))

const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms = 3 * MIN) => {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe("als serve --lazy: zstd:chunked", () => {
  test("every layer's diff, served from its TOC before the layer is pulled, equals a plain pull's; info carries the TOC digest and DiffID; the background pull completes each layer and audit --deep is clean", async () => {
    const ref = viaProxy(chunked.ref)
    const plainRoot = res.tempDir("lazy-plain")
    await alsOk(["pull", "--root", plainRoot, "--tls-verify=false", ref])
    const root = res.tempDir("lazy-store")
    const mnt = res.tempDir("lazy-mnt")
    const server = await serve(root, mnt, ["--lazy-delay", "3600"])
    for (const l of chunked.layers) {
      const dir = join(mnt, b64(ref), l.digest)
      expect(fs.statSync(join(dir, "diff")).isDirectory()).toBe(true)
      const info = JSON.parse(fs.readFileSync(join(dir, "info"), "utf8"))
      expect(info).toMatchObject({ "compressed-diff-digest": l.digest, "compressed-size": l.size, "toc-digest": l.annotations[TOC], "diff-digest": l.diffId, flags: { "expected-layer-diffid": l.diffId } })
      // the tar's size from the verified tar-split, as a plain pull measures it
      expect(info["diff-size"]).toBe(JSON.parse(fs.readFileSync(join(plainRoot, l.digest, "info"), "utf8"))["diff-size"])
      expect(fs.statSync(join(dir, "blob")).size).toBe(l.size)
      expect({ layer: l.digest, diffs: await layerDiffs(join(plainRoot, l.digest, "diff"), join(dir, "diff")) }).toEqual({ layer: l.digest, diffs: [] })
      // the store does not hold it: it was served lazily
      expect(fs.existsSync(join(root, l.digest))).toBe(false)
    }
    // the same layer under its TOC digest
    const first = chunked.layers[0]!
    expect(fs.readdirSync(join(mnt, b64(ref), first.annotations[TOC]!, "diff")).sort()).toEqual(fs.readdirSync(join(plainRoot, first.digest, "diff")).sort())
    const events = await alsLog(root)
    expect(eventsOf(events, "LayerServedLazily").map((e) => e.layer).sort()).toEqual(chunked.layers.map((l) => l.digest).sort())
    expect(await server.stop()).toBe(0)

    // a server that completes layers soon after serving them
    const mnt2 = res.tempDir("lazy-mnt2")
    const root2 = res.tempDir("lazy-store2")
    const server2 = await serve(root2, mnt2, ["--lazy-delay", "0"])
    for (const l of chunked.layers) fs.statSync(join(mnt2, b64(ref), l.digest, "diff"))
    await waitFor("every layer committed", () => chunked.layers.every((l) => fs.existsSync(join(root2, l.digest, "blob"))))
    for (const l of chunked.layers) {
      expect({ layer: l.digest, diffs: await layerDiffs(join(plainRoot, l.digest, "diff"), join(root2, l.digest, "diff")) }).toEqual({ layer: l.digest, diffs: [] })
    }
    await alsOk(["audit", "--deep", "--root", root2])
    expect(await server2.stop()).toBe(0)
  }, 10 * MIN)
})
