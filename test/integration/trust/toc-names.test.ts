// Issue 11, class 2: a TOC digest from outside (an annotation, a pool's info) becomes a name in
// the store only once checked against the blob, and no name ever takes another layer's place.
// Real docker-registry on 127.0.0.1; images pushed as they are, forged annotations included.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { als, alsLog, alsOk, describeResult, eventsOf } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { layerBlob, rawTar, zstdChunkedBlob } from "../../lib/tars.ts"
import { b64, blobWithTocOf, ESTARGZ_TOC, pushLayers, TempDirs, ZSTD_TOC } from "./support.ts"

let registry: RegistryHandle
const dirs = new TempDirs()
const MIN = 60_000

// A: an ordinary gzip layer. B: a zstd:chunked-shaped layer whose TOC range holds A's blob, so
// B's TOC digest, honestly checked, is A's blob digest. C: another gzip layer. Z: a genuine
// zstd:chunked layer (its TOC annotation true).
const A = layerBlob(rawTar([{ name: "a.txt", content: "layer a\n" }]), "gzip")
const B = blobWithTocOf([{ name: "b.txt", content: "layer b\n" }], A.blob)
const C = layerBlob(rawTar([{ name: "c.txt", content: "layer c\n" }]), "gzip")
const Z = zstdChunkedBlob([{ name: "z.txt", content: "layer z\n" }])

const pull = (root: string, ref: string, extra: ReadonlyArray<string> = []) =>
  als(["pull", "--root", root, "--tls-verify=false", ...extra, ref])

const isDir = (p: string) => existsSync(p) && lstatSync(p).isDirectory()
const info = (root: string, d: string) => JSON.parse(readFileSync(join(root, d, "info"), "utf8")) as Record<string, unknown>

beforeAll(async () => {
  registry = await startRegistry()
  await pushLayers(registry.url, "trust/ab", "1", [{ ...A, annotations: {} }, B])
  await pushLayers(registry.url, "trust/a", "1", [{ ...A, annotations: {} }])
  await pushLayers(registry.url, "trust/forged", "1", [{ ...C, annotations: { [ZSTD_TOC]: A.digest } }])
  await pushLayers(registry.url, "trust/c", "1", [{ ...C, annotations: {} }])
  await pushLayers(registry.url, "trust/c-forged-estargz", "1", [{ ...C, annotations: { [ESTARGZ_TOC]: A.digest } }])
  await pushLayers(registry.url, "trust/z", "1", [Z])
}, 5 * MIN)

afterAll(async () => {
  dirs.cleanup()
  await registry?.stop()
})

describe("a checked TOC digest that is another layer's blob digest", () => {
  test("names neither an alias nor a :ref entry: A's directory and A's view entry stay A's; TocIgnored logged; audit clean", async () => {
    const root = dirs.make("ab")
    const ref = `${registry.host}/trust/ab:1`
    const r = await pull(root, ref)
    expect(r.exitCode, describeResult(r)).toBe(0)
    expect(B.annotations[ZSTD_TOC]).toBe(A.digest)
    // A's real layer directory is still A (not replaced by an alias to B)
    expect(isDir(join(root, A.digest))).toBe(true)
    expect(info(root, A.digest)["compressed-diff-digest"]).toBe(A.digest)
    // B is stored (layers run in parallel: whether B's alias was refused or made and then
    // replaced by A's directory depends on which committed first; either way A keeps its name)
    expect(info(root, B.digest)["compressed-diff-digest"]).toBe(B.digest)
    // the :ref view: key A -> A, key B -> B, nothing points A's name at B
    const view = join(root, b64(ref))
    expect(readlinkSync(join(view, A.digest))).toBe(`../${A.digest}`)
    expect(readlinkSync(join(view, B.digest))).toBe(`../${B.digest}`)
    const log = await alsLog(root)
    const ignored = eventsOf(log, "TocIgnored")
    expect(ignored.map((e) => [e.layer, e.tocDigest])).toContainEqual([B.digest, A.digest])
    const audit = await als(["audit", "--root", root])
    expect(audit.exitCode, describeResult(audit)).toBe(0)
  }, 5 * MIN)

  test("a layer that arrives after an alias took its digest replaces the alias (the real layer wins)", async () => {
    // B alone first: with A absent its checked TOC may be an alias B can answer to
    const root = dirs.make("ba")
    await pushLayers(registry.url, "trust/b", "1", [B])
    const rb = await pull(root, `${registry.host}/trust/b:1`)
    expect(rb.exitCode, describeResult(rb)).toBe(0)
    expect(lstatSync(join(root, A.digest)).isSymbolicLink()).toBe(true)
    expect(readlinkSync(join(root, A.digest))).toBe(B.digest)
    // then A: its own digest is its own name
    const ra = await pull(root, `${registry.host}/trust/a:1`)
    expect(ra.exitCode, describeResult(ra)).toBe(0)
    expect(isDir(join(root, A.digest))).toBe(true)
    expect(info(root, A.digest)["compressed-diff-digest"]).toBe(A.digest)
    expect(readlinkSync(join(root, b64(`${registry.host}/trust/a:1`), A.digest))).toBe(`../${A.digest}`)
  }, 5 * MIN)
})

