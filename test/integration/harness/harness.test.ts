// The test harness against the real tools: images built with umoci, pushed with skopeo to a real
// docker-registry, pulled and mounted by real podman 4.3.1 (host) and 5.4.2 (Debian 13 chroot).
// Missing tools make these tests fail, never skip.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  blobPath,
  buildFeatureImage,
  buildLargeImage,
  buildManySmallFilesImage,
  buildMultiArchIndex,
  fileMatches,
  listLayerEntries,
  push,
  readLayoutManifest,
  referenceRootfs,
  type FeatureImage,
  type MultiArchImage,
} from "../../lib/images.ts"
import { compareTrees, createPodman, walkTree, type Podman } from "../../lib/podman.ts"
import { createPodman5, ensurePodman5, TOC_LOOKUP_LOG, type Podman5 } from "../../lib/podman5.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { run } from "../../lib/sh.ts"
import { writeFixtureStore } from "./fixtureStore.ts"

const MIN = 60_000
let registry: RegistryHandle
let feature: FeatureImage
const sessions: Array<Podman | Podman5> = []
const tmpDirs: string[] = []

const podman4 = async () => {
  const p = await createPodman()
  sessions.push(p)
  return p
}
const podman5 = async () => {
  const p = await createPodman5()
  sessions.push(p)
  return p
}
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `als-harness-${name}-`))
  tmpDirs.push(d)
  return d
}

beforeAll(async () => {
  registry = await startRegistry()
  feature = await buildFeatureImage()
}, 5 * MIN)

afterAll(async () => {
  for (const s of sessions) await s.cleanup()
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true })
  await registry?.stop()
}, 5 * MIN)

/** Assert every expectation of the feature image on a merged tree. */
const assertFeatureTree = async (root: string, img: FeatureImage) => {
  const e = img.expect
  for (const [p, f] of Object.entries(e.files)) {
    const st = lstatSync(join(root, p))
    expect({ p, file: st.isFile() }).toEqual({ p, file: true })
    expect({ p, mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid }).toEqual({
      p,
      mode: f.mode.toString(8),
      uid: f.uid,
      gid: f.gid,
    })
    expect(await fileMatches(join(root, p), f)).toBeNull()
    if (f.mtime !== undefined) expect({ p, mtime: Math.floor(st.mtimeMs / 1000) }).toEqual({ p, mtime: f.mtime })
    for (const [name, value] of Object.entries(f.xattrs ?? {})) {
      const r = await run(["getfattr", "--only-values", "-h", "-n", name, join(root, p)])
      expect({ p, name, value: r.stdout }).toEqual({ p, name, value })
    }
  }
  for (const [p, d] of Object.entries(e.dirs)) {
    const st = lstatSync(join(root, p))
    expect({ p, dir: st.isDirectory(), mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid }).toEqual({
      p,
      dir: true,
      mode: d.mode.toString(8),
      uid: d.uid,
      gid: d.gid,
    })
  }
  for (const [p, target] of Object.entries(e.symlinks)) expect({ p, target: readlinkSync(join(root, p)) }).toEqual({ p, target })
  for (const p of e.fifos) expect({ p, fifo: lstatSync(join(root, p)).isFIFO() }).toEqual({ p, fifo: true })
  for (const [p, dev] of Object.entries(e.charDevices)) {
    const st = lstatSync(join(root, p))
    expect({ p, char: st.isCharacterDevice(), major: st.rdev >> 8, minor: st.rdev & 0xff }).toEqual({ p, char: true, ...dev })
  }
  for (const group of e.hardlinks) {
    const inodes = new Set(group.map((p) => lstatSync(join(root, p)).ino))
    expect({ group, inodes: inodes.size }).toEqual({ group, inodes: 1 })
    expect(lstatSync(join(root, group[0]!)).nlink).toBeGreaterThanOrEqual(group.length)
  }
  for (const p of e.absent) {
    let exists = true
    try {
      lstatSync(join(root, p))
    } catch {
      exists = false
    }
    expect({ p, exists }).toEqual({ p, exists: false })
  }
  for (const [p, children] of Object.entries(e.opaqueDirs)) expect(readdirSync(join(root, p)).sort()).toEqual([...children].sort())
}

