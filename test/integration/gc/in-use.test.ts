// What gc reads to decide a layer is still needed (src/store/InUse.ts): podman's
// `additionallayer` files, read as files others made, and the store's `:ref` views.
import { afterAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Digest } from "../../../src/domain/Digest.ts"
import { encodeRef } from "../../../src/domain/StorePaths.ts"
import { layerNamedBy, layersInUse, refsNaming } from "../../../src/store/InUse.ts"

const dirs: string[] = []
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "als-inuse-"))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const digest = (c: string) => `sha256:${c.repeat(64)}` as Digest
const A = digest("a")
const B = digest("b")
const C = digest("c")

describe("podman's additionallayer files", () => {
  test("a path through the :ref view or straight to the layer names it; anything else names nothing", () => {
    const root = temp()
    mkdirSync(join(root, A))
    mkdirSync(join(root, encodeRef("r:1")))
    symlinkSync(`../${A}`, join(root, encodeRef("r:1"), A))
    expect(layerNamedBy(join(root, encodeRef("r:1"), A), root)).toBe(A)
    expect(layerNamedBy(`${join(root, A)}\n`, root)).toBe(A)
    // gone from the store: the digest it named is still kept, to be safe
    expect(layerNamedBy(join(root, B), root)).toBe(B)
    for (const bad of ["", "relative/sha256:" + "a".repeat(64), join(root, "not-a-digest"), `${join(root, A)}\0x`]) {
      expect(layerNamedBy(bad, root)).toBeUndefined()
    }
  })

  test("FIFOs, symlinks and huge files are skipped without blocking; good files still count", async () => {
    const root = temp()
    mkdirSync(join(root, A))
    const graph = temp()
    const layer = (id: string) => {
      mkdirSync(join(graph, "overlay", id), { recursive: true })
      return join(graph, "overlay", id, "additionallayer")
    }
    writeFileSync(layer("good"), join(root, A))
    execFileSync("mkfifo", [layer("fifo")])
    symlinkSync(join(root, "elsewhere"), layer("link"))
    writeFileSync(join(root, "elsewhere"), join(root, B))
    writeFileSync(layer("huge"), `${join(root, C)}${" ".repeat(10_000)}`)
    mkdirSync(join(graph, "overlay", "plain"))
    const t0 = Date.now()
    const inUse = await Effect.runPromise(layersInUse(root, [graph, join(graph, "no-such-graphroot")]))
    expect([...inUse]).toEqual([A])
    expect(Date.now() - t0).toBeLessThan(10_000)
  })

  test("a graph root that cannot be read is an error, never 'nothing in use'", async () => {
    const graph = temp()
    writeFileSync(join(graph, "overlay"), "a file where podman keeps a directory")
    const r = await Effect.runPromise(Effect.either(layersInUse(temp(), [graph])))
    expect(r._tag).toBe("Left")
  })
})

describe("the store's :ref views", () => {
  test("a view names a layer by its blob digest or by a TOC key pointing at it", async () => {
    const root = temp()
    for (const d of [A, B, C]) mkdirSync(join(root, d))
    mkdirSync(join(root, encodeRef("x/y:1")))
    symlinkSync(`../${A}`, join(root, encodeRef("x/y:1"), A))
    symlinkSync(`../${B}`, join(root, encodeRef("x/y:1"), digest("d")))
    mkdirSync(join(root, "not-base64!"))
    symlinkSync(`../${C}`, join(root, "not-base64!", C))
    expect(await Effect.runPromise(refsNaming(root, A))).toEqual(["x/y:1"])
    expect(await Effect.runPromise(refsNaming(root, B))).toEqual(["x/y:1"])
    // a directory that is not a ref view names nothing
    expect(await Effect.runPromise(refsNaming(root, C))).toEqual([])
  })
})

describe("additionallayer paths inside an als serve mount", () => {
  test("never resolved or stat'ed; the key maps through the store's TOC alias to the blob digest", () => {
    const root = temp()
    mkdirSync(join(root, A))
    // a TOC alias, as the store makes for zstd:chunked layers (podman 5 looks them up by TOC)
    symlinkSync(A, join(root, B))
    const resolved: string[] = []
    const spy = (p: string) => {
      resolved.push(p)
      return realpathSync(p)
    }
    const mount = "/run/als-not-mounted-here"
    expect(layerNamedBy(join(mount, encodeRef("r:1"), B), root, spy)).toBe(A)
    expect(layerNamedBy(join(mount, B), root, spy)).toBe(A)
    expect(layerNamedBy(join(mount, encodeRef("r:1"), A), root, spy)).toBe(A)
    // the seed's discovery path ends in rootfs.<digest>
    expect(layerNamedBy(join(mount, ".pool", "x", `rootfs.${A}`), root, spy)).toBe(A)
    // a key the store does not have is kept as named, to be safe
    expect(layerNamedBy(join(mount, C), root, spy)).toBe(C)
    expect(resolved).toEqual([])
    // inside the store, resolving is fine (the store's own disk)
    expect(layerNamedBy(join(root, B), root, spy)).toBe(A)
    expect(resolved).toEqual([join(root, B)])
  })

  test("layersInUse maps podman 5's TOC key under the mount to the blob digest", async () => {
    const root = temp()
    mkdirSync(join(root, A))
    symlinkSync(A, join(root, B))
    const graph = temp()
    mkdirSync(join(graph, "overlay", "id1"), { recursive: true })
    writeFileSync(join(graph, "overlay", "id1", "additionallayer"), join("/run/als-not-mounted-here", encodeRef("r:1"), B))
    const inUse = await Effect.runPromise(layersInUse(root, [graph]))
    expect([...inUse]).toEqual([A])
  })
})
