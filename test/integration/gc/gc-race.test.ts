// gc during a slow pull, with the real binary: the pull commits its small layers at once and
// names them by its ref only when its last (throttled) layer is in. Meanwhile `als gc` runs
// again and again. Each layer the pull committed is pinned (store/Pins.ts), so gc keeps it;
// afterwards every layer is there, `als audit` is clean, and podman takes every layer from the
// store. Without the pin, gc removes the committed layers and the ref points at nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { als, alsOk, describeResult, type AlsResult } from "../../lib/als.ts"
import { blobPath, type FaultProxy, startFaultProxy } from "../../lib/faultProxy.ts"
import { buildLayer, type BuiltLayer, pushLayout, type RegistryHandle, startRegistry, writeOciImage } from "../../lib/registry.ts"
import { MIN, Resources } from "../../e2e/support.ts"
import { randomBytes } from "node:crypto"

const ITERATIONS = 5
/** the last layer's size and rate: about 6 s of download, the window gc works in */
const BIG = 600_000
const RATE = 100_000

const res = new Resources()
let registry: RegistryHandle
let proxy: FaultProxy
let layers: ReadonlyArray<BuiltLayer>
const repo = "gc/race"

beforeAll(async () => {
  registry = await startRegistry()
  const small = await Promise.all([0, 1, 2].map((i) => buildLayer({ [`small/${i}.txt`]: `layer ${i}\n`.repeat(100 + i) })))
  // random bytes: gzip cannot shrink them, so the throttled blob really takes its time
  const big = await buildLayer({ "big/blob.bin": new Uint8Array(randomBytes(BIG)) })
  layers = [...small, big]
  const layout = res.tempDir("gc-race-layout")
  writeOciImage(layout, "1", { os: "linux", architecture: "amd64" }, layers)
  await pushLayout(layout, "1", `${registry.host}/${repo}:1`)
  proxy = await startFaultProxy(registry.url)
}, 2 * MIN)

afterAll(async () => {
  await proxy?.stop()
  await res.cleanup()
  await registry?.stop()
})

const layerDirs = (root: string) => readdirSync(root).filter((n) => /^sha256:[a-f0-9]{64}$/.test(n))

interface GcRun {
  readonly remove: ReadonlyArray<{ digest: string }>
  readonly keptPinned: ReadonlyArray<string>
}

describe("gc during a slow pull", () => {
  test(`keeps every layer the pull committed but has not yet named (${ITERATIONS} rounds); podman then skips every layer`, async () => {
    const podman = await res.podman4()
    const graphroot = res.tempDir("gc-race-graphroot")
    mkdirSync(join(graphroot, "overlay"))
    const ref = `${proxy.host}/${repo}:1`
    const small = layers.slice(0, 3).map((l) => l.digest)
    const big = layers[3]!.digest

    for (let round = 0; round < ITERATIONS; round++) {
      const root = res.tempDir(`gc-race-${round}`)
      await alsOk(["init", "--root", root])
      proxy.setRules([{ path: blobPath(big), fault: { kind: "throttle", bytesPerSecond: RATE } }])

      let pullDone = false
      const pull = als(["pull", "--root", root, "--tls-verify=false", "--timeout", "300", ref], { timeoutMs: 5 * MIN })
        .finally(() => {
          pullDone = true
        })

      // wait (by polling the store, with a generous bound) until the small layers are committed
      const deadline = Date.now() + 2 * MIN
      while (!pullDone && small.some((d) => !layerDirs(root).includes(d)) && Date.now() < deadline) await Bun.sleep(20)
      if (pullDone) throw new Error(`the pull ended before its small layers were seen:\n${describeResult(await pull)}`)

      // gc again and again until the pull is done
      const runs: GcRun[] = []
      while (!pullDone) {
        const r: AlsResult = await als(["gc", "--root", root, "--graphroot", graphroot, "--json"])
        expect(r.exitCode, describeResult(r)).toBe(0)
        runs.push(JSON.parse(r.stdout) as GcRun)
      }
      const pulled = await pull
      expect(pulled.exitCode, describeResult(pulled)).toBe(0)

      // every layer is there, the pull's pin is gone, and the store is what the log says
      expect(layerDirs(root).sort()).toEqual([...small, big].sort())
      expect(readdirSync(join(root, ".als", "pins"))).toEqual([])
      // gc ran while the committed layers had no ref, saw them held, and removed none of them
      expect(runs.length).toBeGreaterThan(0)
      expect(runs.some((g) => small.every((d) => g.keptPinned.includes(d)))).toBe(true)
      expect(runs.flatMap((g) => g.remove.map((x) => x.digest))).toEqual([])

      const audit = await als(["audit", "--root", root])
      expect(audit.exitCode, describeResult(audit)).toBe(0)

      // now named by the ref, gc keeps them with no pin at all
      const after = JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot, "--json"])).stdout) as GcRun & { keptReferenced: number }
      expect(after.remove).toEqual([])
      expect(after.keptReferenced).toBe(4)

      // podman, looking the image up by the same name, takes every layer from the store
      proxy.setRules([])
      const p = await podman.pull(ref, { als: { root } })
      expect([...p.skipped].sort()).toEqual([...small, big].sort())
      expect(p.copied).toEqual([])
      await podman.removeImage(ref)
    }
  }, 20 * MIN)
})
