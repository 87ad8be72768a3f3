// Issue 2: `als lookup DIGEST` finds a layer in a pool (another ALS store, or the seed's
// `<root>/.pool/<b64 k=v>/…/rootfs.<digest>` layout) and links it: the layer dir's `diff` is a
// symlink into the pool, `info` is right, `blob` is there; real podman 4.3.1 then takes every
// layer from the store ("Skipping blob") and mounts the same tree as a plain pull.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, lstatSync, mkdirSync, readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { als, alsLog, alsOk, describeResult, eventsOf, type AlsLogEvent } from "../lib/als.ts"
import { buildFeatureImage, push, type FeatureImage, type PushedImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { runOk } from "../lib/sh.ts"
import { alsPull, b64, expectAllSkipped, expectCompleteLayer, lstatOrUndefined, MIN, resolvesInto, Resources, sha256Hex, stagingEntries } from "./support.ts"

let registry: RegistryHandle
let feature: FeatureImage
let pushed: PushedImage
/** The pool: a complete ALS store made by `als pull`. */
let pool: string
/** podman's own pull of the image, mounted: the tree every store-backed mount must equal. */
let plainTree: string
const res = new Resources()

beforeAll(async () => {
  registry = await startRegistry()
  feature = await buildFeatureImage()
  pushed = await push(feature, registry.host, "e2e/lookup", "1")
  pool = res.tempDir("pool")
  await alsPull(pool, pushed.ref)
  for (const l of pushed.layers) expectCompleteLayer(join(pool, l.digest), l.digest, l.diffId, l.size)
  const plain = await res.podman4()
  await plain.pull(pushed.ref)
  plainTree = await plain.imageMount(pushed.ref)
}, 10 * MIN)

afterAll(async () => {
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

/** `als lookup` on `root`, made a store first (`als init`): lookup refuses a directory that is not one. */
const lookup = async (digest: string, root: string, extra: ReadonlyArray<string> = []) => {
  if (!existsSync(join(root, ".als"))) await alsOk(["init", "--root", root])
  return als(["lookup", digest, "--root", root, ...extra])
}

/** Events of the workflow that ran last (one `als lookup` is one workflow). */
const lastWorkflow = (log: ReadonlyArray<AlsLogEvent>): AlsLogEvent[] => {
  const last = log[log.length - 1]
  expect(last).toBeDefined()
  return log.filter((e) => e.workflow === last!.workflow)
}

/** A linked layer in `root`: complete, diff a symlink into `into`, indexed under the ref view. */
const expectLinked = (root: string, digest: string, into: string) => {
  const l = pushed.layers.find((x) => x.digest === digest)!
  const dir = join(root, digest)
  expect(lstatSync(dir).isDirectory()).toBe(true)
  expectCompleteLayer(dir, l.digest, l.diffId, l.size)
  const diff = join(dir, "diff")
  expect({ digest, diffIsSymlink: lstatSync(diff).isSymbolicLink(), intoPool: resolvesInto(diff, into) }).toEqual({
    digest,
    diffIsSymlink: true,
    intoPool: true,
  })
  expect(existsSync(join(root, b64(pushed.ref), digest, "diff"))).toBe(true)
}

/** podman 4 through `root`: every blob skipped, and the mount is the plain pull's tree. */
const expectPodmanUsesStore = async (root: string) => {
  const p = await res.podman4()
  expectAllSkipped(await p.pull(pushed.ref, { als: { root } }), pushed.layers.map((l) => l.digest), `podman 4 through ${root}`)
  expect(await compareTrees(plainTree, await p.imageMount(pushed.ref))).toEqual([])
}

/** README: one path element per annotation, b64("k=v") with `/` written `_`, ordered by key (byte order). */
const seedPath = (root: string, digest: string, ref: string, annotations: Record<string, string>) => {
  const all: Record<string, string> = {
    ...annotations,
    "containers/image/target.layerdigest": digest,
    "containers/image/target.reference": ref,
  }
  const keys = Object.keys(all).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  return join(root, ".pool", ...keys.map((k) => b64(`${k}=${all[k]}`).replaceAll("/", "_")), `rootfs.${digest}`)
}

describe("als lookup with a pool", () => {
  test("--pool OTHER_STORE: every layer is linked (exit 0, prints the path); podman 4 skips every blob; same tree", async () => {
    const root = res.tempDir("root")
    for (const l of pushed.layers) {
      const r = await lookup(l.digest, root, ["--ref", pushed.ref, "--pool", pool])
      expect({ exit: r.exitCode, out: r.stdout.trim() }, describeResult(r)).toEqual({ exit: 0, out: join(root, l.digest) })
      expect(r.stderr).toContain("linked from")
      expectLinked(root, l.digest, pool)
      // The blob is the pool's (a link, nothing copied).
      expect(resolvesInto(join(root, l.digest, "blob"), pool)).toBe(true)
    }
    expect(stagingEntries(root)).toEqual([])

    // The log of one linked layer: requested → probed (hit) → linked → committed as a link.
    const log = await alsLog(root)
    const first = pushed.layers[0]!.digest
    const wf = log.filter((e) => e.type === "LookupRequested" && e.layer === first)[0]!.workflow
    const events = log.filter((e) => e.workflow === wf)
    const types = events.map((e) => e.type)
    expect(events[0]).toMatchObject({ type: "LookupRequested", layer: first, ref: pushed.ref })
    const probes = eventsOf(events, "PoolProbed")
    expect(probes.find((e) => e.hit === true)).toMatchObject({ layer: first, pool, kind: "store", hit: true, path: join(pool, first) })
    expect(eventsOf(events, "LayerLinked")).toEqual([expect.objectContaining({ layer: first, pool, poolPath: join(pool, first) })])
    expect(eventsOf(events, "LayerCommitted")).toEqual([expect.objectContaining({ layer: first, source: "link", pool, diffId: pushed.layers[0]!.diffId })])
    expect(types.indexOf("LookupRequested")).toBeLessThan(types.lastIndexOf("PoolProbed"))
    expect(types.lastIndexOf("PoolProbed")).toBeLessThan(types.indexOf("LayerLinked"))
    expect(types.indexOf("LayerLinked")).toBeLessThan(types.indexOf("LayerCommitted"))
    expect(eventsOf(events, "BlobFetched", "LayerExtracted")).toEqual([])

    // Asked again, the layer is simply found.
    const again = await lookup(first, root, ["--ref", pushed.ref, "--pool", pool])
    expect({ exit: again.exitCode, out: again.stdout.trim() }).toEqual({ exit: 0, out: join(root, first) })
    // the :ref view already names it: nothing to index, nothing more to log (one append)
    expect(lastWorkflow(await alsLog(root)).map((e) => e.type)).toEqual(["LookupRequested", "LayerFound"])
    // under a ref that does not name it yet, the view is made and RefIndexed logged
    const other = `${pushed.ref}-other`
    const third = await lookup(first, root, ["--ref", other])
    expect(third.exitCode, describeResult(third)).toBe(0)
    expect(lastWorkflow(await alsLog(root)).map((e) => e.type)).toEqual(["LookupRequested", "LayerFound", "RefIndexed"])
    expect(existsSync(join(root, b64(other), first, "diff"))).toBe(true)

    await expectPodmanUsesStore(root)
  }, 5 * MIN)

  test("a digest that is nowhere: exit 1, says so, creates nothing", async () => {
    const root = res.tempDir("missing")
    const digest = `sha256:${sha256Hex("a layer no pool has")}`
    const r = await lookup(digest, root, ["--ref", pushed.ref, "--pool", pool])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout.trim()).toBe("")
    expect(r.stderr).toContain(digest)
    expect(r.stderr).toMatch(/not in the store nor in any pool/)
    expect(lstatOrUndefined(join(root, digest))).toBeUndefined()
    expect(stagingEntries(root)).toEqual([])
    const events = lastWorkflow(await alsLog(root))
    expect(events.map((e) => e.type)).toContain("LayerMissing")
    expect(eventsOf(events, "PoolProbed").every((e) => e.hit === false)).toBe(true)
  }, 2 * MIN)

  test("the seed's layout <root>/.pool/<b64 k=v>/…/rootfs.<digest> holding an ALS layer dir: found and linked", async () => {
    const root = res.tempDir("seed")
    // Two annotations that sort before and after the two added ones; "???" makes base64 hold a `/`.
    const annotations = { "org.example.zeta": "last", "com.example/alpha": "???" }
    expect(b64("com.example/alpha=???")).toContain("/")
    for (const l of pushed.layers) {
      const at = seedPath(root, l.digest, pushed.ref, annotations)
      mkdirSync(dirname(at), { recursive: true })
      await runOk(["cp", "-a", join(pool, l.digest), at])
      const r = await lookup(l.digest, root, [
        "--ref",
        pushed.ref,
        "--annotation",
        "org.example.zeta=last",
        "--annotation",
        "com.example/alpha=???",
      ])
      expect({ exit: r.exitCode, out: r.stdout.trim() }, describeResult(r)).toEqual({ exit: 0, out: join(root, l.digest) })
      expectLinked(root, l.digest, at)
      const probe = eventsOf(lastWorkflow(await alsLog(root)), "PoolProbed")
      expect(probe).toEqual([expect.objectContaining({ kind: "seed", hit: true, path: at, pool: join(root, ".pool") })])
    }
    // The first path element is the `com.example/alpha` one (byte order), with `/` written `_`.
    const first = readdirSync(join(root, ".pool"))
    expect(first).toEqual([b64("com.example/alpha=???").replaceAll("/", "_")])
    expect(stagingEntries(root)).toEqual([])
    await expectPodmanUsesStore(root)
  }, 5 * MIN)

  test("a pool showing only the tree (no blob, no info) is refused: exit 1 with the reason, nothing linked", async () => {
    const root = res.tempDir("treeonly")
    const l = pushed.layers[1]!
    // The seed's original form: rootfs.<digest> is the layer's tree itself.
    const at = seedPath(root, l.digest, pushed.ref, {})
    mkdirSync(dirname(at), { recursive: true })
    await runOk(["cp", "-a", join(pool, l.digest, "diff"), at])
    const r = await lookup(l.digest, root, ["--ref", pushed.ref])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stderr).toContain(l.digest)
    expect(r.stderr).toMatch(/(no|without|lacks?|missing)\b.*\b(info|blob|DiffID)/i)
    expect(lstatOrUndefined(join(root, l.digest))).toBeUndefined()
    expect(lstatOrUndefined(join(root, b64(pushed.ref), l.digest))).toBeUndefined()
    const events = lastWorkflow(await alsLog(root))
    expect(eventsOf(events, "PoolProbed")).toEqual([expect.objectContaining({ kind: "seed", hit: true, path: at })])
    const refused = eventsOf(events, "LinkRefused")
    expect(refused.length).toBe(1)
    expect(String(refused[0]!.reason)).toMatch(/info|blob/i)
    expect(eventsOf(events, "LayerLinked", "LayerCommitted")).toEqual([])
    expect(events.map((e) => e.type)).toContain("LayerMissing")

    // The same as another store: a layer dir with diff/ only.
    const bare = res.tempDir("bare-store")
    mkdirSync(join(bare, l.digest))
    await runOk(["cp", "-a", join(pool, l.digest, "diff"), join(bare, l.digest, "diff")])
    const s = await lookup(l.digest, root, ["--ref", pushed.ref, "--pool", bare])
    expect(s.exitCode, describeResult(s)).toBe(1)
    expect(s.stderr).toContain(bare)
    expect(s.stderr).toMatch(/(no|without|lacks?|missing)\b.*\b(info|blob|DiffID)/i)
    expect(lstatOrUndefined(join(root, l.digest))).toBeUndefined()
    expect(stagingEntries(root)).toEqual([])
  }, 2 * MIN)
})
