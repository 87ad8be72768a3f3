// Issue 14: `als serve` (lazy by default; --lazy=false turns it off) serves layers with a TOC (zstd:chunked, eStargz) before
// they are pulled: a lookup returns once the TOC is fetched by range and verified, `diff` is
// a FUSE tree built from it, reads fetch only their chunks (each checked before a byte is
// served), and the background pull completes the layer into the store. Real docker-registry
// behind a counting proxy on 127.0.0.1; trees compared with a plain `als pull`'s.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import { join } from "node:path"
import { alsLog, alsOk, eventsOf } from "../lib/als.ts"
import { type CountingProxy, startCountingProxy } from "../lib/countingProxy.ts"
import { ESTARGZ_TOC_ANNOTATION, toEstargz } from "../lib/estargz.ts"
import { blobPath, buildFeatureImage, compressionVariant, push, type FeatureImage, type PushedImage } from "../lib/images.ts"
import { fetchToc } from "../../src/lazy/TocFetch.ts"
import { fileRangeSource } from "../../src/lazy/Chunks.ts"
import { nodeAt, type TocFile } from "../../src/lazy/TocModel.ts"
import { tocExpectation } from "../../src/verify/Toc.ts"
import { compareTrees } from "../lib/podman.ts"
import { pushLayout, startRegistry, writeImage, tagLayout, type RegistryHandle } from "../lib/registry.ts"
import { b64, MIN, Resources } from "./support.ts"
import { busyboxLayer, layerOf, pushLayers, type Serving, startServe, stopServers } from "./serveSupport.ts"

const TOC = "io.github.containers.zstd-chunked.manifest-checksum"

let registry: RegistryHandle
let proxy: CountingProxy
let feature: FeatureImage
let chunked: PushedImage
const res = new Resources()
const servers: Serving[] = []

