// Issue 5: the narrow windows around the step that makes a layer visible.
// - LayerCommitted is logged once the layer is whole and durable in staging, before the rename
//   that shows it: a kill between the two leaves the log ahead of the store (a whole layer in a
//   dead process's staging, a LayerCommitted with no layer), never a layer the log cannot
//   explain. The next pull cleans that staging, commits the layer again, and the store and
//   its log agree (`als audit` clean).
// - Symlinks (TOC aliases, the :ref view) are made under a temporary name in staging and
//   renamed into place: a dead process's temporary link is cleaned like its staging.
// Both states are made by hand (they are exactly what such a kill leaves), and the first one
// is also aimed at by timing: kill as soon as the layer directory appears.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, readdirSync, symlinkSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { als, describeResult, eventsOf } from "../../lib/als.ts"
import { startFaultProxy, type FaultProxy } from "../../lib/faultProxy.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { run } from "../../lib/sh.ts"
import {
  auditIfAvailable,
  expectConsistentStore,
  gzipLayer,
  layerMap,
  Leftovers,
  MIN,
  pollFor,
  pushTestImage,
  randomLayer,
  readLog,
  refOf,
  spawnAls,
  type TestImage,
} from "./support.ts"

let registry: RegistryHandle
let proxy: FaultProxy
let img: TestImage
/** a store holding `img`, pulled normally */
let reference: string
const left = new Leftovers()

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startFaultProxy(registry.url)
  img = await pushTestImage(registry.url, "crash/window", "1", [
    gzipLayer([{ name: "etc/small", content: "small\n" }]),
    randomLayer("big.bin", 1 << 20),
  ])
  reference = left.tempDir("reference")
  const r = await als(["pull", "--root", reference, "--tls-verify=false", refOf(proxy.host, img)])
  if (r.exitCode !== 0) throw new Error(describeResult(r))
}, MIN)

afterAll(async () => {
  await left.cleanup()
  await proxy?.stop()
  await registry?.stop()
}, MIN)

const BIG = () => img.layers[1]!.digest
const pull = (root: string) => als(["pull", "--root", root, "--tls-verify=false", refOf(proxy.host, img)])

/** The pull that follows succeeds, and the store and the log agree (`als audit`, when built). */
const expectPullThenAudit = async (root: string, what: string) => {
  const r = await pull(root)
  if (r.exitCode !== 0) throw new Error(`${what}: ${describeResult(r)}`)
  await expectConsistentStore(root, layerMap(img), what)
  const audit = await auditIfAvailable(root)
  if (audit !== undefined) expect({ what, exit: audit.exitCode, out: audit.stdout }).toEqual({ what, exit: 0, out: audit.stdout })
  return r
}

/** A pid no process has (a child that has exited). */
const deadPid = async () => {
  const p = Bun.spawn(["true"])
  await p.exited
  return p.pid
}

describe("killed around the commit's rename", () => {
  test("(made by hand) logged but not yet renamed: the next pull commits it again and the log explains the store", async () => {
    const root = left.tempDir("announced")
    expect((await als(["init", "--root", root])).exitCode).toBe(0)
    // what the kill leaves: the layer whole in a dead process's staging, its LayerCommitted
    // logged (by a pull of the same image into a scratch store, whose log we take)
    const pid = await deadPid()
    const staged = join(root, ".als", "staging", `${BIG().replace(":", "-")}.${hostname()}.${pid}.k3j5h2g1`)
    expect((await run(["cp", "-a", join(reference, BIG()), staged])).exitCode).toBe(0)
    expect((await run(["cp", "-a", join(reference, ".als", "log"), join(root, ".als", "log")])).exitCode).toBe(0)
    for (const d of readdirSync(reference).filter((n) => n.startsWith("sha256:") && n !== BIG())) {
      expect((await run(["cp", "-a", join(reference, d), join(root, d)])).exitCode).toBe(0)
    }
    const before = eventsOf(await readLog(root), "LayerCommitted").filter((e) => e.layer === BIG()).length
    expect(before).toBe(1)
    const r = await expectPullThenAudit(root, "a layer logged as committed but not renamed into place")
    expect(r.exitCode).toBe(0)
    expect(readdirSync(join(root, ".als", "staging"))).toEqual([])
    const log = await readLog(root)
    expect(eventsOf(log, "LayerCommitted").filter((e) => e.layer === BIG()).length).toBe(2)
  }, MIN)

  test("(by timing) killed as soon as the layer directory appears: consistent, and explained after the next pull", async () => {
    const outcomes: string[] = []
    for (let attempt = 0; attempt < 4; attempt++) {
      const root = left.tempDir("window")
      proxy.setRules([{ path: new RegExp(`/blobs/${BIG()}$`), fault: { kind: "throttle", bytesPerSecond: 4 << 20 } }])
      const p = await spawnAls(["pull", "--root", root, "--tls-verify=false", "--jobs", "1", refOf(proxy.host, img)], left)
      try {
        await pollFor("the big layer's directory", () => (existsSync(join(root, BIG())) || p.proc.exitCode !== null ? true : undefined), 60_000, 0)
      } finally {
        p.proc.kill("SIGKILL")
        await p.done
        proxy.setRules([])
      }
      const log = await readLog(root)
      const logged = eventsOf(log, "LayerCommitted").some((e) => e.layer === BIG())
      const there = existsSync(join(root, BIG()))
      outcomes.push(there && !logged ? "killed between rename and LayerCommitted" : there ? "missed (already logged)" : "missed (before the rename)")
      await expectConsistentStore(root, layerMap(img), `attempt ${attempt}`)
      await expectPullThenAudit(root, `attempt ${attempt}: ${outcomes.at(-1)}`)
    }
    console.log(`kill at the commit's rename:\n  ${outcomes.join("\n  ")}`)
  }, 3 * MIN)
})

describe("killed while replacing a symlink", () => {
  test("(made by hand) a dead process's temporary symlink in staging is cleaned, and none is ever made in the root or a :ref view", async () => {
    const root = left.tempDir("tmplink")
    expect((await run(["cp", "-a", `${reference}/.`, root])).exitCode).toBe(0)
    const pid = await deadPid()
    const tmp = join(root, ".als", "staging", `link.${hostname()}.${pid}.k3j5h2g1.link`)
    symlinkSync(`../${BIG()}`, tmp)
    const r = await pull(root)
    if (r.exitCode !== 0) throw new Error(describeResult(r))
    expect(existsSync(tmp) || readdirSync(join(root, ".als", "staging")).length > 0).toBe(false)
    // only layer dirs, aliases, ref views and our own dirs in the root; only digests in views
    for (const n of readdirSync(root)) expect(n.includes(".tmp.")).toBe(false)
    const audit = await auditIfAvailable(root)
    if (audit !== undefined) expect({ exit: audit.exitCode, out: audit.stdout }).toEqual({ exit: 0, out: audit.stdout })
  }, MIN)
})
