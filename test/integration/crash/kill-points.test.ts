// Issue 5: `als pull` killed (SIGKILL) at chosen points — mid-download, mid-extraction, between
// extraction and commit — leaves no partial layer visible, a log `als log` reads, and staging
// that the next pull cleans; the next pull completes, reuses the layers committed before the
// kill (LayerFound, no BlobFetched) and podman 4.3.1 then skips every blob. A pull paused
// (SIGSTOP) mid-download keeps its staging while another pull runs, and finishes after SIGCONT.
//
// A fault proxy in front of the real docker-registry throttles blob bodies, so that each kill
// point is reached by polling the store, not by guessing a delay. `--jobs 1` pulls the layers
// in manifest order: small, many files, 2 MiB of random data.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { als, describeResult, eventsOf } from "../../lib/als.ts"
import { startFaultProxy, type FaultProxy } from "../../lib/faultProxy.ts"
import { createPodman, type Podman } from "../../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import {
  expectConsistentStore,
  expectRecoveryAfterKill,
  gzipLayer,
  inspectStore,
  kill9,
  layerMap,
  Leftovers,
  manyFilesLayer,
  MIN,
  pollFor,
  pushTestImage,
  randomLayer,
  readLog,
  refOf,
  spawnAls,
  stagingDir,
  stagingEntries,
  treeStats,
  type TestImage,
} from "./support.ts"

let registry: RegistryHandle
let proxy: FaultProxy
let app: TestImage
let other: TestImage
const left = new Leftovers()
const podmans: Podman[] = []

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startFaultProxy(registry.url)
  app = await pushTestImage(registry.url, "crash/app", "1", [
    gzipLayer([{ name: "etc/small", content: "a small first layer\n" }]),
    manyFilesLayer("many", 3000),
    randomLayer("big.bin", 2 << 20),
  ])
  other = await pushTestImage(registry.url, "crash/other", "1", [
    gzipLayer([{ name: "etc/other", content: "another image\n" }]),
    randomLayer("other.bin", 64 << 10),
  ])
}, 2 * MIN)

afterAll(async () => {
  for (const p of podmans) await p.cleanup().catch(() => undefined)
  await left.cleanup()
  await proxy?.stop()
  await registry?.stop()
}, 2 * MIN)

const [SMALL, MANY, BIG] = [0, 1, 2].map((i) => () => app.layers[i]!.digest)
const stagingPrefix = (digest: string) => digest.replace(":", "-")

/** Blob bodies of `img` at `bytesPerSecond` (manifest and config at full speed). */
const throttle = (img: TestImage, bytesPerSecond: number) =>
  proxy.setRules([{ path: new RegExp(`/blobs/(${img.layers.map((l) => l.digest).join("|")})$`), fault: { kind: "throttle", bytesPerSecond } }])

const startPull = (root: string, img: TestImage) =>
  spawnAls(["pull", "--root", root, "--tls-verify=false", "--jobs", "1", refOf(proxy.host, img)], left)