describe("images.ts", () => {
  test("the feature image has 4 layers, the third with whiteouts and an opaque dir", async () => {
    const m = readLayoutManifest(feature.layoutDir, feature.tag)
    expect(m.layers.length).toBe(4)
    expect(feature.layerCount).toBe(4)
    const l3 = await listLayerEntries(blobPath(feature.layoutDir, m.layers[2]!.digest))
    const names = l3.map((x) => x.name)
    expect(names).toContain("replaced/.wh..wh..opq")
    expect(names).toContain(".wh.removed-dir")
    expect(names).toContain("data/.wh.delete-me.txt")
    expect(l3.find((x) => x.name === "replaced/new1-link")?.type).toBe("link")
    expect(l3.find((x) => x.name === "data/pax-xattr")?.pax?.["SCHILY.xattr.user.pax"]).toBe("yes")
    const l2 = await listLayerEntries(blobPath(feature.layoutDir, m.layers[1]!.digest))
    const kinds = new Set(l2.map((x) => x.type))
    for (const k of ["symlink", "link", "fifo", "character-device", "file", "directory"]) expect(kinds).toContain(k)
    expect(l2.find((x) => x.name === "usr/bin/suid")?.mode).toBe(0o4755)
    expect(l2.find((x) => x.name === "home/user/file")).toMatchObject({ uid: 1000, gid: 1000 })
    expect(l2.find((x) => x.name === "data/xattr-file")?.pax?.["SCHILY.xattr.user.test"]).toBe("1")
  })

  test("the reference rootfs (umoci's unpack) meets the expectations", async () => {
    await assertFeatureTree(feature.rootfsDir, feature)
  })

  test("a second build comes from the cache", async () => {
    const t = performance.now()
    const again = await buildFeatureImage()
    expect(performance.now() - t).toBeLessThan(2000)
    expect(again.layoutDir).toBe(feature.layoutDir)
  })

  test("compareTrees reports changed, missing and extra entries", async () => {
    const a = tempDir("cmp-a")
    const b = tempDir("cmp-b")
    for (const d of [a, b]) await run(["cp", "-a", `${feature.rootfsDir}/.`, d])
    expect(await compareTrees(a, b)).toEqual([])
    await run(["chmod", "u-s", join(b, "usr/bin/suid")])
    await run(["chown", "7:7", join(b, "srv/group-file")])
    await run(["sh", "-c", `echo x >> ${join(b, "etc/os-release")}`])
    rmSync(join(b, "links/rel"))
    await run(["ln", "-s", "/elsewhere", join(b, "links/rel")])
    rmSync(join(b, "data/keep/kept.txt"))
    await run(["touch", join(b, "data/.wh.extra")])
    rmSync(join(b, "links/hl-b"))
    await run(["cp", join(b, "links/hl-a"), join(b, "links/hl-b")])
    await run(["setfattr", "-x", "user.test", join(b, "data/xattr-file")])
    const diffs = (await compareTrees(a, b, { mtime: false })).join("\n")
    expect(diffs).toContain("usr/bin/suid: mode 04755 != 0755")
    expect(diffs).toContain("srv/group-file: uid 0 != 7")
    expect(diffs).toContain("etc/os-release: sha256")
    expect(diffs).toContain("links/rel: target ../etc/hostname != /elsewhere")
    expect(diffs).toContain(`only in ${a}: data/keep/kept.txt`)
    expect(diffs).toContain(`only in ${b}: data/.wh.extra`)
    expect(diffs).toContain("unresolved whiteout")
    expect(diffs).toContain("links/hl-a: hardlinks")
    expect(diffs).toContain("data/xattr-file: xattrs")
  })
})

