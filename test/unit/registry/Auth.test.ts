import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import {
  basicAuthorization,
  type Challenge,
  parseTokenResponse,
  parseWwwAuthenticate,
  pickChallenge,
  pullScope,
  TokenCache,
  tokenRequest,
} from "../../../src/registry/Auth.ts"
import { parseRemoteUrl, type RemoteUrl } from "../../../src/registry/RemoteUrl.ts"

describe("parseWwwAuthenticate", () => {
  test.each<[string, ReadonlyArray<Challenge>]>([
    [
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
      [{ scheme: "bearer", params: { realm: "https://auth.example/token", service: "registry.example", scope: "repository:a/b:pull" } }],
    ],
    ['Basic realm="als-test"', [{ scheme: "basic", params: { realm: "als-test" } }]],
    // a quoted value with commas and an escaped quote; spaces around '='
    [
      'Bearer realm = "https://a/t", scope="repository:x:pull,push", error="insufficient_scope", note="say \\"hi\\""',
      [{ scheme: "bearer", params: { realm: "https://a/t", scope: "repository:x:pull,push", error: "insufficient_scope", note: 'say "hi"' } }],
    ],
    // two challenges in one header, unquoted token values, scheme case
    [
      'BASIC realm=r1, Bearer realm="https://a/t",service=s',
      [
        { scheme: "basic", params: { realm: "r1" } },
        { scheme: "bearer", params: { realm: "https://a/t", service: "s" } },
      ],
    ],
    ["Negotiate", [{ scheme: "negotiate", params: {} }]],
    ["", []],
  ])("%s", (header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected)
  })

  test("pickChallenge prefers Bearer with a realm, else Basic", () => {
    expect(pickChallenge(parseWwwAuthenticate('Basic realm="x", Bearer realm="https://a/t"'))?.scheme).toBe("bearer")
    expect(pickChallenge(parseWwwAuthenticate('Bearer service="no-realm", Basic realm="x"'))?.scheme).toBe("basic")
    expect(pickChallenge(parseWwwAuthenticate("Negotiate"))).toBeUndefined()
  })
})

describe("token requests", () => {
  const ch = { scheme: "bearer", params: { realm: "https://auth.example/token?x=1", service: "reg.example" } }
  const realm = Either.getOrThrow(parseRemoteUrl(ch.params.realm)) as RemoteUrl

  test("anonymous GET with service and scope", () => {
    const r = tokenRequest(realm, ch, pullScope("library/alpine"), undefined)
    const u = new URL(r.url)
    expect(u.origin + u.pathname).toBe("https://auth.example/token")
    expect(u.searchParams.get("x")).toBe("1")
    expect(u.searchParams.get("service")).toBe("reg.example")
    expect(u.searchParams.get("scope")).toBe("repository:library/alpine:pull")
    expect(r.init.method).toBe("GET")
    expect((r.init.headers as Record<string, string>).authorization).toBeUndefined()
  })

  test("several scopes become several scope parameters", () => {
    const r = tokenRequest(realm, ch, "repository:a:pull repository:b:pull", undefined)
    expect(new URL(r.url).searchParams.getAll("scope")).toEqual(["repository:a:pull", "repository:b:pull"])
  })

  test("GET with Basic credentials and account", () => {
    const r = tokenRequest(realm, ch, "repository:a:pull", { username: "u", password: "p:w", source: "t" })
    expect(new URL(r.url).searchParams.get("account")).toBe("u")
    expect((r.init.headers as Record<string, string>).authorization).toBe(`Basic ${btoa("u:p:w")}`)
  })

  test("an identity token becomes an OAuth2 refresh-token POST", () => {
    const r = tokenRequest(realm, ch, "repository:a:pull", { username: "", password: "", identityToken: "rt-1", source: "t" })
    expect(r.init.method).toBe("POST")
    const form = new URLSearchParams(r.init.body as string)
    expect(form.get("grant_type")).toBe("refresh_token")
    expect(form.get("refresh_token")).toBe("rt-1")
    expect(form.get("service")).toBe("reg.example")
    expect(form.get("scope")).toBe("repository:a:pull")
  })

  test("basicAuthorization encodes UTF-8", () => {
    expect(basicAuthorization({ username: "ü", password: "x" })).toBe(`Basic ${Buffer.from("ü:x").toString("base64")}`)
  })
})

describe("parseTokenResponse", () => {
  test("token with expires_in", () => {
    const t = Either.getOrThrow(parseTokenResponse('{"token":"abc","expires_in":300}', 1_000))
    expect(t.token).toBe("abc")
    expect(t.expiresAt).toBe(1_000 + 290_000) // renewed 10 s early
  })
  test("access_token, and 60 s when expires_in is missing", () => {
    const t = Either.getOrThrow(parseTokenResponse('{"access_token":"xyz"}', 0))
    expect(t.token).toBe("xyz")
    expect(t.expiresAt).toBe(54_000)
  })
  test("token wins over access_token", () => {
    expect(Either.getOrThrow(parseTokenResponse('{"token":"a","access_token":"b"}', 0)).token).toBe("a")
  })
  test.each(["not json", "{}", '{"token":""}', '{"token":5}'])("refuses %j", (text) => {
    expect(Either.isLeft(parseTokenResponse(text, 0))).toBe(true)
  })
})

describe("TokenCache", () => {
  const ch = { scheme: "bearer", params: { realm: "https://a/t", service: "s" } }
  test("keys by realm, service, scope and user; expires", () => {
    const cache = new TokenCache()
    const k1 = TokenCache.key(ch, "repository:a:pull", undefined)
    const k2 = TokenCache.key(ch, "repository:b:pull", undefined)
    const k3 = TokenCache.key(ch, "repository:a:pull", { username: "u", password: "p", source: "x" })
    expect(new Set([k1, k2, k3]).size).toBe(3)
    cache.set(k1, { token: "t1", expiresAt: 100 })
    expect(cache.get(k1, 99)).toBe("t1")
    expect(cache.get(k2, 99)).toBeUndefined()
    expect(cache.get(k1, 100)).toBeUndefined()
    expect(cache.size).toBe(0)
  })
})
