// Issue 3: broken or hostile images. For each, `als pull` exits non-zero (4: layer rejected,
// 3: registry / manifest), its stderr names the image, the layer and what went wrong, the log
// holds a PullFailed with the reason code, no layer dir exists for the bad layer, the staging
// dir is empty, and nothing was written outside the store.
//
// Images are pushed with the registry's HTTP API (a layer's bytes always match the digest it is
// uploaded under: docker-registry verifies that). Two cases docker-registry refuses to store at
// all are served by a tiny fake registry (Bun.serve on 127.0.0.1): a manifest whose layer digest
// is `sha256:../…`, and a blob whose bytes do not match the digest it is served under.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { lstatSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { als, alsLog, describeResult, eventsOf, type AlsResult } from "../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { rawTar, type RawEntry } from "../lib/tars.ts"
import { buildManifest, MT_GZIP, putManifest, pushImageHttp, startFakeRegistry, uploadBlob, type FakeRegistry, type LayerSpec } from "./badImages.ts"
import { lstatOrUndefined, MIN, Resources, sha256Hex, stagingEntries } from "./support.ts"

let registry: RegistryHandle
const res = new Resources()
/** Outside every store: hostile layers aim here; it must stay empty. */
let escape: string
const fakes: FakeRegistry[] = []

beforeAll(async () => {
  registry = await startRegistry()
  // Directly under /tmp (not in a store) and short enough for a 100-byte tar name.
  escape = mkdtempSync(join(tmpdir(), "als-e2e-escape-"))
}, 2 * MIN)

afterAll(async () => {
  for (const f of fakes) await f.stop()
  await res.cleanup()
  rmSync(escape, { recursive: true, force: true })
  await registry?.stop()
}, 2 * MIN)

const digestOf = (b: Uint8Array) => `sha256:${sha256Hex(b)}`

/** A gzip layer of `entries`, described truthfully. */
const layer = (entries: ReadonlyArray<RawEntry>): LayerSpec & { tar: Uint8Array } => {
  const tar = rawTar(entries)
  return { tar, blob: gzipSync(tar), diffId: digestOf(tar) }
}

/** A good first layer: it may be committed before the bad one fails (complete and verified). */
const goodLayer = layer([
  { name: "good/", type: "dir" },
  { name: "good/file", content: "a good layer\n" },
])

