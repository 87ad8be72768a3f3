/**
 * The client over an unreliable or indirect network: a front server on 127.0.0.1 proxies a
 * real htpasswd docker-registry, redirects blob GETs to a "storage" server on another port
 * (which records the headers it gets), and injects 5xx/429 answers, stalls and timeouts on
 * demand. Plus a self-signed TLS registry.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { rmSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import type { Digest } from "../../../src/domain/Digest.ts"
import { RegistryError } from "../../../src/registry/RegistryError.ts"
import {
  type BuiltImage,
  buildLayer,
  makeTempDir,
  pushLayout,
  type RegistryHandle,
  startRegistry,
  writeOciImage,
} from "../../lib/registry.ts"
import { failure, ok, ref, sha256Of, withClient } from "./client.ts"

const user = "bob"
const pass = "hunter2"
const basic = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`
const creds = { creds: `${user}:${pass}` }

let tmp: string
let upstream: RegistryHandle
let image: BuiltImage

interface Seen {
  readonly method: string
  readonly path: string
  readonly authorization: string | null
}
const frontSeen: Seen[] = []
const storageSeen: Seen[] = []

type Fault = (req: Request) => Response | Promise<Response> | undefined
/** Faults consumed in order by matching requests at the front server. */
const faults: Array<{ match: RegExp; fault: Fault }> = []
let redirectBlobs = true
let storageStatus: number | undefined

let front: ReturnType<typeof Bun.serve>
let storage: ReturnType<typeof Bun.serve>
const pending = new Set<() => void>()

const never = () =>
  new Promise<Response>((resolve) => {
    // resolved only when the test ends, so the server can stop
    pending.add(() => resolve(new Response("late", { status: 503 })))
  })

const proxy = async (req: Request, url: URL) => {
  const headers = new Headers(req.headers)
  headers.delete("host")
  const res = await fetch(`${upstream.url}${url.pathname}${url.search}`, { method: req.method, headers, redirect: "manual" })
  return new Response(res.body, { status: res.status, headers: res.headers })
}

