/**
 * The recorded vectors (test/unit/domain/vectors) re-checked live against the podman 4.3.1 on
 * this machine, for the cases issue 17 names: podman pulls from a real index on a real
 * docker-registry and als must pick the same entry; podman reads references and als must
 * name them the same (or refuse them for the same reason).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { writeFileSync } from "node:fs"
import { choosePlatform, formatPlatform, parsePlatform, type Platform } from "../../../src/domain/Platform.ts"
import { formatReference, InvalidReference, parseReference } from "../../../src/domain/Reference.ts"
import { createPodman, type Podman } from "../../lib/podman.ts"
import { buildLayer, type RegistryHandle, startRegistry } from "../../lib/registry.ts"

const host: Platform = { os: "linux", architecture: "amd64" }
const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`

let registry: RegistryHandle
let podman: Podman
const entries: Array<{ platform: Platform; digest: string; size: number; config: string }> = []

const putBlob = async (bytes: Uint8Array) => {
  const digest = sha256(bytes)
  const start = await fetch(`${registry.url}/v2/idx/blobs/uploads/`, { method: "POST" })
  const location = new URL(start.headers.get("location") ?? "", registry.url)
  location.searchParams.set("digest", digest)
  const put = await fetch(location, { method: "PUT", body: bytes, headers: { "content-type": "application/octet-stream" } })
  expect(put.status).toBe(201)
  return { digest, size: bytes.length }
}
const putManifest = async (ref: string, mediaType: string, body: string) => {
  const put = await fetch(`${registry.url}/v2/idx/manifests/${ref}`, { method: "PUT", body, headers: { "content-type": mediaType } })
  expect(put.status).toBe(201)
  return { digest: sha256(body), size: Buffer.byteLength(body) }
}

beforeAll(async () => {
  registry = await startRegistry()
  podman = await createPodman()
  const layer = await buildLayer({ "etc/which": "one layer for every platform\n" })
  const l = await putBlob(layer.blob)
  const platforms = ["linux/amd64", "linux/amd64/v2", "linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8", "linux/arm64", "linux/arm64/v8"]
  for (const s of platforms) {
    const [os, architecture, variant] = s.split("/")
    const platform: Platform = variant ? { os, architecture, variant } : { os, architecture }
    const config = JSON.stringify({ ...platform, rootfs: { type: "layers", diff_ids: [layer.diffId] } })
    const c = await putBlob(new TextEncoder().encode(config))
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...c },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...l }],
    })
    const m = await putManifest(s.replaceAll("/", "-"), "application/vnd.oci.image.manifest.v1+json", manifest)
    entries.push({ platform, ...m, config: c.digest.slice("sha256:".length) })
  }
}, 120_000)

afterAll(async () => {
  await podman?.cleanup()
  await registry?.stop()
})

/** Pushes an index of `chosen` entries and returns its tag. */
const pushIndex = async (chosen: typeof entries) => {
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: chosen.map((e) => ({ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: e.digest, size: e.size, platform: e.platform })),
  })
  const tag = `i${sha256(body).slice(7, 27)}`
  await putManifest(tag, "application/vnd.oci.image.index.v1+json", body)
  return tag
}

describe("podman and als pick the same index entry", () => {
  // each row: --platform, and the entries left in the index (by name) so later candidates show
  const cases: ReadonlyArray<[string, ReadonlyArray<string>]> = [
    ["linux/arm", ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"]],
    ["linux/arm", ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v8"]],
    ["linux/arm", ["linux/arm", "linux/arm/v8"]],
    ["linux/arm/7", ["linux/arm", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"]],
    ["linux/arm/8", ["linux/arm", "linux/arm/v7", "linux/arm/v8"]],
    ["linux/arm64/8", ["linux/arm64", "linux/arm64/v8"]],
    ["linux/arm64", ["linux/arm64", "linux/arm64/v8"]],
    ["linux/arm64", ["linux/arm64/v8"]],
    ["linux/amd64/v1", ["linux/amd64", "linux/amd64/v2"]],
    ["linux/amd64/v2", ["linux/amd64", "linux/amd64/v2"]],
    ["linux/amd64/v3", ["linux/amd64", "linux/amd64/v2"]],
  ]
  test.each(cases)("--platform %s from %j", async (wanted, names) => {
    const chosen = entries.filter((e) => names.includes(formatPlatform(e.platform)))
    expect(chosen.length).toBe(names.length)
    const tag = await pushIndex(chosen)
    const r = await podman.podman(["pull", "-q", "--tls-verify=false", "--platform", wanted, `${registry.host}/idx:${tag}`])
    const podmanPick = entries.find((e) => e.config === r.stdout.trim().split("\n").pop())
    expect(podmanPick).toBeDefined()
    const alsPick = choosePlatform(chosen, parsePlatform(wanted, host))
    expect(alsPick && formatPlatform(alsPick.platform)).toBe(formatPlatform(podmanPick!.platform))
  }, 120_000)
})

/** podman's reading of a reference: the name of its first "Trying to pull", or its error. */
const podmanReads = (input: string): Promise<{ pulls?: string; error?: string }> =>
  new Promise((resolve) => {
    const child = spawn("podman", ["--root", podman.graphRoot, "--runroot", podman.runRoot, "--storage-driver", "overlay", "pull", "--", input], {
      // no registry answers: podman says what it tries, then is stopped
      env: { ...process.env, ...podman.env, HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9" },
    })
    let out = ""
    let done = false
    const settle = (final: boolean) => {
      if (done) return
      const trying = /^Trying to pull (.*)\.\.\.$/m.exec(out)
      const error = /^Error: (.*)$/m.exec(out)
      if (trying || error || final) {
        done = true
        child.kill("SIGKILL")
        resolve(trying ? { pulls: trying[1] } : { error: error?.[1] ?? out.trim() })
      }
    }
    child.stdout.on("data", (d) => { out += d; settle(false) })
    child.stderr.on("data", (d) => { out += d; settle(false) })
    child.on("close", () => settle(true))
  })

describe("podman and als read references the same way", () => {
  beforeAll(() => {
    writeFileSync(podman.env.CONTAINERS_REGISTRIES_CONF, 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n')
  })
  const d = `sha256:${"0123456789abcdef".repeat(4)}`
  const cases: ReadonlyArray<[string, string]> = [
    ["docker.io/library/alpine:3.19", "docker.io/library/alpine:3.19"],
    ["index.docker.io/busybox", "docker.io/library/busybox:latest"],
    [`quay.io/repo/fedora:tag@${d}`, `quay.io/repo/fedora@${d}`],
    ["docker://alpine", "docker.io/library/alpine:latest"],
    ["Foo.example/bar", "Foo.example/bar:latest"],
    ["Foo/bar", "uppercase"],
    ["LOCALDOMAIN/debian", "uppercase"],
    ["[::1]:5000/foo", "format"],
    [`docker://fedora:latest@${d}`, "format"],
    ["a".repeat(64), "image-id"],
    [`sha256:${"a".repeat(64)}`, "image-id"],
    ["alpine@sha256:abc", "format"],
    [`alpine@sha256:${"a".repeat(63)}`, "digest-length"],
  ]
  test.each(cases)("%s", async (input, expected) => {
    const p = await podmanReads(input)
    let als: string
    try {
      als = formatReference(parseReference(input))
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidReference)
      als = (e as InvalidReference).kind ?? "?"
    }
    expect(als).toBe(expected)
    if (expected.includes("/")) expect(p.pulls).toBe(expected)
    else expect(p.pulls).toBeUndefined()
  }, 60_000)
})