describe("forged TOC annotations", () => {
  test("pulled: a TOC annotation the blob does not prove rejects the layer (exit 4); A's entries untouched, no alias made", async () => {
    const root = dirs.make("forged")
    await alsOk(["pull", "--root", root, "--tls-verify=false", `${registry.host}/trust/a:1`])
    const r = await pull(root, `${registry.host}/trust/forged:1`)
    expect(r.exitCode, describeResult(r)).toBe(4)
    expect(r.stderr).toContain("TOC")
    expect(isDir(join(root, A.digest))).toBe(true)
    expect(existsSync(join(root, C.digest))).toBe(false)
    expect(info(root, A.digest)["compressed-diff-digest"]).toBe(A.digest)
  }, 5 * MIN)

  test("linked from a pool: an annotation's TOC the pool's blob does not prove is ignored and logged; no alias, no view key", async () => {
    const pool = dirs.make("pool-c")
    await alsOk(["pull", "--root", pool, "--tls-verify=false", `${registry.host}/trust/c:1`])
    const root = dirs.make("linked-forged")
    const ref = `${registry.host}/trust/c-forged-estargz:1`
    const r = await pull(root, ref, ["--pool", `store:${pool}`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    const log = await alsLog(root)
    expect(eventsOf(log, "LayerLinked").map((e) => e.layer)).toEqual([C.digest])
    expect(eventsOf(log, "TocIgnored").map((e) => [e.layer, e.tocDigest, e.from])).toEqual([[C.digest, A.digest, "annotation"]])
    expect(existsSync(join(root, A.digest))).toBe(false)
    expect(existsSync(join(root, b64(ref), A.digest))).toBe(false)
    expect(info(root, C.digest)["toc-digest"]).toBeUndefined()
    // pulled again, the layer is found: the claim is still not a name, and is logged again
    const again = await pull(root, ref)
    expect(again.exitCode, describeResult(again)).toBe(0)
    const log2 = await alsLog(root)
    expect(eventsOf(log2, "LayerFound").map((e) => e.layer)).toEqual([C.digest])
    expect(eventsOf(log2, "TocIgnored").map((e) => [e.layer, e.tocDigest, e.from])).toEqual([
      [C.digest, A.digest, "annotation"],
      [C.digest, A.digest, "annotation"],
    ])
    expect(existsSync(join(root, b64(ref), A.digest))).toBe(false)
  }, 5 * MIN)

  test("linked from a pool: a toc-digest in the pool's info is a claim, ignored unless the blob proves it", async () => {
    const pool = dirs.make("pool-info")
    await alsOk(["pull", "--root", pool, "--tls-verify=false", `${registry.host}/trust/c:1`])
    const poolInfo = join(pool, C.digest, "info")
    writeFileSync(poolInfo, JSON.stringify({ ...JSON.parse(readFileSync(poolInfo, "utf8")), "toc-digest": A.digest }))
    const root = dirs.make("linked-info")
    await alsOk(["pull", "--root", root, "--tls-verify=false", `${registry.host}/trust/a:1`])
    const ref = `${registry.host}/trust/c:1`
    const r = await als(["lookup", C.digest, "--root", root, "--ref", ref, "--pool", `store:${pool}`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    const log = await alsLog(root)
    expect(eventsOf(log, "TocIgnored").map((e) => [e.layer, e.tocDigest, e.from])).toEqual([[C.digest, A.digest, "pool info"]])
    // A stays A everywhere; C's view names only C
    expect(isDir(join(root, A.digest))).toBe(true)
    expect(info(root, A.digest)["compressed-diff-digest"]).toBe(A.digest)
    expect(existsSync(join(root, b64(ref), A.digest))).toBe(false)
    expect(info(root, C.digest)["toc-digest"]).toBeUndefined()
  }, 5 * MIN)

  test("linked from a pool: a true zstd:chunked TOC annotation is checked against the pool's blob and becomes the alias", async () => {
    const pool = dirs.make("pool-z")
    const ref = `${registry.host}/trust/z:1`
    await alsOk(["pull", "--root", pool, "--tls-verify=false", ref])
    const root = dirs.make("linked-z")
    const r = await pull(root, ref, ["--pool", `store:${pool}`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    const toc = Z.annotations[ZSTD_TOC]!
    expect(readlinkSync(join(root, toc))).toBe(Z.digest)
    expect(readlinkSync(join(root, b64(ref), toc))).toBe(`../${Z.digest}`)
    expect(info(root, Z.digest)["toc-digest"]).toBe(toc)
    expect(eventsOf(await alsLog(root), "TocIgnored")).toEqual([])
  }, 5 * MIN)
})