beforeAll(async () => {
  tmp = makeTempDir("als-net-")
  upstream = await startRegistry({ htpasswd: { user, pass } })
  image = writeOciImage(join(tmp, "layout"), "1", { os: "linux", architecture: "amd64" }, [
    await buildLayer({ "a.txt": "a".repeat(100_000) }),
    await buildLayer({ "b.txt": "b\n" }),
  ])
  await pushLayout(join(tmp, "layout"), "1", `${upstream.host}/net/app:1`, { creds: `${user}:${pass}` })

  storage = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url)
      storageSeen.push({ method: req.method, path: url.pathname, authorization: req.headers.get("authorization") })
      if (storageStatus) return new Response("denied by storage", { status: storageStatus })
      // the storage host fetches the blob with its own access, as a CDN would
      const res = await fetch(`${upstream.url}/v2${url.pathname}`, { headers: { authorization: basic } })
      return new Response(res.body, { status: res.status, headers: res.headers })
    },
  })

  front = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url)
      frontSeen.push({ method: req.method, path: url.pathname, authorization: req.headers.get("authorization") })
      const i = faults.findIndex((f) => f.match.test(url.pathname))
      if (i !== -1) {
        const [{ fault }] = faults.splice(i, 1)
        const r = await fault(req)
        if (r) return r
      }
      const blob = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname)
      if (blob && req.method === "GET" && redirectBlobs) {
        // only an authenticated client gets the redirect, as real registries do
        if (req.headers.get("authorization") !== basic) return proxy(req, url)
        return new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${storage.port}/${blob[1]}/blobs/${blob[2]}` } })
      }
      return proxy(req, url)
    },
  })
}, 30_000)

afterAll(async () => {
  try {
    for (const release of pending) release()
    await front?.stop(true)
    await storage?.stop(true)
  } finally {
    await upstream?.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
})

const frontRef = (s = "net/app:1") => ref(`127.0.0.1:${front.port}/${s}`)

const resetScene = () => {
  frontSeen.length = 0
  storageSeen.length = 0
  faults.length = 0
  redirectBlobs = true
  storageStatus = undefined
}

describe("redirects", () => {
  test("blob GETs follow the redirect to another host, and the credentials stay behind", async () => {
    resetScene()
    const r = ok(
      await withClient(
        (c) =>
          Effect.gen(function* () {
            const resolved = yield* c.resolve(frontRef())
            const b = yield* c.blob(resolved.ref, resolved.layers[0].digest)
            return { resolved, blob: yield* Effect.promise(() => sha256Of(b.body)) }
          }),
        { keychain: creds },
      ),
    )
    expect(r.resolved.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(r.blob.digest).toBe(image.layers[0].digest)
    // the config blob and the layer blob both came from the storage host
    expect(storageSeen.map((s) => s.path)).toEqual([`/net/app/blobs/${image.configDigest}`, `/net/app/blobs/${image.layers[0].digest}`])
    expect(storageSeen.every((s) => s.authorization === null)).toBe(true)
    // while the registry itself got them on the same requests
    const blobGets = frontSeen.filter((s) => s.path.includes("/blobs/"))
    expect(blobGets).toHaveLength(2)
    expect(blobGets.every((s) => s.authorization === basic)).toBe(true)
  })

  test("a storage host that refuses: Denied, saying it was the storage host", async () => {
    resetScene()
    storageStatus = 403
    const e = failure(await withClient((c) => c.resolve(frontRef()), { keychain: creds }))
    expect(e.code).toBe("Denied")
    expect(e.status).toBe(403)
    expect(e.message).toContain(`blob storage at 127.0.0.1:${storage.port}`)
  })

  test("a redirect loop ends with BadResponse", async () => {
    resetScene()
    for (let i = 0; i < 20; i++) {
      faults.push({
        match: /\/manifests\//,
        fault: (req) => new Response(null, { status: 302, headers: { location: new URL(req.url).pathname } }),
      })
    }
    const e = failure(await withClient((c) => c.resolve(frontRef()), { keychain: creds }))
    expect(e.code).toBe("BadResponse")
    expect(e.message).toMatch(/more than 10 redirects/)
  })
})

describe("retries", () => {
  test("503 then 429 (Retry-After 0) are retried and the pull succeeds", async () => {
    resetScene()
    faults.push(
      { match: /\/manifests\//, fault: () => new Response("busy", { status: 503, headers: { "retry-after": "0" } }) },
      { match: /\/manifests\//, fault: () => new Response("slow down", { status: 429, headers: { "retry-after": "0" } }) },
    )
    const r = ok(await withClient((c) => c.resolve(frontRef()), { keychain: creds, config: { retryBaseMs: 10 } }))
    expect(r.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(frontSeen.filter((s) => s.path.includes("/manifests/"))).toHaveLength(3)
  })

  test("a long Retry-After is capped", async () => {
    resetScene()
    faults.push({ match: /\/manifests\//, fault: () => new Response("busy", { status: 503, headers: { "retry-after": "3600" } }) })
    const started = Date.now()
    ok(await withClient((c) => c.resolve(frontRef()), { keychain: creds, config: { retryMaxDelayMs: 200 } }))
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(190)
    expect(took).toBeLessThan(3000)
  })

  test("retries are bounded: ServerError with the registry's message", async () => {
    resetScene()
    for (let i = 0; i < 5; i++) {
      faults.push({
        match: /\/manifests\//,
        fault: () => Response.json({ errors: [{ code: "UNAVAILABLE", message: "database down" }] }, { status: 500 }),
      })
    }
    const e = failure(await withClient((c) => c.resolve(frontRef()), { keychain: creds, config: { retries: 2, retryBaseMs: 10 } }))
    expect(e.code).toBe("ServerError")
    expect(e.status).toBe(500)
    expect(e.message).toContain("UNAVAILABLE: database down")
    expect(e.message).toMatch(/try again later/)
    expect(frontSeen.filter((s) => s.path.includes("/manifests/"))).toHaveLength(3)
  })

  test("a 404 is not retried", async () => {
    resetScene()
    failure(await withClient((c) => c.resolve(frontRef("net/app:missing")), { keychain: creds, config: { retryBaseMs: 10 } }))
    expect(frontSeen.filter((s) => s.path.includes("/manifests/"))).toHaveLength(1)
  })
})

describe("timeouts", () => {
  test("no answer within the request timeout: Timeout", async () => {
    resetScene()
    faults.push({ match: /\/manifests\//, fault: never })
    const e = failure(await withClient((c) => c.resolve(frontRef()), { keychain: creds, config: { requestTimeoutMs: 300, retries: 0 } }))
    expect(e.code).toBe("Timeout")
    expect(e.message).toContain(`127.0.0.1:${front.port}`)
  })

  test("a timed-out attempt is retried within the request timeout", async () => {
    resetScene()
    faults.push({ match: /\/manifests\//, fault: never })
    const r = ok(
      await withClient((c) => c.resolve(frontRef()), { keychain: creds, config: { attemptTimeoutMs: 300, requestTimeoutMs: 10_000, retries: 1, retryBaseMs: 10 } }),
    )
    expect(r.manifestDigest).toBe(image.manifestDigest as Digest)
  })

  test("a blob body that stalls: the stream throws a Timeout RegistryError", async () => {
    resetScene()
    redirectBlobs = false
    faults.push({
      match: /\/blobs\/sha256:/,
      fault: (req) =>
        req.method === "GET" && req.url.endsWith(image.layers[0].digest)
          ? new Response(
              new ReadableStream({
                start(controller) {
                  controller.enqueue(new Uint8Array(1000))
                  pending.add(() => {
                    try {
                      controller.close()
                    } catch {
                      // already cancelled by the client
                    }
                  })
                },
              }),
              { status: 200, headers: { "content-length": String(image.layers[0].size) } },
            )
          : undefined,
    })
    const r = await withClient(
      (c) =>
        Effect.gen(function* () {
          const b = yield* c.blob(frontRef(), image.layers[0].digest as Digest)
          return yield* Effect.tryPromise({ try: () => sha256Of(b.body), catch: (e) => e as RegistryError })
        }),
      { keychain: creds, config: { stallTimeoutMs: 300 } },
    )
    const e = failure(r)
    expect(e).toBeInstanceOf(RegistryError)
    expect(e.code).toBe("Timeout")
    expect(e.message).toMatch(/stalled/)
  })
})

describe("TLS", () => {
  let secure: RegistryHandle
  beforeAll(async () => {
    secure = await startRegistry({ tls: true })
    await pushLayout(join(tmp, "layout"), "1", `${secure.host}/tls/app:1`)
  }, 30_000)
  afterAll(async () => {
    await secure?.stop()
  })

  test("a self-signed certificate is refused with advice when verifying", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${secure.host}/tls/app:1`)), { config: { tlsVerify: true } }))
    expect(e.code).toBe("Unreachable")
    expect(e.message).toMatch(/certificate/)
    expect(e.message).toContain("--tls-verify=false")
  })

  test("--tls-verify=false speaks https without verifying", async () => {
    const r = ok(
      await withClient(
        (c) =>
          Effect.gen(function* () {
            return { ping: yield* c.ping(secure.host), resolved: yield* c.resolve(ref(`${secure.host}/tls/app:1`)) }
          }),
        { config: { tlsVerify: false } },
      ),
    )
    expect(r.ping.scheme).toBe("https")
    expect(r.resolved.manifestDigest).toBe(image.manifestDigest as Digest)
  })
})
