// Pins (src/store/Pins.ts): what counts, what does not, and that a pull leaves none behind.
// A pin of a dead process on this host protects nothing and is cleaned; another host's pin
// counts until it is a day old; names that are not pins are ignored. A pull that fails, or is
// interrupted, leaves no pin that would keep its layers from gc.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { type Digest } from "../../../src/domain/Digest.ts"
import { acquirePin, livePinsOf, OTHER_HOST_PIN_MAX_AGE_MS, parsePinName, pinnedDigests, pinsDir } from "../../../src/store/Pins.ts"
import { als, alsCommand, alsOk, describeResult } from "../../lib/als.ts"
import { blobPath, type FaultProxy, startFaultProxy } from "../../lib/faultProxy.ts"
import { buildLayer, type BuiltLayer, pushLayout, type RegistryHandle, startRegistry, writeOciImage } from "../../lib/registry.ts"
import { MIN, Resources } from "../../e2e/support.ts"
import { randomBytes } from "node:crypto"

const res = new Resources()
const A = `sha256:${"a".repeat(64)}` as Digest
const B = `sha256:${"b".repeat(64)}` as Digest

/** a pid that was alive a moment ago and is not now */
const deadPid = async (): Promise<number> => {
  const p = Bun.spawn(["true"])
  await p.exited
  return p.pid
}

const pin = (alsDir: string, name: string, digests: ReadonlyArray<Digest>) => {
  const dir = join(pinsDir(alsDir), name)
  mkdirSync(dir, { recursive: true })
  for (const d of digests) writeFileSync(join(dir, d.replace(":", "-")), "")
  return dir
}

describe("which pins count", () => {
  test("names: host.pid.random, hosts may hold dots", () => {
    expect(parsePinName("node1.example.org.1234.abc123de")).toEqual({ host: "node1.example.org", pid: 1234 })
    for (const bad of ["", "x", "host.0.abcdef12", "host.12.ABC", "host..abcdef12", "host.12", ".12.abcdef12", "../x.12.abcdef12/.."]) {
      expect(parsePinName(bad)).toBeUndefined()
    }
  })

  test("a live pin counts; a dead process's pin on this host is ignored and removed; another host's counts until a day old", async () => {
    const alsDir = join(res.tempDir("pins-count"), ".als")
    const live = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const p = yield* acquirePin(alsDir)
      yield* p.add(A)
      return { dir: p.dir, pins: yield* livePinsOf(alsDir, A), none: yield* livePinsOf(alsDir, B) }
    })))
    expect(live.pins.map((p) => p.pid)).toEqual([process.pid])
    expect(live.none).toEqual([])
    // the scope closed: the pin is gone
    expect(existsSync(live.dir)).toBe(false)

    const dead = pin(alsDir, `${hostname()}.${await deadPid()}.deadbeef`, [A])
    const fresh = pin(alsDir, `other-host.example.1234.cafe1234`, [B])
    const old = pin(alsDir, `other-host.example.99.f00d1234`, [A])
    const longAgo = (Date.now() - OTHER_HOST_PIN_MAX_AGE_MS - 3600_000) / 1000
    utimesSync(old, longAgo, longAgo)
    pin(alsDir, "not-a-pin", [A])
    writeFileSync(join(pinsDir(alsDir), `${hostname()}.${process.pid}.plainfile`), "")

    expect(await Effect.runPromise(livePinsOf(alsDir, A))).toEqual([])
    expect(existsSync(dead)).toBe(false)
    // another host's pins are not ours to delete, however old
    expect(existsSync(old)).toBe(true)
    expect((await Effect.runPromise(livePinsOf(alsDir, B))).map((p) => p.name)).toEqual([`other-host.example.1234.cafe1234`])
    expect([...(await Effect.runPromise(pinnedDigests(alsDir)))]).toEqual([B])
    expect(existsSync(fresh)).toBe(true)
  })

  test("the pin directory and files have fixed modes whatever the umask", async () => {
    const alsDir = join(res.tempDir("pins-mode"), ".als")
    const old = process.umask(0o277)
    try {
      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const p = yield* acquirePin(alsDir)
        yield* p.add(A)
        const { statSync } = yield* Effect.promise(() => import("node:fs"))
        expect(statSync(pinsDir(alsDir)).mode & 0o777).toBe(0o700)
        expect(statSync(p.dir).mode & 0o777).toBe(0o700)
        expect(statSync(join(p.dir, A.replace(":", "-"))).mode & 0o777).toBe(0o600)
      })))
    } finally {
      process.umask(old)
    }
  })
})

