// Broken and hostile images for the end-to-end tests, pushed with the registry's HTTP API (skopeo
// would refuse or repair most of them), and a tiny fake registry for what docker-registry itself
// refuses to store (a manifest naming an invalid digest, a blob that does not match its digest).

import { createHash } from "node:crypto"

export const MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
export const MT_CONFIG = "application/vnd.oci.image.config.v1+json"
export const MT_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`

/** One layer as the manifest and config will describe it (any field may lie). */
export interface LayerSpec {
  readonly blob: Uint8Array
  /** manifest descriptor; defaults: the blob's true digest and size, gzip media type */
  readonly digest?: string
  readonly size?: number
  readonly mediaType?: string
  /** config rootfs.diff_ids entry */
  readonly diffId: string
}

export interface BuiltManifest {
  readonly manifest: Uint8Array
  readonly manifestDigest: string
  readonly config: Uint8Array
  readonly configDigest: string
  /** the digests the manifest names, in order */
  readonly layerDigests: ReadonlyArray<string>
}

export const buildManifest = (layers: ReadonlyArray<LayerSpec>): BuiltManifest => {
  const config = new TextEncoder().encode(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  )
  const configDigest = sha256(config)
  const layerDigests = layers.map((l) => l.digest ?? sha256(l.blob))
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT_MANIFEST,
      config: { mediaType: MT_CONFIG, digest: configDigest, size: config.length },
      layers: layers.map((l, i) => ({
        mediaType: l.mediaType ?? MT_GZIP,
        digest: layerDigests[i],
        size: l.size ?? l.blob.length,
      })),
    }),
  )
  return { manifest, manifestDigest: sha256(manifest), config, configDigest, layerDigests }
}

const check = async (res: Response, what: string): Promise<Response> => {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`)
  return res
}

/** Monolithic blob upload (POST + PUT ?digest=); the registry verifies the digest. */
export const uploadBlob = async (registryUrl: string, repo: string, bytes: Uint8Array): Promise<string> => {
  const digest = sha256(bytes)
  const head = await fetch(`${registryUrl}/v2/${repo}/blobs/${digest}`, { method: "HEAD" })
  if (head.ok) return digest
  const start = await check(await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: "POST" }), `upload start ${digest}`)
  const loc = new URL(start.headers.get("location")!, registryUrl)
  loc.searchParams.set("digest", digest)
  await check(
    await fetch(loc, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: bytes }),
    `upload ${digest}`,
  )
  return digest
}

/** PUT a manifest; returns the response (callers check whether the registry took it). */
export const putManifest = (registryUrl: string, repo: string, tag: string, manifest: Uint8Array, mediaType = MT_MANIFEST) =>
  fetch(`${registryUrl}/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { "content-type": mediaType }, body: manifest })

/** Upload every blob (true digests), then the manifest (which may lie about them). */
export const pushImageHttp = async (registryUrl: string, repo: string, tag: string, layers: ReadonlyArray<LayerSpec>): Promise<BuiltManifest> => {
  const built = buildManifest(layers)
  await uploadBlob(registryUrl, repo, built.config)
  for (const l of layers) await uploadBlob(registryUrl, repo, l.blob)
  await check(await putManifest(registryUrl, repo, tag, built.manifest), `manifest PUT ${repo}:${tag}`)
  return built
}

export interface FakeRegistry {
  /** `127.0.0.1:PORT` */
  readonly host: string
  /** every path asked for, in order */
  readonly requests: string[]
  stop(): Promise<void>
}

/**
 * A registry that serves exactly what it is given, unchecked: `/v2/`, one manifest per
 * `repo:tag`, and blobs by the digest they are filed under (whatever their content). Plain HTTP
 * on 127.0.0.1.
 */
export const startFakeRegistry = (content: {
  readonly manifests: Readonly<Record<string, Uint8Array>>
  readonly blobs: Readonly<Record<string, Uint8Array>>
}): FakeRegistry => {
  const requests: string[] = []
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname
      requests.push(`${req.method} ${path}`)
      const head = req.method === "HEAD"
      const api = { "docker-distribution-api-version": "registry/2.0" }
      if (path === "/v2/" || path === "/v2") return Response.json({}, { headers: api })
      const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path)
      const notFound = () =>
        Response.json({ errors: [{ code: m?.[2] === "blobs" ? "BLOB_UNKNOWN" : "MANIFEST_UNKNOWN", message: "unknown" }] }, { status: 404, headers: api })
      if (!m) return notFound()
      const [, repo, kind, reference] = m
      const body = kind === "manifests" ? content.manifests[`${repo}:${reference}`] : content.blobs[reference!]
      if (!body) return notFound()
      const headers = {
        ...api,
        "content-type": kind === "manifests" ? MT_MANIFEST : "application/octet-stream",
        "content-length": String(body.length),
        ...(kind === "manifests" ? { "docker-content-digest": sha256(body) } : {}),
      }
      return new Response(head ? null : body, { headers })
    },
  })
  return {
    host: `127.0.0.1:${server.port}`,
    requests,
    async stop() {
      await server.stop(true)
    },
  }
}
