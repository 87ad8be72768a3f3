// als gc finds podman's graph root the way podman 4.3.1 does. Real podman, told nothing but
// CONTAINERS_STORAGE_CONF (a temp storage.conf whose graphroot is a temp dir and whose
// additionallayerstores lists the store), pulls an image through the store; `als gc` with the
// same environment and no --graphroot keeps the layers podman uses, and frees them after
// `podman rmi`. A --graphroot that does not exist, or a storage.conf podman would refuse, is a
// usage error (exit 2) that removes and creates nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, readdirSync, realpathSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { als, alsOk, describeResult } from "../../lib/als.ts"
import { CONTAINERS_CONF, parsePullLog, RUNC } from "../../lib/podman.ts"
import { pushLayout, type RegistryHandle, startRegistry } from "../../lib/registry.ts"
import { run, runOk, unmountUnder } from "../../lib/sh.ts"
import { alsPull, MIN, Resources } from "../../e2e/support.ts"

const fixture = resolve(import.meta.dir, "../../fixtures/hello")
const res = new Resources()
const podmanDirs: string[] = []
let registry: RegistryHandle
let ref: string

beforeAll(async () => {
  registry = await startRegistry()
  ref = `${registry.host}/gc/conf:1`
  await pushLayout(fixture, "latest", ref)
}, 2 * MIN)

afterAll(async () => {
  for (const d of podmanDirs) await unmountUnder(d)
  await res.cleanup()
  await registry?.stop()
})

const layerDirs = (root: string) => readdirSync(root).filter((n) => /^sha256:[a-f0-9]{64}$/.test(n)).sort()

/** podman configured only through files named in its environment, as a user would. */
const podmanWithConf = (storageConf: (graph: string, run: string) => string) => {
  const dir = res.tempDir("gc-conf-podman")
  podmanDirs.push(dir)
  const graph = join(dir, "graph")
  const runroot = join(dir, "run")
  const conf = join(dir, "storage.conf")
  writeFileSync(conf, storageConf(graph, runroot))
  writeFileSync(join(dir, "containers.conf"), CONTAINERS_CONF)
  writeFileSync(join(dir, "registries.conf"), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
  writeFileSync(join(dir, "auth.json"), '{"auths":{}}\n')
  const env = {
    CONTAINERS_STORAGE_CONF: conf,
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
    TMPDIR: dir,
  }
  const podman = (args: ReadonlyArray<string>) => runOk(["podman", "--runtime", RUNC, "--tmpdir", join(dir, "libpod-tmp"), ...args], { env, timeoutMs: 5 * MIN })
  return { dir, graph, conf, env, podman }
}

describe("als gc and podman's storage.conf", () => {
  test("podman configured by CONTAINERS_STORAGE_CONF alone: gc (same env, no --graphroot) keeps its layers, frees them after podman rmi", async () => {
    const root = res.tempDir("gc-conf-store")
    await alsPull(root, ref)
    const layers = layerDirs(root)
    expect(layers.length).toBe(2)

    const p = podmanWithConf((graph, runroot) =>
      `[storage]\ndriver = "overlay"\ngraphroot = "${graph}"\nrunroot = "${runroot}"\n\n[storage.options]\nadditionallayerstores = ["${root}:ref"]\n`
    )
    const pulled = await p.podman(["--log-level=debug", "pull", "--tls-verify=false", ref])
    const log = parsePullLog(`${pulled.stdout}\n${pulled.stderr}`)
    expect(log.skipped.sort()).toEqual(layers)
    expect(log.copied).toEqual([])
    // podman wrote its layers under the graph root the file names, and nowhere else
    expect(readdirSync(join(p.graph, "overlay")).length).toBeGreaterThan(0)

    await alsOk(["rm", "--root", root, ref])
    const gc = await alsOk(["gc", "--root", root, "--json"], { env: { CONTAINERS_STORAGE_CONF: p.conf } })
    const plan = JSON.parse(gc.stdout)
    expect(plan.graphroots).toEqual([{ path: realpathSync(p.graph), from: p.conf }])
    expect(plan.remove).toEqual([])
    expect([...plan.keptInUse].sort()).toEqual(layers)
    expect(layerDirs(root)).toEqual(layers)

    // the text output says where the graph root came from
    const dry = await alsOk(["gc", "--root", root, "--dry-run"], { env: { CONTAINERS_STORAGE_CONF: p.conf } })
    expect(dry.stdout).toContain(`podman graph root ${realpathSync(p.graph)} (${p.conf})`)

    await p.podman(["rmi", "--force", ref])
    const freed = JSON.parse((await alsOk(["gc", "--root", root, "--json"], { env: { CONTAINERS_STORAGE_CONF: p.conf } })).stdout)
    expect(freed.remove.map((r: { digest: string }) => r.digest).sort()).toEqual(layers)
    expect(layerDirs(root)).toEqual([])
  }, 5 * MIN)

  test("a --graphroot that does not exist is exit 2, before anything is removed or created", async () => {
    const root = res.tempDir("gc-conf-refuse")
    await alsPull(root, ref)
    await alsOk(["rm", "--root", root, ref])
    const layers = layerDirs(root)

    const missing = join(res.tempDir("gc-conf-nothing"), "no-such-graphroot")
    const r = await als(["gc", "--root", root, "--graphroot", missing])
    expect(r.exitCode, describeResult(r)).toBe(2)
    expect(r.stderr).toContain(`--graphroot ${missing}: no such directory`)
    expect(layerDirs(root)).toEqual(layers)

    const file = join(res.tempDir("gc-conf-file"), "plain-file")
    writeFileSync(file, "")
    const notDir = await als(["gc", "--root", root, "--graphroot", file])
    expect(notDir.exitCode, describeResult(notDir)).toBe(2)
    expect(layerDirs(root)).toEqual(layers)
    expect(existsSync(missing)).toBe(false)
  }, 3 * MIN)

  test("a storage.conf podman would refuse (missing, bad TOML, no runroot) is exit 2, naming the file; gc removes nothing", async () => {
    const root = res.tempDir("gc-conf-badconf")
    await alsPull(root, ref)
    await alsOk(["rm", "--root", root, ref])
    const layers = layerDirs(root)
    const d = res.tempDir("gc-conf-bad")
    const cases: Array<[string, string | undefined, string]> = [
      ["absent.conf", undefined, "does not exist"],
      ["syntax.conf", "[storage\ndriver = \"overlay\"\n", "TOML syntax, line 1"],
      ["noroot.conf", `[storage]\ndriver = "overlay"\ngraphroot = "${d}/g"\n`, "runroot must be set"],
      ["type.conf", `[storage]\ndriver = "overlay"\ngraphroot = ["${d}/g"]\nrunroot = "${d}/r"\n`, "graphroot must be a string"],
    ]
    for (const [name, text, says] of cases) {
      const conf = join(d, name)
      if (text !== undefined) writeFileSync(conf, text)
      const r = await als(["gc", "--root", root], { env: { CONTAINERS_STORAGE_CONF: conf } })
      expect(r.exitCode, describeResult(r)).toBe(2)
      expect(r.stderr).toContain(conf)
      expect(r.stderr).toContain(says)
      // podman agrees: it does not start with this file either
      const pod = await run(["podman", "--tmpdir", join(d, "t"), "info"], { env: { CONTAINERS_STORAGE_CONF: conf }, timeoutMs: MIN })
      expect(pod.exitCode).not.toBe(0)
    }
    expect(layerDirs(root)).toEqual(layers)
  }, 3 * MIN)
})