describe("gc and pins, with the real binary", () => {
  let registry: RegistryHandle
  let proxy: FaultProxy
  let layers: ReadonlyArray<BuiltLayer>
  const ref = () => `${proxy.host}/pins/img:1`

  beforeAll(async () => {
    registry = await startRegistry()
    const small = await Promise.all([0, 1].map((i) => buildLayer({ [`p/${i}`]: `pin ${i}\n`.repeat(50) })))
    const big = await buildLayer({ "big.bin": new Uint8Array(randomBytes(600_000)) })
    layers = [...small, big]
    const layout = res.tempDir("pins-layout")
    writeOciImage(layout, "1", { os: "linux", architecture: "amd64" }, layers)
    await pushLayout(layout, "1", `${registry.host}/pins/img:1`)
    proxy = await startFaultProxy(registry.url)
  }, 2 * MIN)

  afterAll(async () => {
    await proxy?.stop()
    await res.cleanup()
    await registry?.stop()
  })

  const layerDirs = (root: string) => readdirSync(root).filter((n) => /^sha256:[a-f0-9]{64}$/.test(n)).sort()
  const small = () => layers.slice(0, 2).map((l) => l.digest).sort()
  /** an empty podman graph root: no podman layer uses anything */
  const graphroot = () => res.tempDir("pins-graphroot")

  test("a failed pull leaves no pin: gc then frees the layers it committed", async () => {
    const root = res.tempDir("pins-failed")
    // the big blob: slow, then stalled until --timeout; asked again (resume), it is gone. The small
    // layers commit in that window (12 s, generous for a busy machine).
    proxy.setRules([
      { path: blobPath(layers[2]!.digest), attempts: [0], fault: { kind: "cut", afterBytes: 100_000, end: "stall", bytesPerSecond: 50_000 } },
      { path: blobPath(layers[2]!.digest), fault: { kind: "status", status: 404 } },
    ])
    const r = await als(["pull", "--root", root, "--tls-verify=false", "--timeout", "10", ref()])
    expect(r.exitCode, describeResult(r)).toBe(3)
    expect(layerDirs(root)).toEqual(small())
    expect(readdirSync(join(root, ".als", "pins"))).toEqual([])
    const gc = JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot(), "--json"])).stdout)
    expect(gc.remove.map((x: { digest: string }) => x.digest).sort()).toEqual(small())
  }, 3 * MIN)

  test("an interrupted pull (SIGINT) leaves no pin that protects: gc frees its committed layers", async () => {
    const root = res.tempDir("pins-sigint")
    await alsOk(["init", "--root", root])
    proxy.setRules([{ path: blobPath(layers[2]!.digest), fault: { kind: "throttle", bytesPerSecond: 50_000 } }])
    const prefix = await alsCommand()
    const proc = Bun.spawn([...prefix, "pull", "--root", root, "--tls-verify=false", ref()], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } })
    const deadline = Date.now() + 2 * MIN
    while (layerDirs(root).length < 2 && Date.now() < deadline) await Bun.sleep(20)
    expect(layerDirs(root)).toEqual(small())
    // while it runs, its pin keeps them
    const during = JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot(), "--json"])).stdout)
    expect([...during.keptPinned].sort()).toEqual(small())
    proc.kill("SIGINT")
    const code = await proc.exited
    expect(code).toBe(130)
    const after = JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot(), "--json"])).stdout)
    expect(after.remove.map((x: { digest: string }) => x.digest).sort()).toEqual(small())
    expect(readdirSync(join(root, ".als", "pins"))).toEqual([])
  }, 3 * MIN)

  test("a pull killed outright (SIGKILL) leaves a pin of a dead process: gc ignores it, removes it, frees the layers", async () => {
    const root = res.tempDir("pins-sigkill")
    await alsOk(["init", "--root", root])
    proxy.setRules([{ path: blobPath(layers[2]!.digest), fault: { kind: "throttle", bytesPerSecond: 50_000 } }])
    const prefix = await alsCommand()
    const proc = Bun.spawn([...prefix, "pull", "--root", root, "--tls-verify=false", ref()], { stdout: "ignore", stderr: "ignore" })
    const deadline = Date.now() + 2 * MIN
    while (layerDirs(root).length < 2 && Date.now() < deadline) await Bun.sleep(20)
    expect(layerDirs(root)).toEqual(small())
    proc.kill("SIGKILL")
    await proc.exited
    expect(readdirSync(join(root, ".als", "pins")).length).toBe(1)
    const after = JSON.parse((await alsOk(["gc", "--root", root, "--graphroot", graphroot(), "--json"])).stdout)
    expect(after.remove.map((x: { digest: string }) => x.digest).sort()).toEqual(small())
    expect(readdirSync(join(root, ".als", "pins"))).toEqual([])
  }, 3 * MIN)
})
