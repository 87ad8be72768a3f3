// `als pull oci:…` / `docker-archive:…` / `oci-archive:…` end to end: the store they leave
// (layer dirs with diff/info/blob, info digests equal to the image's), the log, and real
// podman 4.3.1 taking every layer from the store when it pulls the same image, under the
// recorded name, from a real docker-registry on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { als, alsLog, describeResult, eventsOf, REPO_ROOT } from "../../lib/als.ts"
import { createPodman, type Podman } from "../../lib/podman.ts"
import { buildLayer, pushLayout, startRegistry, writeOciIndex, type RegistryHandle } from "../../lib/registry.ts"
import { runOk } from "../../lib/sh.ts"

const MIN = 60_000
const FIXTURE = resolve(REPO_ROOT, "test/fixtures/hello")
let registry: RegistryHandle
let podman: Podman
const dirs: string[] = []
const temp = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `als-src-${name}-`))
  dirs.push(d)
  return d
}
/** A temp dir whose path podman can use as an image name (lower case only). */
const lowerTemp = (name: string) => {
  const d = join(tmpdir(), `als-src-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`)
  mkdirSync(d)
  dirs.push(d)
  return d
}

beforeAll(async () => {
  registry = await startRegistry()
  podman = await createPodman()
}, 2 * MIN)

afterAll(async () => {
  await podman?.cleanup()
  await registry?.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
}, 2 * MIN)