const serve = async (root: string, mnt: string, extra: ReadonlyArray<string> = []) => {
  // lazy is the default: no flag
  const s = await startServe(root, mnt, extra)
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
  await stopServers(servers)
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

describe("als serve: lazy is the default, --lazy=false turns it off", () => {
  test("with no flag a TOC layer is served lazily (not in the store when the lookup returns) and a layer without a TOC is pulled whole; with --lazy=false the TOC layer is pulled whole too (committed when the lookup returns, no LayerServedLazily)", async () => {
    const ref = viaProxy(chunked.ref)
    const l = chunked.layers[0]!
    const gz = await layerOf({ "etc/motd": "no TOC here\n" })
    const gzRef = viaProxy(await pushLayers(registry.host, "lazy/plain-gzip", "1", [gz]))

    const root = res.tempDir("lazy-default-store")
    const mnt = res.tempDir("lazy-default-mnt")
    const server = await serve(root, mnt, ["--lazy-delay", "3600"])
    await fs.promises.stat(join(mnt, b64(ref), l.digest, "diff"))
    expect(fs.existsSync(join(root, l.digest))).toBe(false)
    expect(await fs.promises.readFile(join(mnt, b64(gzRef), gz.digest, "diff", "etc", "motd"), "utf8")).toBe("no TOC here\n")
    expect(fs.existsSync(join(root, gz.digest, "blob"))).toBe(true)
    expect(eventsOf(await alsLog(root), "LayerServedLazily").map((e) => e.layer)).toEqual([l.digest])
    expect(await server.stop()).toBe(0)

    const rootOff = res.tempDir("lazy-off-store")
    const mntOff = res.tempDir("lazy-off-mnt")
    const off = await startServe(rootOff, mntOff, ["--lazy=false"])
    servers.push(off)
    await fs.promises.stat(join(mntOff, b64(ref), l.digest, "diff"))
    expect(fs.existsSync(join(rootOff, l.digest, "blob"))).toBe(true)
    expect(eventsOf(await alsLog(rootOff), "LayerServedLazily")).toEqual([])
    expect(await off.stop()).toBe(0)
  }, 10 * MIN)
})

/** reads `length` bytes at `offset` of a file (async: the read goes through the mount) */
const readAt = async (file: string, offset: number, length: number): Promise<Buffer> => {
  const fh = await fs.promises.open(file, "r")
  try {
    const buf = Buffer.alloc(length)
    const { bytesRead } = await fh.read(buf, 0, length, offset)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

describe("als serve --lazy: failures", () => {
  test("a chunk whose bytes were changed on the way (the proxy flips one byte of its range answer): the read fails with EIO, no byte of it is served, the event names layer and file; the next read fetches it again and gets the right bytes", async () => {
    const ref = viaProxy(chunked.ref)
    const l = chunked.layers[0]!
    // where the chunk lies, from the same TOC the server reads
    const variant = await compressionVariant(feature, "zstd:chunked")
    const { model } = await fetchToc(fileRangeSource(blobPath(variant.layoutDir, l.digest)), l.size, tocExpectation(l.digest, l.annotations)!)
    const file = nodeAt(model, "data/blob.bin") as TocFile
    const c = file.chunks[3]!
    const root = res.tempDir("lazy-corrupt-store")
    const mnt = res.tempDir("lazy-corrupt-mnt")
    const server = await serve(root, mnt, ["--lazy-delay", "3600"])
    const path = join(mnt, b64(ref), l.digest, "diff", "data", "blob.bin")
    await fs.promises.stat(path)
    // every answer for that range corrupted: the kernel retries a failed readahead with a read of its own
    await proxy.flipOnce(`/blobs/${l.digest}`, `bytes=${c.blobOffset}-`, Math.floor((c.blobEnd - c.blobOffset) / 2), 1000)
    const err = await readAt(path, c.fileOffset, 4096).then(() => undefined, (e: NodeJS.ErrnoException) => e.code)
    await proxy.clearFlips()
    expect(err).toBe("EIO")
    expect((await proxy.requests()).filter((r) => r.flipped).length).toBeGreaterThanOrEqual(1)
    const failed = eventsOf(await alsLog(root), "LazyReadFailed")
    expect(failed.length).toBeGreaterThanOrEqual(1)
    for (const f of failed) expect([f.layer, f.file, f.corrupt]).toEqual([l.digest, "data/blob.bin", true])
    expect(String(failed[0]!.reason)).toMatch(/digest|checksum/)
    // fetched again, unflipped: the bytes a plain pull extracts
    const plainRoot = res.tempDir("lazy-corrupt-plain")
    await alsOk(["pull", "--root", plainRoot, "--tls-verify=false", ref])
    const want = fs.readFileSync(join(plainRoot, l.digest, "diff", "data", "blob.bin")).subarray(c.fileOffset, c.fileOffset + 4096)
    expect((await readAt(path, c.fileOffset, 4096)).equals(want)).toBe(true)
    expect(await server.stop()).toBe(0)
  }, 10 * MIN)

  // the registry vanishes after the TOC was fetched: it answers 503, its process is gone (connection
  // refused), or it takes requests and never answers; a read must fail within --timeout (+ margin)
  for (const how of ["answers 503", "is killed", "hangs"] as const) {
    test(`a registry that ${how} after the lookup: a read of chunks not yet fetched fails with EIO within --timeout (+ margin), never hangs`, async () => {
      const own = await startCountingProxy(registry.url)
      try {
        const ref = chunked.ref.replace(registry.host, own.host)
        const l = chunked.layers[0]!
        const root = res.tempDir("lazy-gone-store")
        const mnt = res.tempDir("lazy-gone-mnt")
        const timeoutS = 5
        const server = await serve(root, mnt, ["--lazy-delay", "3600", "--timeout", String(timeoutS)])
        const path = join(mnt, b64(ref), l.digest, "diff", "data", "blob.bin")
        await fs.promises.stat(path)
        expect(eventsOf(await alsLog(root), "LayerServedLazily").map((e) => e.layer)).toEqual([l.digest])
        if (how === "answers 503") await own.goAway()
        else if (how === "hangs") await own.hang()
        else await own.stop()
        const t0 = Date.now()
        const err = await readAt(path, 500_000, 4096).then(() => undefined, (e: NodeJS.ErrnoException) => e.code)
        const tookMs = Date.now() - t0
        console.log(`registry ${how}: EIO after ${tookMs} ms (--timeout ${timeoutS})`)
        expect(err).toBe("EIO")
        // the kernel may retry a failed readahead with a read of its own: at most two waits, plus load
        expect(tookMs).toBeLessThan(2 * timeoutS * 1000 + 10_000)
        expect(eventsOf(await alsLog(root), "LazyReadFailed").map((e) => [e.file, e.corrupt])).toContainEqual(["data/blob.bin", false])
        expect(await server.stop()).toBe(0)
      } finally {
        await own.stop()
      }
    }, 10 * MIN)
  }
})

describe("als serve --lazy: a layer whose DiffID is wrong", () => {
  test("served lazily from its (valid) TOC, but the background pull finds the DiffID wrong: the failure is logged, the layer is no longer served, the next lookup is ENOENT and nothing is committed", async () => {
    const good = toEstargz((await layerOf({ "etc/motd": "diffid test\n" })).tar)
    // the image config names another DiffID for it
    const wrong = { ...good, diffId: `sha256:${"1".repeat(64)}` }
    const dir = res.tempDir("lazy-diffid-img")
    const layout = join(dir, "layout")
    const img = writeImage(layout, { os: "linux", architecture: "amd64" }, [wrong], [{ [ESTARGZ_TOC_ANNOTATION]: good.tocDigest }])
    tagLayout(layout, "1", "application/vnd.oci.image.manifest.v1+json", img.manifestDigest, img.manifestSize)
    await pushLayout(layout, "1", `${registry.host}/lazy/diffid:1`)
    const ref = `${registry.host}/lazy/diffid:1`
    const root = res.tempDir("lazy-diffid-store")
    const mnt = res.tempDir("lazy-diffid-mnt")
    const server = await serve(root, mnt, ["--lazy-delay", "3", "--timeout", "30"])
    const motd = await fs.promises.readFile(join(mnt, b64(ref), good.digest, "diff", "etc", "motd"), "utf8").catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(await alsLog(root))}`)
    })
    expect(motd).toBe("diffid test\n")
    await waitFor("the failed background pull", async () =>
      eventsOf(await alsLog(root), "LazyReadFailed").some((e) => String(e.reason).includes("background pull")))
    const failed = eventsOf(await alsLog(root), "PullFailed")
    expect(failed.some((e) => e.layer === good.digest && JSON.stringify(e.reason).includes("DiffId"))).toBe(true)
    // a name the kernel has not cached: looked up again, and not here
    const again = await fs.promises.stat(join(mnt, b64(ref), good.tocDigest, "diff")).then(() => "found", (e: NodeJS.ErrnoException) => e.code)
    expect(again).toBe("ENOENT")
    expect(fs.existsSync(join(root, good.digest))).toBe(false)
    expect(await server.stop()).toBe(0)
  }, 10 * MIN)
})

describe("als serve --lazy: the background pull", () => {
  /** an eStargz image of one layer (etc/motd, 160 KB of random bytes in 32 KiB chunks, 200 KB of others), pushed; its blob's TOC model */
  const oneLayerImage = async (name: string) => {
    const hot = new Uint8Array(randomBytes(160_000))
    const l = toEstargz((await layerOf({ "etc/motd": `${name}\n`, "etc/hot.bin": hot, "usr/share/big.bin": new Uint8Array(Buffer.alloc(200_000, 3)) })).tar, 32 * 1024)
    const dir = res.tempDir("lazy-bg-img")
    const layout = join(dir, "layout")
    const img = writeImage(layout, { os: "linux", architecture: "amd64" }, [l], [{ [ESTARGZ_TOC_ANNOTATION]: l.tocDigest }])
    tagLayout(layout, "1", "application/vnd.oci.image.manifest.v1+json", img.manifestDigest, img.manifestSize)
    await pushLayout(layout, "1", `${registry.host}/lazy/${name}:1`)
    const file = join(dir, "blob")
    fs.writeFileSync(file, l.blob)
    const { model } = await fetchToc(fileRangeSource(file), l.size, { kind: "estargz", digest: l.tocDigest as never })
    return { layer: l, model, hot }
  }

  test("bytes kept for it that pass the chunk's check but are not the registry's (a flipped byte in a gzip member's trailer, which the chunk's check does not cover): the read is right, the blob's digest catches them at completion, the whole blob is fetched again, logged, and the committed layer is right", async () => {
    const { layer: l, model, hot } = await oneLayerImage("kept-wrong")
    const ref = `${proxy.host}/lazy/kept-wrong:1`
    // a file of several chunks: kept, they are one stretch long enough to be read back, not fetched again
    const c = (nodeAt(model, "etc/hot.bin") as TocFile).chunks[0]!
    const root = res.tempDir("lazy-kept-store")
    const mnt = res.tempDir("lazy-kept-mnt")
    const server = await serve(root, mnt, ["--lazy-delay", "3"])
    // the chunk's member ends with its CRC32 and length: flip a byte of the length
    await proxy.flipOnce(`/blobs/${l.digest}`, `bytes=${c.blobOffset}-`, c.blobEnd - c.blobOffset - 2, 1)
    expect(Buffer.from(await fs.promises.readFile(join(mnt, b64(ref), l.digest, "diff", "etc", "hot.bin"))).equals(Buffer.from(hot))).toBe(true)
    await proxy.clearFlips()
    expect((await proxy.requests()).some((r) => r.flipped && r.path.includes(l.digest))).toBe(true)
    await waitFor("the layer committed", () => fs.existsSync(join(root, l.digest, "blob")))
    const events = await alsLog(root)
    expect(eventsOf(events, "LazyReadFailed").some((e) => e.layer === l.digest && e.corrupt === true && String(e.reason).includes("fetched again"))).toBe(true)
    expect(eventsOf(events, "PullFailed").filter((e) => e.layer === l.digest)).toEqual([])
    expect(Buffer.from(fs.readFileSync(join(root, l.digest, "diff", "etc", "hot.bin"))).equals(Buffer.from(hot))).toBe(true)
    await alsOk(["audit", "--deep", "--root", root])
    expect(await server.stop()).toBe(0)
  }, 10 * MIN)

  test("serve stopped while a layer's background pull waits on a registry that hangs: it exits 0 promptly, the pull is logged interrupted, nothing is committed or left in staging", async () => {
    const own = await startCountingProxy(registry.url)
    try {
      const { layer: l } = await oneLayerImage("stop-during")
      const ref = `${own.host}/lazy/stop-during:1`
      const root = res.tempDir("lazy-stop-store")
      const mnt = res.tempDir("lazy-stop-mnt")
      const server = await serve(root, mnt, ["--lazy-delay", "2", "--timeout", "600"])
      await fs.promises.stat(join(mnt, b64(ref), l.digest, "diff"))
      await own.hang()
      await waitFor("the background pull started", async () =>
        eventsOf(await alsLog(root), "PullRequested").length > 0 && (await own.requests()).some((r) => r.status === 0 && r.path.includes(l.digest)))
      const t0 = Date.now()
      expect(await server.stop()).toBe(0)
      expect(Date.now() - t0).toBeLessThan(30_000)
      const failed = eventsOf(await alsLog(root), "PullFailed").filter((e) => e.layer === l.digest)
      expect(failed.map((e) => (e.reason as { code: string }).code)).toEqual(["interrupted"])
      expect(fs.existsSync(join(root, l.digest))).toBe(false)
      expect(fs.readdirSync(join(root, ".als", "staging"))).toEqual([])
    } finally {
      await own.stop()
    }
  }, 10 * MIN)
})

describe("als serve --lazy: eStargz", () => {
  test("an eStargz image (test/lib/estargz.ts) is served lazily: the diff equals a plain pull's, files read right, under its blob digest and its TOC digest", async () => {
    const base = await layerOf({ "etc/motd": "hello from estargz\n", "usr/share/big.bin": new Uint8Array(Buffer.alloc(300_000, 7)) }, { "etc/link": "motd" })
    const tool = await busyboxLayer()
    const layers = [toEstargz(tool.tar), toEstargz(base.tar, 32 * 1024)]
    const dir = res.tempDir("lazy-estargz-img")
    const layout = join(dir, "layout")
    const img = writeImage(layout, { os: "linux", architecture: "amd64" }, layers, layers.map((l) => ({ [ESTARGZ_TOC_ANNOTATION]: l.tocDigest })))
    tagLayout(layout, "1", "application/vnd.oci.image.manifest.v1+json", img.manifestDigest, img.manifestSize)
    await pushLayout(layout, "1", `${registry.host}/lazy/estargz:1`)
    const ref = `${proxy.host}/lazy/estargz:1`
    const plainRoot = res.tempDir("lazy-estargz-plain")
    await alsOk(["pull", "--root", plainRoot, "--tls-verify=false", ref])
    const root = res.tempDir("lazy-estargz-store")
    const mnt = res.tempDir("lazy-estargz-mnt")
    const server = await serve(root, mnt, ["--lazy-delay", "3600"])
    for (const l of layers) {
      const d = join(mnt, b64(ref), l.digest)
      await fs.promises.stat(join(d, "diff"))
      expect(JSON.parse(await fs.promises.readFile(join(d, "info"), "utf8"))).toMatchObject({ "toc-digest": l.tocDigest, "diff-digest": l.diffId, compression: 2 })
      expect({ layer: l.digest, diffs: await layerDiffs(join(plainRoot, l.digest, "diff"), join(d, "diff")) }).toEqual({ layer: l.digest, diffs: [] })
    }
    // the same layer under its TOC digest
    expect(await fs.promises.readFile(join(mnt, b64(ref), layers[1]!.tocDigest, "diff", "etc", "motd"), "utf8")).toBe("hello from estargz\n")
    expect(eventsOf(await alsLog(root), "LayerServedLazily").map((e) => [e.layer, e.format]).sort())
      .toEqual(layers.map((l) => [l.digest, "estargz"]).sort())
    expect(await server.stop()).toBe(0)
  }, 10 * MIN)
})