describe("podman 4.3.1 (host)", () => {
  test("pulls the feature image (gzip) and its mount matches the expectations and the reference tree", async () => {
    const pushed = await push(feature, registry.host, "harness/feature", "gz")
    expect(pushed.layers.length).toBe(4)
    expect(pushed.layers.every((l) => l.mediaType === "application/vnd.oci.image.layer.v1.tar+gzip")).toBe(true)
    expect(pushed.layers.every((l) => /^sha256:[0-9a-f]{64}$/.test(l.diffId))).toBe(true)
    const p = await podman4()
    const r = await p.pull(pushed.ref)
    expect(r.skipped).toEqual([])
    expect([...r.copied].sort()).toEqual(pushed.layers.map((l) => l.digest).sort())
    const merged = await p.imageMount(pushed.ref)
    await assertFeatureTree(merged, feature)
    expect(await compareTrees(feature.rootfsDir, merged)).toEqual([])
  }, 3 * MIN)

  test("pulls zstd and uncompressed variants to the same tree", async () => {
    for (const compress of ["zstd", "none"] as const) {
      const pushed = await push(feature, registry.host, `harness/feature-${compress}`, "1", { compress })
      const p = await podman4() // fresh: a store reuses local layers with the same DiffIDs
      const suffix = compress === "zstd" ? "+zstd" : ".tar"
      expect(pushed.layers.every((l) => l.mediaType.endsWith(suffix))).toBe(true)
      const r = await p.pull(pushed.ref)
      expect([...r.copied].sort()).toEqual(pushed.layers.map((l) => l.digest).sort())
      const merged = await p.imageMount(pushed.ref)
      expect({ compress, diffs: await compareTrees(feature.rootfsDir, merged) }).toEqual({ compress, diffs: [] })
    }
  }, 5 * MIN)

  test("pulls each platform of a multi-arch index", async () => {
    const multi: MultiArchImage = await buildMultiArchIndex()
    const pushed = await push(multi, registry.host, "harness/multi", "1")
    expect(pushed.mediaType).toBe("application/vnd.oci.image.index.v1+json")
    expect(pushed.manifests?.map((m) => m.platform?.architecture).sort()).toEqual(["amd64", "arm64"])
    const [amd, arm] = ["amd64", "arm64"].map((a) => pushed.manifests!.find((m) => m.platform?.architecture === a)!)
    expect(amd!.layers[0]!.digest).toBe(arm!.layers[0]!.digest) // shared base layer
    expect(amd!.layers[1]!.digest).not.toBe(arm!.layers[1]!.digest)
    for (const arch of ["amd64", "arm64"]) {
      const p = await podman4()
      const r = await p.pull(pushed.ref, { arch })
      const m = pushed.manifests!.find((x) => x.platform?.architecture === arch)!
      expect([...r.copied].sort()).toEqual(m.layers.map((l) => l.digest).sort())
      const merged = await p.imageMount(pushed.ref)
      expect(readFileSync(join(merged, "arch.txt"), "utf8")).toBe(`${arch}\n`)
    }
  }, 5 * MIN)

  test("the benchmark builders (small parameters) make images podman pulls to umoci's tree", async () => {
    const images = [
      await buildManySmallFilesImage({ files: 900, layers: 3, maxFileSize: 2048 }),
      await buildLargeImage([
        { sizeMiB: 3, kind: "random" },
        { sizeMiB: 3, kind: "text", files: 3 },
      ]),
    ]
    for (const [i, img] of images.entries()) {
      const pushed = await push(img, registry.host, `harness/bench-${i}`, "1")
      expect(pushed.layers.length).toBe(img.layerCount)
      const p = await podman4()
      await p.pull(pushed.ref)
      const merged = await p.imageMount(pushed.ref)
      const reference = await referenceRootfs(img)
      expect(await compareTrees(reference, merged)).toEqual([])
      expect((await walkTree(merged, { hash: false, xattrs: false })).size).toBe(img.paths)
    }
    // Layer 2 of the small-files image deletes files of layer 1 (whiteouts) and has hardlinks.
    const small = images[0]!
    const l2 = await listLayerEntries(blobPath(small.layoutDir, readLayoutManifest(small.layoutDir, small.tag).layers[1]!.digest))
    expect(l2.some((e) => e.name.includes(".wh."))).toBe(true)
    expect(l2.some((e) => e.type === "link")).toBe(true)
  }, 5 * MIN)

  test("the als option makes podman take layers from a store (Skipping blob … already present)", async () => {
    const pushed = await push(feature, registry.host, "harness/feature", "als")
    const first = await podman4()
    await first.pull(pushed.ref)
    const store = tempDir("store4")
    await writeFixtureStore({ storeRoot: store, graphRoot: first.graphRoot, registryUrl: registry.url, repo: "harness/feature", pushed, key: "digest" })
    const p = await podman4()
    const r = await p.pull(pushed.ref, { als: { root: store } })
    expect([...r.skipped].sort()).toEqual(pushed.layers.map((l) => l.digest).sort())
    expect(r.copied).toEqual([])
    expect(p.additionalLayers().length).toBe(4)
    expect(p.additionalLayers().every((l) => l.startsWith(store))).toBe(true)
    const merged = await p.imageMount(pushed.ref)
    expect(await compareTrees(feature.rootfsDir, merged)).toEqual([])
  }, 3 * MIN)

  test("pushes (skopeo and HTTP) and pulls with credentials on an htpasswd registry", async () => {
    const creds = { user: "harness", pass: "s3cret" }
    const authed = await startRegistry({ htpasswd: creds })
    try {
      const multi = await buildMultiArchIndex()
      await expect(push(multi, authed.host, "harness/denied", "1")).rejects.toThrow()
      const gz = await push(multi, authed.host, "harness/multi", "gz", { creds })
      const raw = await push(multi, authed.host, "harness/multi", "raw", { creds, compress: "none" })
      expect(raw.manifests?.[0]?.layers[0]?.mediaType).toBe("application/vnd.oci.image.layer.v1.tar")
      for (const pushed of [gz, raw]) {
        // A fresh store each time: the second image has the same DiffIDs and would be reused.
        const p = await podman4()
        await expect(p.pull(pushed.ref)).rejects.toThrow(/unauthorized|authentication required/i)
        const r = await p.pull(pushed.ref, { creds })
        expect(r.copied.length).toBeGreaterThan(0)
      }
    } finally {
      await authed.stop()
    }
  }, 3 * MIN)

  test("cleanup unmounts everything and deletes the session dir", async () => {
    const pushed = await push(feature, registry.host, "harness/feature", "gz")
    const p = await createPodman()
    await p.pull(pushed.ref)
    const merged = await p.imageMount(pushed.ref)
    const mounts = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(p.dir))
    expect(mounts().length).toBeGreaterThan(0)
    expect(readdirSync(merged).length).toBeGreaterThan(0)
    await p.cleanup()
    expect(mounts()).toEqual([])
    expect(() => lstatSync(p.dir)).toThrow()
  }, 3 * MIN)
})