const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`
const b64 = (s: string) => Buffer.from(s).toString("base64")

const fixture = () => {
  const index = JSON.parse(readFileSync(join(FIXTURE, "index.json"), "utf8"))
  const manifest = JSON.parse(readFileSync(join(FIXTURE, "blobs/sha256", index.manifests[0].digest.slice(7)), "utf8"))
  const config = JSON.parse(readFileSync(join(FIXTURE, "blobs/sha256", manifest.config.digest.slice(7)), "utf8"))
  return {
    layers: manifest.layers.map((l: { digest: string; size: number }, i: number) => ({ digest: l.digest, size: l.size, diffId: config.rootfs.diff_ids[i] as string })),
  }
}

/** Every layer is a complete store entry whose info and blob are those of the image, indexed under `ref`. */
const expectStored = (root: string, ref: string, layers: ReadonlyArray<{ digest: string; size: number; diffId: string }>, compression: number) => {
  for (const l of layers) {
    const dir = join(root, l.digest)
    for (const e of ["diff", "info", "blob"]) expect({ layer: l.digest, e, exists: existsSync(join(dir, e)) }).toEqual({ layer: l.digest, e, exists: true })
    const info = JSON.parse(readFileSync(join(dir, "info"), "utf8"))
    expect({
      "compressed-diff-digest": info["compressed-diff-digest"],
      "compressed-size": info["compressed-size"],
      "diff-digest": info["diff-digest"],
      compression: info.compression,
    }).toEqual({ "compressed-diff-digest": l.digest, "compressed-size": l.size, "diff-digest": l.diffId, compression })
    expect(sha256(readFileSync(join(dir, "blob")))).toBe(l.digest)
    expect(existsSync(join(root, b64(ref), l.digest, "info"))).toBe(true)
  }
}

/** Monolithic blob uploads and a manifest PUT: pushes layers exactly as given (skopeo would gzip plain ones). */
const pushRaw = async (repo: string, tag: string, config: Uint8Array, layers: ReadonlyArray<Uint8Array>, layerMediaType: string) => {
  const put = async (bytes: Uint8Array) => {
    const start = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: "POST" })
    await start.arrayBuffer()
    expect(start.status).toBe(202)
    const loc = new URL(start.headers.get("location")!, registry.url)
    loc.searchParams.set("digest", sha256(bytes))
    const done = await fetch(loc, { method: "PUT", body: bytes, headers: { "content-type": "application/octet-stream" } })
    await done.arrayBuffer()
    expect(done.status).toBe(201)
  }
  for (const b of [config, ...layers]) await put(b)
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: layerMediaType, digest: sha256(l), size: l.length })),
  })
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    body: manifest,
    headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
  })
  await res.arrayBuffer()
  expect(res.status).toBe(201)
}

describe("als pull oci:DIR:TAG", () => {
  test("stores every layer under --name, and podman pulling that name from a registry skips every blob", async () => {
    const root = temp("oci")
    const name = `${registry.host}/als/hello:latest`
    const r = await als(["pull", "--root", root, "--name", name, `oci:${FIXTURE}:latest`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    expect(r.stderr).toContain(`recorded as ${name} (from --name)`)
    const { layers } = fixture()
    expectStored(root, name, layers, 2)
    const done = eventsOf(await alsLog(root), "PullCompleted")
    expect(done.map((e) => [e.ref, e.pulled])).toEqual([[name, 2]])

    await pushLayout(FIXTURE, "latest", name)
    const pulled = await podman.pull(name, { als: { root } })
    expect([...pulled.skipped].sort()).toEqual(layers.map((l: { digest: string }) => l.digest).sort())
    expect(pulled.copied).toEqual([])
    expect(podman.additionalLayers().length).toBe(layers.length)
  }, 5 * MIN)

  test("without --name the layers are recorded under the name podman gives `podman pull oci:DIR:TAG`", async () => {
    const dir = join(lowerTemp("named"), "hello")
    cpSync(FIXTURE, dir, { recursive: true })
    const root = temp("named-store")
    const r = await als(["pull", "--root", root, `oci:${dir}:latest`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    const expected = `localhost${dir}:latest`
    expect(r.stderr).toContain(`recorded as ${expected} (from podman's own name for this layout path)`)
    expect(existsSync(join(root, b64(expected)))).toBe(true)
    await podman.podman(["pull", `oci:${dir}:latest`])
    const names = (await podman.images()).flatMap((i) => i.names)
    expect(names).toContain(expected)
  }, 5 * MIN)

  test("a multi-arch layout: --platform picks the image, and only its layers are stored", async () => {
    const layout = temp("multi")
    const amd = await buildLayer({ "etc/arch": "amd64\n" })
    const arm = await buildLayer({ "etc/arch": "arm64\n" })
    writeOciIndex(layout, "multi", [
      { platform: { os: "linux", architecture: "amd64" }, layers: [amd] },
      { platform: { os: "linux", architecture: "arm64", variant: "v8" }, layers: [arm] },
    ])
    const root = temp("multi-store")
    const name = `${registry.host}/als/multi:1`
    const r = await als(["pull", "--root", root, "--platform", "linux/arm64", "--name", name, `oci:${layout}:multi`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    const resolved = eventsOf(await alsLog(root), "ManifestResolved")
    expect(resolved.map((e) => e.platform)).toEqual(["linux/arm64/v8"])
    expectStored(root, name, [{ digest: arm.digest, size: arm.size, diffId: arm.diffId }], 2)
    expect(existsSync(join(root, amd.digest))).toBe(false)

    await pushLayout(layout, "multi", name, { all: true })
    const pulled = await podman.pull(name, { als: { root }, arch: "arm64" })
    expect(pulled.skipped).toEqual([arm.digest])
  }, 5 * MIN)
})

