/**
 * Authentication against real docker-registry instances: htpasswd (Basic) and token auth
 * (Bearer, with a JWT-signing token server on 127.0.0.1 that the registry trusts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Effect } from "effect"
import type { Digest } from "../../../src/domain/Digest.ts"
import {
  type BuiltImage,
  buildLayer,
  makeTempDir,
  pushLayout,
  type RegistryHandle,
  startRegistry,
  startTokenServer,
  type TokenServer,
  writeOciImage,
} from "../../lib/registry.ts"
import { failure, ok, ref, sha256Of, withClient } from "./client.ts"

const user = "alice"
const pass = "s3cret:with:colons"
let tmp: string
let image: BuiltImage

beforeAll(async () => {
  tmp = makeTempDir("als-auth-")
  image = writeOciImage(join(tmp, "layout"), "1", { os: "linux", architecture: "amd64" }, [await buildLayer({ "etc/motd": "private\n" })])
})

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true })
})

describe("htpasswd (Basic)", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { user, pass } })
    await pushLayout(join(tmp, "layout"), "1", `${registry.host}/private/app:1`, { creds: `${user}:${pass}` })
  }, 30_000)
  afterAll(async () => {
    await registry?.stop()
  })

  test("the registry asks for Basic", async () => {
    expect(ok(await withClient((c) => c.ping(registry.host))).auth).toBe("basic")
  })

  test("--creds: resolve and stream a blob", async () => {
    const r = ok(
      await withClient(
        (c) =>
          Effect.gen(function* () {
            const resolved = yield* c.resolve(ref(`${registry.host}/private/app:1`))
            const b = yield* c.blob(resolved.ref, resolved.layers[0].digest)
            return { resolved, blob: yield* Effect.promise(() => sha256Of(b.body)) }
          }),
        { keychain: { creds: `${user}:${pass}` } },
      ),
    )
    expect(r.resolved.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(r.blob.digest).toBe(image.layers[0].digest)
  })

  test("no credentials: Unauthorized telling how to log in", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/private/app:1`))))
    expect(e.code).toBe("Unauthorized")
    expect(e.status).toBe(401)
    expect(e.message).toContain("podman login")
    expect(e.message).toContain("--creds")
  })

  test("wrong password: Unauthorized naming where the credentials came from", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/private/app:1`)), { keychain: { creds: `${user}:wrong` } }))
    expect(e.code).toBe("Unauthorized")
    expect(e.message).toContain("--creds")
    expect(e.message).toMatch(/rejected the credentials/)
  })

  test("credentials from an auth file (--authfile)", async () => {
    const authfile = join(tmp, "auth.json")
    writeFileSync(authfile, JSON.stringify({ auths: { [`${registry.host}/private`]: { auth: Buffer.from(`${user}:${pass}`).toString("base64") } } }))
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/private/app:1`)), { keychain: { authfile, env: {} } }))
    expect(r.manifestDigest).toBe(image.manifestDigest as Digest)
  })

  test("credentials from podman's default auth file ($XDG_RUNTIME_DIR/containers/auth.json)", async () => {
    const run = join(tmp, "run")
    const { mkdirSync } = await import("node:fs")
    mkdirSync(join(run, "containers"), { recursive: true })
    writeFileSync(
      join(run, "containers/auth.json"),
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${user}:${pass}`).toString("base64") } } }),
    )
    const r = ok(
      await withClient((c) => c.resolve(ref(`${registry.host}/private/app:1`)), {
        keychain: { env: { XDG_RUNTIME_DIR: run, HOME: join(tmp, "nohome") } },
      }),
    )
    expect(r.layers).toHaveLength(1)
  })
})

describe("token auth (Bearer)", () => {
  let tokens: TokenServer
  let registry: RegistryHandle
  beforeAll(async () => {
    tokens = await startTokenServer({ users: { [user]: pass }, refreshTokens: { "refresh-abc": user } })
    registry = await startRegistry({ token: tokens })
    await pushLayout(join(tmp, "layout"), "1", `${registry.host}/team/app:1`, { creds: `${user}:${pass}` })
  }, 30_000)
  afterAll(async () => {
    await registry?.stop()
    await tokens?.stop()
  })

  test("challenge → token with the pull scope → request; one token serves a whole pull", async () => {
    const before = tokens.requests.length
    const r = ok(
      await withClient(
        (c) =>
          Effect.gen(function* () {
            const resolved = yield* c.resolve(ref(`${registry.host}/team/app:1`))
            const again = yield* c.resolve(ref(`${registry.host}/team/app@${resolved.manifestDigest}`))
            const b = yield* c.blob(resolved.ref, resolved.layers[0].digest)
            return { resolved, again, blob: yield* Effect.promise(() => sha256Of(b.body)) }
          }),
        { keychain: { creds: `${user}:${pass}` } },
      ),
    )
    expect(r.resolved.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(r.again.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(r.blob.digest).toBe(image.layers[0].digest)
    const made = tokens.requests.slice(before)
    // manifest, config, manifest by digest, config, blob: five requests, one token
    expect(made).toEqual([
      { method: "GET", scopes: ["repository:team/app:pull"], service: tokens.service, user, grantType: null },
    ])
  })

  test("a redirect to another origin: the Bearer token stays behind, the blob still verifies", async () => {
    const layer = image.layers[0]
    const storageSaw: Array<string | null> = []
    const storage = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        storageSaw.push(req.headers.get("authorization"))
        return new Response(layer.blob, { headers: { "content-length": String(layer.size) } })
      },
    })
    const frontSaw: Array<string | null> = []
    const front = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        const url = new URL(req.url)
        frontSaw.push(req.headers.get("authorization"))
        if (url.pathname.endsWith(`/blobs/${layer.digest}`) && req.headers.get("authorization")?.startsWith("Bearer ")) {
          return new Response(null, { status: 307, headers: { location: `http://127.0.0.1:${storage.port}/cdn/${layer.digest}` } })
        }
        const headers = new Headers(req.headers)
        headers.delete("host")
        const res = await fetch(`${registry.url}${url.pathname}${url.search}`, { method: req.method, headers, redirect: "manual" })
        return new Response(res.body, { status: res.status, headers: res.headers })
      },
    })
    try {
      const r = ok(
        await withClient(
          (c) =>
            Effect.gen(function* () {
              const b = yield* c.blob(ref(`127.0.0.1:${front.port}/team/app:1`), layer.digest as Digest)
              return yield* Effect.promise(() => sha256Of(b.body))
            }),
          { keychain: { creds: `${user}:${pass}` } },
        ),
      )
      expect(r.digest).toBe(layer.digest)
      // the registry got the token; the other origin got nothing that authenticates us
      expect(frontSaw.some((a) => a?.startsWith("Bearer "))).toBe(true)
      expect(storageSaw).toEqual([null])
    } finally {
      front.stop(true)
      storage.stop(true)
    }
  })

  test("a token per repository scope", async () => {
    const before = tokens.requests.length
    ok(
      await withClient(
        (c) =>
          Effect.gen(function* () {
            yield* c.resolve(ref(`${registry.host}/team/app:1`))
            // another repository needs another scope, hence another token; this one is unknown
            yield* Effect.either(c.resolve(ref(`${registry.host}/team/other:1`)))
          }),
        { keychain: { creds: `${user}:${pass}` } },
      ),
    )
    expect(tokens.requests.slice(before).map((r) => r.scopes)).toEqual([["repository:team/app:pull"], ["repository:team/other:pull"]])
  })

  test("anonymous: the token carries no access and the registry says Unauthorized", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/team/app:1`))))
    expect(e.code).toBe("Unauthorized")
    expect(e.message).toContain("podman login")
    expect(tokens.requests.at(-1)?.user).toBeNull()
  })

  test("wrong password: the token server refuses and the message says whose credentials", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/team/app:1`)), { keychain: { creds: `${user}:nope` } }))
    expect(e.code).toBe("Unauthorized")
    expect(e.message).toMatch(/token server .* rejected the credentials from --creds/)
  })

  test("a cached token is renewed when it expires", async () => {
    tokens.lifetimes.expiresIn = 1
    tokens.lifetimes.jwtLifetime = 1
    const before = tokens.requests.length
    try {
      ok(
        await withClient(
          (c) =>
            Effect.gen(function* () {
              yield* c.resolve(ref(`${registry.host}/team/app:1`))
              yield* Effect.sleep("1100 millis")
              yield* c.resolve(ref(`${registry.host}/team/app:1`))
            }),
          { keychain: { creds: `${user}:${pass}` } },
        ),
      )
    } finally {
      tokens.lifetimes.expiresIn = tokens.lifetimes.jwtLifetime = 300
    }
    expect(tokens.requests.length - before).toBe(2)
  })

  test("a token the registry refuses: the 401 challenge gets a fresh token, once", async () => {
    tokens.badTokens = 1
    const before = tokens.requests.length
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/team/app:1`)), { keychain: { creds: `${user}:${pass}` } }))
    expect(r.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(tokens.requests.length - before).toBe(2)
  })

  test("only once: a second refused token is Unauthorized", async () => {
    tokens.badTokens = 5
    const before = tokens.requests.length
    try {
      const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/team/app:1`)), { keychain: { creds: `${user}:${pass}` } }))
      expect(e.code).toBe("Unauthorized")
    } finally {
      tokens.badTokens = 0
    }
    expect(tokens.requests.length - before).toBe(2)
  })

  test("an identity token (OAuth2 refresh token) from an auth file", async () => {
    const authfile = join(tmp, "idtoken.json")
    writeFileSync(authfile, JSON.stringify({ auths: { [registry.host]: { identitytoken: "refresh-abc" } } }))
    const before = tokens.requests.length
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/team/app:1`)), { keychain: { authfile, env: {} } }))
    expect(r.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(tokens.requests.slice(before)).toEqual([
      { method: "POST", scopes: ["repository:team/app:pull"], service: tokens.service, user, grantType: "refresh_token" },
    ])
  })
})

describe("token auth with anonymous pull", () => {
  let tokens: TokenServer
  let registry: RegistryHandle
  beforeAll(async () => {
    tokens = await startTokenServer({ users: { [user]: pass }, anonymousPull: true, accessTokenField: true })
    registry = await startRegistry({ token: tokens })
    await pushLayout(join(tmp, "layout"), "1", `${registry.host}/public/app:1`, { creds: `${user}:${pass}` })
  }, 30_000)
  afterAll(async () => {
    await registry?.stop()
    await tokens?.stop()
  })

  test("an anonymous token (sent as access_token) is enough to pull", async () => {
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/public/app:1`))))
    expect(r.manifestDigest).toBe(image.manifestDigest as Digest)
    expect(tokens.requests.at(-1)).toMatchObject({ user: null, scopes: ["repository:public/app:pull"] })
  })
})
