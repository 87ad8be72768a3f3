/**
 * Issue 11, class 2: `als audit` reports a name (TOC alias, `:ref` view entry) that serves
 * another layer's tree, judged by the target's own info (its blob and TOC digests), and a
 * linked layer whose diff or blob was repointed outside its pool. Real pulls from
 * docker-registry on 127.0.0.1, then the store tampered with by hand.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from "node:fs"
import { join } from "node:path"
import { als, alsOk, describeResult } from "../../lib/als.ts"
import { type RegistryHandle, startRegistry } from "../../lib/registry.ts"
import { layerBlob, rawTar, zstdChunkedBlob } from "../../lib/tars.ts"
import { b64, pushLayers, TempDirs, ZSTD_TOC } from "../trust/support.ts"

let registry: RegistryHandle
const dirs = new TempDirs()
const L1 = layerBlob(rawTar([{ name: "one", content: "one\n" }]), "gzip")
const Z = zstdChunkedBlob([{ name: "z", content: "zzz\n" }])
let ref = ""

beforeAll(async () => {
  registry = await startRegistry()
  await pushLayers(registry.url, "audit/wrong", "1", [{ ...L1, annotations: {} }, Z])
  ref = `${registry.host}/audit/wrong:1`
}, 5 * 60_000)
afterAll(async () => {
  dirs.cleanup()
  await registry?.stop()
})

const pulled = async (name: string, extra: ReadonlyArray<string> = []) => {
  const root = dirs.make(name)
  await alsOk(["pull", "--root", root, "--tls-verify=false", ...extra, ref])
  const clean = await als(["audit", "--root", root, "--deep"])
  expect(clean.exitCode, describeResult(clean)).toBe(0)
  return root
}

/** Replaces the symlink at `p` with one to `target`. */
const repoint = (p: string, target: string) => {
  rmSync(p)
  symlinkSync(target, p)
}

describe("als audit: names that serve another layer", () => {
  test("a TOC alias repointed at another layer: AliasWrongLayer (exit 1)", async () => {
    const root = await pulled("alias")
    const toc = Z.annotations[ZSTD_TOC]!
    expect(readlinkSync(join(root, toc))).toBe(Z.digest)
    repoint(join(root, toc), L1.digest)
    const r = await als(["audit", "--root", root])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout + r.stderr).toContain("AliasWrongLayer")
  }, 5 * 60_000)

  test("a :ref view entry repointed at another layer: RefEntryWrongLayer (exit 1)", async () => {
    const root = await pulled("view")
    const entry = join(root, b64(ref), L1.digest)
    repoint(entry, `../${Z.digest}`)
    const r = await als(["audit", "--root", root])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout + r.stderr).toContain("RefEntryWrongLayer")
  }, 5 * 60_000)

  test("the view's TOC key repointed at another layer: RefEntryWrongLayer", async () => {
    const root = await pulled("view-toc")
    const entry = join(root, b64(ref), Z.annotations[ZSTD_TOC]!)
    repoint(entry, `../${L1.digest}`)
    const r = await als(["audit", "--root", root])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout + r.stderr).toContain("RefEntryWrongLayer")
  }, 5 * 60_000)

  test("two layer directories swapped: --deep is not clean (info and blob name the other layer)", async () => {
    const root = await pulled("swap")
    const a = join(root, L1.digest)
    const b = join(root, Z.digest)
    renameSync(a, `${a}.tmp`)
    renameSync(b, a)
    renameSync(`${a}.tmp`, b)
    const r = await als(["audit", "--root", root, "--deep"])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout + r.stderr).toContain("InfoMismatch")
    expect(r.stdout + r.stderr).toMatch(/BlobSizeMismatch|BlobDigestMismatch/)
  }, 5 * 60_000)

  test("a linked layer's diff repointed outside its pool: LinkOutsidePool", async () => {
    const pool = await pulled("pool")
    const root = await pulled("linked", ["--pool", `store:${pool}`])
    const elsewhere = dirs.make("elsewhere")
    mkdirSync(join(elsewhere, "diff"))
    repoint(join(root, L1.digest, "diff"), join(elsewhere, "diff"))
    const r = await als(["audit", "--root", root])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout + r.stderr).toContain("LinkOutsidePool")
  }, 5 * 60_000)
})
