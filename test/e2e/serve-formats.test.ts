// Issue 13's image list for `als serve` with podman 4.3.1, beside serve-podman4.test.ts (OCI
// gzip and zstd, an index, whiteouts): a Docker v2s2 image (Docker media types for the manifest
// and the layers) and the 50,000-file image. An empty store each time: every layer looked up
// through the mount, pulled by als, skipped by podman, and the tree equals a plain pull's.
// Real docker-registry on 127.0.0.1, real podman and skopeo; nothing is skipped.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { als, alsLog } from "../lib/als.ts"
import { buildFeatureImage, buildManySmallFilesImage, inspectRemote, push, type PushedImage } from "../lib/images.ts"
import { compareTrees } from "../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { runOk } from "../lib/sh.ts"
import { b64, expectAllSkipped, MIN, Resources } from "./support.ts"
import { fetchesPerLayer, type Serving, startServe, stopServers } from "./serveSupport.ts"

const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

let registry: RegistryHandle
const res = new Resources()
const podmen = new Resources()
const servers: Serving[] = []

beforeAll(async () => {
  registry = await startRegistry()
}, 10 * MIN)

afterAll(async () => {
  await podmen.cleanup().catch(() => undefined)
  await stopServers(servers)
  await res.cleanup()
  await registry?.stop()
}, 5 * MIN)

/** podman 4 pulls `pushed` through a fresh `als serve` on an empty store; checked against a plain pull. */
const pullThroughServe = async (pushed: PushedImage): Promise<void> => {
  const root = res.tempDir("serve-fmt-store")
  const mnt = res.tempDir("serve-fmt-mnt")
  const server = await startServe(root, mnt, ["--lazy=false"])
  servers.push(server)

  const podman = await podmen.podman4()
  const r = await podman.pull(pushed.ref, { als: { root: mnt } })
  expectAllSkipped(r, pushed.layers.map((l) => l.digest), `podman 4 pull of ${pushed.ref} through als serve`)
  expect(r.alsWarnings).toEqual([])
  expect(podman.additionalLayers().sort()).toEqual(pushed.layers.map((l) => `${mnt}/${b64(pushed.ref)}/${l.digest}`).sort())

  const plain = await podmen.podman4()
  await plain.pull(pushed.ref)
  expect(await compareTrees(await plain.imageMount(pushed.ref), await podman.imageMount(pushed.ref))).toEqual([])
  await podman.imageUnmount(pushed.ref)
  await plain.imageUnmount(pushed.ref)

  const events = await alsLog(root)
  expect(Object.fromEntries(fetchesPerLayer(events))).toEqual(Object.fromEntries(pushed.layers.map((l) => [l.digest, 1])))
  expect((await als(["audit", "--root", root])).exitCode).toBe(0)
  await podmen.cleanup()
  expect(await server.stop("SIGTERM")).toBe(0)
}

test("a Docker v2s2 image (Docker manifest and layer media types): served through the mount, every layer skipped, the tree equals a plain pull's", async () => {
  const oci = await push(await buildFeatureImage(), registry.host, "serve/feature-oci", "1")
  // skopeo converts the manifest to Docker schema 2 on the way (the layers keep their bytes)
  await runOk(
    ["skopeo", "copy", "--quiet", "--format", "v2s2", "--src-tls-verify=false", "--dest-tls-verify=false",
      `docker://${oci.ref}`, `docker://${registry.host}/serve/feature-v2s2:1`],
    { timeoutMs: 10 * MIN },
  )
  const pushed = await inspectRemote(registry.host, "serve/feature-v2s2", "1")
  expect(pushed.mediaType).toBe(DOCKER_MANIFEST)
  expect(pushed.layers.length).toBeGreaterThan(1)
  for (const l of pushed.layers) expect(l.mediaType).toBe(DOCKER_LAYER)
  await pullThroughServe(pushed)
}, 15 * MIN)

test("the 50,000-file image (4 layers, hardlinks, symlinks, xattrs, whiteouts): served through the mount, every layer skipped, the tree equals a plain pull's", async () => {
  const pushed = await push(await buildManySmallFilesImage({ files: 50_000, layers: 4 }), registry.host, "serve/small-50k", "1")
  expect(pushed.layers.length).toBe(4)
  await pullThroughServe(pushed)
}, 20 * MIN)