describe("podman 5.4.2 (Debian 13 chroot)", () => {
  beforeAll(async () => {
    const info = await ensurePodman5()
    expect(info.version).toContain("podman version 5.")
  }, 20 * MIN)

  test("pulls a zstd:chunked image made by the chroot's skopeo; the mount matches", async () => {
    const pushed = await push(feature, registry.host, "harness/feature-chunked", "1", { compress: "zstd:chunked" })
    for (const l of pushed.layers) {
      expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd")
      expect(l.annotations["io.github.containers.zstd-chunked.manifest-checksum"]).toMatch(/^sha256:[0-9a-f]{64}$/)
    }
    const p = await podman5()
    const r = await p.pull(pushed.ref)
    expect(r.lookedUpByToc).toBe(false)
    expect([...r.copied].sort()).toEqual(pushed.layers.map((l) => l.digest).sort())
    const merged = await p.imageMount(pushed.ref)
    expect(merged.startsWith(p.dir)).toBe(true)
    await assertFeatureTree(merged, feature)
    expect(await compareTrees(feature.rootfsDir, merged)).toEqual([])
  }, 10 * MIN)

  test("the als option (bind-mounted into the chroot) serves layers by TOC digest", async () => {
    const pushed = await push(feature, registry.host, "harness/feature-chunked", "als", { compress: "zstd:chunked" })
    const first = await podman5()
    await first.pull(pushed.ref)
    const store = tempDir("store5")
    await writeFixtureStore({
      storeRoot: store,
      graphRoot: join(first.dir, "root"),
      registryUrl: registry.url,
      repo: "harness/feature-chunked",
      pushed,
      key: "toc",
    })
    const p = await podman5()
    const r = await p.pull(pushed.ref, { als: { root: store } })
    expect(r.stderr).toContain(TOC_LOOKUP_LOG)
    expect(r.lookedUpByToc).toBe(true)
    expect(r.partialPull).toBe(false)
    expect(r.copied).toEqual([])
    expect(p.additionalLayers().length).toBe(4)
    const merged = await p.imageMount(pushed.ref)
    expect(await compareTrees(feature.rootfsDir, merged)).toEqual([])
    await p.cleanup()
    // The store's bind mount into the chroot is gone with the session.
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(`${store} `)
  }, 10 * MIN)
})