describe("als pull docker-archive:FILE and oci-archive:FILE", () => {
  test("a podman save archive: layers as stored (plain tar), named after RepoTags; podman skips them all", async () => {
    const work = temp("archive")
    const local = `localhost/als-archive/hello:latest`
    // podman names an oci: layout after its path, which must then be lowercase: a copy under
    // a lowercase path, wherever the checkout lives
    const layout = join(lowerTemp("archive-src"), "hello")
    cpSync(FIXTURE, layout, { recursive: true })
    await podman.podman(["pull", `oci:${layout}:latest`])
    await podman.podman(["tag", `localhost${layout}:latest`, local])
    const file = join(work, "hello.tar")
    await podman.podman(["save", "-o", file, local])
    const ociFile = join(work, "hello-oci.tar")
    await podman.podman(["save", "--format", "oci-archive", "-o", ociFile, local])

    // without --name: the archive's tag, as saved
    const root0 = temp("archive-default")
    const r0 = await als(["pull", "--root", root0, `docker-archive:${file}`])
    expect(r0.exitCode, describeResult(r0)).toBe(0)
    expect(r0.stderr).toContain(`recorded as ${local} (from the archive's tags)`)
    const ro = await als(["pull", "--root", root0, `oci-archive:${ociFile}`])
    expect(ro.exitCode, describeResult(ro)).toBe(0)
    expect(ro.stderr).toContain(`recorded as ${local} (from the archive's org.opencontainers.image.ref.name)`)

    // the archive's layers are the uncompressed tars: their digests are the DiffIDs
    const unpacked = join(work, "x")
    mkdirSync(unpacked)
    await runOk(["tar", "-xf", file, "-C", unpacked])
    const manifest = JSON.parse(readFileSync(join(unpacked, "manifest.json"), "utf8"))[0]
    const layerBytes: Uint8Array[] = manifest.Layers.map((l: string) => readFileSync(join(unpacked, l)))
    const config = readFileSync(join(unpacked, manifest.Config))
    const { layers } = fixture()
    const stored = layerBytes.map((b, i) => ({ digest: sha256(b), size: b.length, diffId: layers[i].diffId }))
    expect(stored.map((l) => l.digest)).toEqual(layers.map((l: { diffId: string }) => l.diffId))

    const root = temp("archive-store")
    const name = `${registry.host}/als/archived:1`
    const r = await als(["pull", "--root", root, "--name", name, `docker-archive:${file}`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    expectStored(root, name, stored, 0)
    expect(eventsOf(await alsLog(root), "PullCompleted").map((e) => [e.ref, e.pulled])).toEqual([[name, 2]])

    // a registry serving the same (plain) blobs: podman finds each one in the store
    await pushRaw("als/archived", "1", config, layerBytes, "application/vnd.oci.image.layer.v1.tar")
    const fresh = await createPodman()
    try {
      const pulled = await fresh.pull(name, { als: { root } })
      expect([...pulled.skipped].sort()).toEqual(stored.map((l) => l.digest).sort())
      expect(pulled.copied).toEqual([])
    } finally {
      await fresh.cleanup()
    }
  }, 5 * MIN)
})

describe("errors", () => {
  test("a missing directory, an unknown tag and several images without a tag are told plainly", async () => {
    const root = temp("errors")
    const missing = await als(["pull", "--root", root, "oci:/nonexistent/layout:1"])
    expect(missing.exitCode).not.toBe(0)
    expect(missing.stderr).toContain("/nonexistent/layout does not exist")

    const tag = await als(["pull", "--root", root, `oci:${FIXTURE}:v9`])
    expect(tag.exitCode).not.toBe(0)
    expect(tag.stderr).toContain(`no image tagged "v9"; the layout has tags: latest`)

    const two = temp("two-tags")
    cpSync(FIXTURE, two, { recursive: true })
    const index = JSON.parse(readFileSync(join(two, "index.json"), "utf8"))
    index.manifests.push({ ...index.manifests[0], annotations: { "org.opencontainers.image.ref.name": "other" } })
    writeFileSync(join(two, "index.json"), JSON.stringify(index))
    const amb = await als(["pull", "--root", root, `oci:${two}`])
    expect(amb.exitCode).not.toBe(0)
    expect(amb.stderr).toContain("holds several images")
    expect(amb.stderr).toContain("latest, other")
    expect(readdirSync(root).filter((n) => n.startsWith("sha256:"))).toEqual([])
  }, 2 * MIN)

  test("a corrupt layer blob is refused: not stored, no ref indexed, PullFailed in the log", async () => {
    const layout = temp("corrupt")
    cpSync(FIXTURE, layout, { recursive: true })
    const { layers } = fixture()
    const big = layers.reduce((a: { size: number }, b: { size: number }) => (a.size > b.size ? a : b))
    const p = join(layout, "blobs/sha256", big.digest.slice(7))
    const bytes = readFileSync(p)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(p, bytes)
    const root = temp("corrupt-store")
    const name = "localhost/als/corrupt:1"
    const r = await als(["pull", "--root", root, "--name", name, `oci:${layout}:latest`])
    expect(r.exitCode).not.toBe(0)
    expect(r.stderr).toContain(big.digest)
    expect(r.stderr).toMatch(/digest/i)
    expect(existsSync(join(root, big.digest))).toBe(false)
    expect(existsSync(join(root, b64(name)))).toBe(false)
    const failed = eventsOf(await alsLog(root), "PullFailed")
    expect(failed.map((e) => [e.ref, e.layer])).toEqual([[name, big.digest]])
  }, 2 * MIN)
})