/** Deterministic bytes gzip cannot shrink: a truncated stream then ends mid-deflate-block. */
const noise = (n: number) => {
  const out = new Uint8Array(n)
  let x = 0x12345678
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** `../` enough times to climb from any store dir to /, then `target` (absolute). */
const climbTo = (target: string) => `${"../".repeat(12)}${target.replace(/^\//, "")}`

interface Outcome {
  readonly result: AlsResult
  readonly root: string
  readonly ref: string
}

const pull = async (ref: string): Promise<Outcome> => {
  const root = res.tempDir("bad")
  const result = await als(["pull", "--root", root, "--tls-verify=false", ref])
  if (process.env.ALS_E2E_VERBOSE) process.stderr.write(`${describeResult(result)}\n\n`)
  return { result, root, ref }
}

/**
 * Everything every failed pull must show. `badLayer` is the digest the manifest names for the
 * bad layer (undefined when the failure is the manifest's, before any layer).
 */
const expectFailedCleanly = async (
  o: Outcome,
  want: {
    /** the exit status, or the statuses accepted */
    exit: number | ReadonlyArray<number>
    code: string
    badLayer?: string
    what: RegExp
    /** PullFailed names the layer (default true when badLayer is given) */
    logLayer?: boolean
  },
) => {
  const { result: r, root, ref } = o
  const why = describeResult(r)
  const exits = typeof want.exit === "number" ? [want.exit] : want.exit
  expect({ exit: exits.includes(r.exitCode) ? exits : r.exitCode }, why).toEqual({ exit: exits })
  // stderr names the image, the layer, and what went wrong
  expect(r.stderr, why).toContain(ref)
  if (want.badLayer) expect(r.stderr, why).toContain(want.badLayer.slice(7, 19))
  expect(r.stderr, why).toMatch(want.what)
  // the log: a PullFailed with the reason code (and the layer)
  const failed = eventsOf(await alsLog(root), "PullFailed")
  expect(failed.length, why).toBe(1)
  expect(failed[0]).toMatchObject({ ref, reason: { code: want.code } })
  if (want.badLayer && want.logLayer !== false) expect(failed[0]!.layer).toBe(want.badLayer)
  expect(String((failed[0]!.reason as { message: string }).message)).toMatch(want.what)
  // no layer dir for the bad layer, no alias, nothing half-made
  if (want.badLayer) {
    expect(lstatOrUndefined(join(root, want.badLayer))).toBeUndefined()
    for (const n of readdirSync(root)) expect({ n, bad: n.includes(want.badLayer.slice(7)) }).toEqual({ n, bad: false })
  }
  expect(stagingEntries(root)).toEqual([])
  // anything that is in the store is a complete layer (the good one, if it finished first)
  for (const n of readdirSync(root).filter((x) => x.startsWith("sha256:"))) {
    expect(n).toBe(digestOf(goodLayer.blob))
    for (const e of ["diff", "info", "blob"]) expect(lstatOrUndefined(join(root, n, e))).toBeDefined()
  }
  // nothing outside the store
  expect(readdirSync(escape)).toEqual([])
}

const pushBad = async (name: string, bad: LayerSpec) => {
  const built = await pushImageHttp(registry.url, `e2e/bad-${name}`, "1", [goodLayer, bad])
  return { ref: `${registry.host}/e2e/bad-${name}:1`, badLayer: built.layerDigests[1]! }
}

describe("als pull refuses broken and hostile images, leaving nothing behind", () => {
  test("a manifest whose layer size is wrong (smaller, larger)", async () => {
    const bad = layer([{ name: "sized", content: "x".repeat(5000) }])
    // declared smaller than the blob (the registry sends more) …
    const small = await pushBad("size-small", { ...bad, size: bad.blob.length - 7 })
    await expectFailedCleanly(await pull(small.ref), { exit: 4, code: "BlobSizeMismatch", badLayer: small.badLayer, what: /bytes|size/i })
    // … and larger (the registry's body ends early)
    const large = await pushBad("size-large", { ...bad, size: bad.blob.length + 7 })
    await expectFailedCleanly(await pull(large.ref), { exit: 4, code: "BlobSizeMismatch", badLayer: large.badLayer, what: /bytes|size/i })
  }, 2 * MIN)

  test("a config whose diff_id is wrong", async () => {
    const bad = layer([{ name: "diffid", content: "the config lies about me\n" }])
    const { ref, badLayer } = await pushBad("diffid", { ...bad, diffId: digestOf(new TextEncoder().encode("something else")) })
    await expectFailedCleanly(await pull(ref), { exit: 4, code: "DiffIdMismatch", badLayer, what: /DiffID|diff_id/i })
  }, 2 * MIN)

  test("a truncated gzip stream (pushed under its true digest)", async () => {
    const full = layer([{ name: "big.bin", content: noise(256 * 1024) }])
    const truncated = full.blob.subarray(0, Math.floor(full.blob.length / 2))
    const { ref, badLayer } = await pushBad("truncated", { blob: truncated, diffId: full.diffId })
    expect(badLayer).toBe(digestOf(truncated))
    await expectFailedCleanly(await pull(ref), { exit: 4, code: "CorruptData", badLayer, what: /gzip|truncated|unexpected end|corrupt/i })
  }, 2 * MIN)

  test("a tar entry ../… that climbs out of the layer", async () => {
    const target = join(escape, "dotdot")
    const name = climbTo(target)
    expect(name.length).toBeLessThan(100)
    const { ref, badLayer } = await pushBad("dotdot", layer([{ name, content: "out\n" }, { name: "../escape", content: "out\n" }]))
    await expectFailedCleanly(await pull(ref), { exit: 4, code: "UnsafeEntry", badLayer, what: /escape|outside|\.\./i })
    expect(lstatOrUndefined(target)).toBeUndefined()
  }, 2 * MIN)

  test("a symlink to an absolute path outside, then a file written through it", async () => {
    const { ref, badLayer } = await pushBad(
      "symlink",
      layer([
        { name: "s", type: "symlink", linkname: escape },
        { name: "s/file", content: "written through the link\n" },
      ]),
    )
    await expectFailedCleanly(await pull(ref), { exit: 4, code: "UnsafeEntry", badLayer, what: /symlink/i })
    expect(lstatOrUndefined(join(escape, "file"))).toBeUndefined()
  }, 2 * MIN)

  test("a hardlink to ../../etc/passwd", async () => {
    const before = statSync("/etc/passwd")
    const { ref, badLayer } = await pushBad(
      "hardlink",
      layer([
        { name: "h", type: "link", linkname: climbTo("/etc/passwd") },
        { name: "h2", type: "link", linkname: "../../etc/passwd" },
      ]),
    )
    await expectFailedCleanly(await pull(ref), { exit: 4, code: "UnsafeEntry", badLayer, what: /hardlink|outside/i })
    // A link(2) to /etc/passwd, even one removed later, would have changed its ctime and nlink.
    const after = statSync("/etc/passwd")
    expect({ nlink: after.nlink, ctime: after.ctimeMs }).toEqual({ nlink: before.nlink, ctime: before.ctimeMs })
  }, 2 * MIN)

  test("an invalid whiteout .wh..", async () => {
    const { ref, badLayer } = await pushBad("whiteout", layer([{ name: "d/", type: "dir" }, { name: ".wh..", content: "" }]))
    await expectFailedCleanly(await pull(ref), { exit: 4, code: "InvalidWhiteout", badLayer, what: /whiteout|\.wh\./i })
  }, 2 * MIN)

  test("an unknown layer media type", async () => {
    const bad = layer([{ name: "odd", content: "odd\n" }])
    const { ref, badLayer } = await pushBad("mediatype", { ...bad, mediaType: "application/vnd.example.unknown.layer.v1+tar" })
    // Refused when the manifest is read, before any download: a RegistryError (exit 3) whose
    // PullFailed carries no layer field (the message names it), or a LayerRejected (exit 4).
    await expectFailedCleanly(await pull(ref), {
      exit: [3, 4],
      code: "UnsupportedMediaType",
      badLayer,
      logLayer: false,
      what: /media type|application\/vnd\.example\.unknown/i,
    })
  }, 2 * MIN)

  test("a manifest whose layer digest is sha256:../… (docker-registry refuses it: served by a fake registry)", async () => {
    const target = join(escape, "digest")
    const hostile = `sha256:${climbTo(target)}`
    const built = buildManifest([goodLayer, { blob: goodLayer.blob, digest: hostile, diffId: goodLayer.diffId }])
    // docker-registry will not store it (this is why the fake registry is needed).
    await uploadBlob(registry.url, "e2e/bad-digest", built.config)
    await uploadBlob(registry.url, "e2e/bad-digest", goodLayer.blob)
    const put = await putManifest(registry.url, "e2e/bad-digest", "1", built.manifest)
    const refusal = await put.text()
    // (distribution 2.8 answers 500 with MANIFEST_BLOB_UNKNOWN naming the digest)
    expect({ ok: put.ok, refusal }).toMatchObject({ ok: false })
    expect(refusal).toMatch(/DIGEST_INVALID|MANIFEST_INVALID|BLOB_UNKNOWN/)
    if (process.env.ALS_E2E_VERBOSE) process.stderr.write(`docker-registry refused the manifest: ${refusal}\n`)

    const fake = startFakeRegistry({
      manifests: { "e2e/bad-digest:1": built.manifest },
      blobs: { [built.configDigest]: built.config, [digestOf(goodLayer.blob)]: goodLayer.blob, [hostile]: goodLayer.blob },
    })
    fakes.push(fake)
    const ref = `${fake.host}/e2e/bad-digest:1`
    const o = await pull(ref)
    await expectFailedCleanly(o, { exit: 3, code: "InvalidManifest", what: /digest/i })
    // names the layer (by position: its digest is the garbage)
    expect(o.result.stderr).toMatch(/layers\.1\b|layer 1\b|sha256:\.\.\//)
    // The bad digest was never asked for, nor used as a path.
    expect(fake.requests.some((r) => r.includes("sha256:.."))).toBe(false)
    expect(lstatOrUndefined(target)).toBeUndefined()
    expect(readdirSync(o.root).filter((n) => n.startsWith("sha256:"))).toEqual([])
  }, 2 * MIN)

  test("a blob whose bytes do not match its digest (served by a fake registry)", async () => {
    const bad = layer([{ name: "claimed", content: "what the digest promises\n" }])
    const other = layer([{ name: "served", content: "what is served instead\n" }])
    const built = buildManifest([goodLayer, bad])
    const badLayer = built.layerDigests[1]!
    const fake = startFakeRegistry({
      manifests: { "e2e/bad-content:1": built.manifest },
      // Served under the promised digest: other bytes, padded or cut to the promised size.
      blobs: {
        [built.configDigest]: built.config,
        [digestOf(goodLayer.blob)]: goodLayer.blob,
        [badLayer]: Buffer.concat([other.blob, Buffer.alloc(Math.max(0, bad.blob.length - other.blob.length))]).subarray(0, bad.blob.length),
      },
    })
    fakes.push(fake)
    const ref = `${fake.host}/e2e/bad-content:1`
    await expectFailedCleanly(await pull(ref), { exit: 4, code: "BlobDigestMismatch", badLayer, what: /digest|hashes to/i })
  }, 2 * MIN)
  test("the error line names the image and the layer once each", async () => {
    const bad = layer([{ name: "once", content: "named once\n" }])
    const { ref, badLayer } = await pushBad("once", { ...bad, diffId: digestOf(new TextEncoder().encode("not this")) })
    const o = await pull(ref)
    expect(o.result.exitCode).toBe(4)
    const line = o.result.stderr.split("\n").find((l) => l.startsWith("als: "))
    expect(line, describeResult(o.result)).toBeDefined()
    // "als: REF: layer D: layer D: the uncompressed layer…" repeats the layer prefix
    expect({ line, layerMentions: line!.split(`layer ${badLayer}`).length - 1 }).toEqual({ line, layerMentions: 1 })
    expect({ line, refMentions: line!.split(ref).length - 1 }).toEqual({ line, refMentions: 1 })
  }, 2 * MIN)
})