/** The staging entry (a dir) of `digest`'s pull, if there is one now. */
const stagingOf = (root: string, digest: string): string | undefined => {
  for (const n of stagingEntries(root)) {
    const p = join(stagingDir(root), n)
    try {
      if (n.startsWith(`${stagingPrefix(digest)}.`) && statSync(p).isDirectory()) return p
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

const blobBytes = (staged: string) => {
  try {
    return statSync(join(staged, "blob")).size
  } catch {
    return 0
  }
}

/** Recovery as in support.ts, through the proxy at full speed. */
const expectRecovery = (root: string, img: TestImage, what: string) => {
  proxy.setRules([])
  return expectRecoveryAfterKill(root, refOf(proxy.host, img), img, what)
}

describe("als pull killed with SIGKILL, then pulled again", () => {
  test("mid-download: the layers committed before stay and are found; podman 4.3.1 skips every blob", async () => {
    const root = left.tempDir("kill-download")
    throttle(app, 512 << 10)
    const pull = await startPull(root, app)
    const staged = await pollFor("the big layer's blob to be part-downloaded", () => {
      const s = stagingOf(root, BIG())
      return s !== undefined && blobBytes(s) > 256 << 10 ? s : undefined
    })
    const killed = await kill9(pull)
    expect(killed.exitCode).not.toBe(0)
    const blob = statSync(join(staged, "blob")).size
    expect(blob).toBeGreaterThan(256 << 10)
    expect(blob).toBeLessThan(app.layers[2]!.size)
    expect(existsSync(staged)).toBe(true) // the dead process's staging, until the next pull

    const before = await expectRecovery(root, app, "killed mid-download")
    expect(before.committed).toEqual([SMALL(), MANY()].sort())
    expect(existsSync(staged)).toBe(false)

    const p = await createPodman()
    podmans.push(p)
    const r = await p.pull(refOf(proxy.host, app), { als: { root } })
    expect({ skipped: [...r.skipped].sort(), copied: r.copied }).toEqual({ skipped: app.layers.map((l) => l.digest).sort(), copied: [] })
  }, 3 * MIN)

  test("mid-extraction: the half-written tree never shows, the next pull extracts it whole", async () => {
    const root = left.tempDir("kill-extract")
    throttle(app, 256 << 10)
    const pull = await startPull(root, app)
    const staged = await pollFor("the many-files layer to be part-extracted", () => {
      const s = stagingOf(root, MANY())
      return s !== undefined && treeStats(join(s, "diff")).files > 300 ? s : undefined
    })
    await kill9(pull)
    const files = treeStats(join(staged, "diff")).files
    expect(files).toBeGreaterThan(300)
    expect(files).toBeLessThan(app.layers[1]!.files)
    expect(existsSync(join(root, MANY()))).toBe(false)
    const before = await expectRecovery(root, app, "killed mid-extraction")
    expect(before.committed).toEqual([SMALL()])
    // the layer is whole now: every entry of the tar is in its diff
    expect(treeStats(join(root, MANY(), "diff")).files).toBe(app.layers[1]!.files)
  }, 3 * MIN)

  test("between extraction and commit (info written, not yet renamed): nothing half-committed", async () => {
    // The window is the commit's syncfs and rename: poll hard for a staging entry with `info`.
    let hits = 0
    const tries: string[] = []
    for (let attempt = 0; attempt < 6 && hits < 2; attempt++) {
      const root = left.tempDir("kill-commit")
      throttle(app, 4 << 20)
      const pull = await startPull(root, app)
      let seen: string | undefined
      try {
        seen = await pollFor("a staging entry with info", () => {
          for (const n of stagingEntries(root)) if (existsSync(join(stagingDir(root), n, "info"))) return n
          return pull.proc.exitCode !== null ? "" : undefined
        }, 60_000, 0)
      } finally {
        pull.proc.kill("SIGKILL")
        await pull.done
      }
      const digest = seen ? `sha256:${seen.split(".")[0]!.slice("sha256-".length)}` : ""
      const hit = seen !== "" && existsSync(join(stagingDir(root), seen!)) && !existsSync(join(root, digest))
      if (hit) hits++
      tries.push(`${seen || "(pull ended first)"}: ${hit ? "killed before the rename" : "missed"}`)
      await expectRecovery(root, app, `attempt ${attempt}: killed at commit of ${seen}`)
    }
    console.log(`between extraction and commit:\n  ${tries.join("\n  ")}`)
    expect({ hits: hits > 0, tries }).toEqual({ hits: true, tries })
  }, 5 * MIN)
})

describe("staging of a live process", () => {
  test("a pull paused mid-download keeps its staging while another pull runs, then finishes", async () => {
    const root = left.tempDir("live")
    throttle(app, 256 << 10)
    const a = await startPull(root, app)
    const staged = await pollFor("the paused pull's big blob to be part-downloaded", () => {
      const s = stagingOf(root, BIG())
      return s !== undefined && blobBytes(s) > 64 << 10 ? s : undefined
    })
    a.proc.kill("SIGSTOP")
    try {
      const entries = readdirSync(stagingDir(root)).sort()
      proxy.setRules([])
      const b = await als(["pull", "--root", root, "--tls-verify=false", refOf(proxy.host, other)])
      if (b.exitCode !== 0) throw new Error(`the second pull failed:\n${describeResult(b)}`)
      // the second pull cleaned staging, but not what a live process is working on
      expect(readdirSync(stagingDir(root)).sort()).toEqual(entries)
      expect(existsSync(join(staged, "blob"))).toBe(true)
      const state = inspectStore(root, layerMap(app, other))
      expect(state.problems).toEqual([])
      expect(state.committed).toEqual([SMALL(), MANY(), ...other.layers.map((l) => l.digest)].sort())
    } finally {
      a.proc.kill("SIGCONT")
    }
    const r = await a.done
    if (r.exitCode !== 0) throw new Error(`the paused pull failed after SIGCONT:\n${describeResult(r)}`)
    expect(stagingEntries(root)).toEqual([])
    const state = await expectConsistentStore(root, layerMap(app, other), "after both pulls")
    expect(state.committed).toEqual([...app.layers, ...other.layers].map((l) => l.digest).sort())
    const log = await readLog(root)
    expect(eventsOf(log, "PullCompleted").length).toBe(2)
    expect(eventsOf(log, "PullFailed")).toEqual([])
  }, 3 * MIN)
})
