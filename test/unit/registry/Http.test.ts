import { describe, expect, test } from "bun:test"
import { classifyNetworkError, retryAfterMs, sameOrigin, withoutCredentials } from "../../../src/registry/Http.ts"
import { networkError, statusError } from "../../../src/registry/Messages.ts"
import { parseErrorBody } from "../../../src/registry/RegistryError.ts"

const bunError = (code: string, message: string) => Object.assign(new TypeError(message), { code })

describe("classifyNetworkError", () => {
  test.each([
    ["Bun: refused", bunError("ECONNREFUSED", "Unable to connect. Is the computer able to access the url?"), "refused"],
    ["Bun: DNS", bunError("ENOTFOUND", "getaddrinfo ENOTFOUND x.invalid"), "dns"],
    ["Bun: https to an http port", bunError("EPROTO", "The TLS handshake failed. Does the server speak TLS on this port?"), "tls-handshake"],
    ["Bun: self-signed", bunError("DEPTH_ZERO_SELF_SIGNED_CERT", "self signed certificate"), "tls-cert"],
    ["Bun: reset", bunError("ECONNRESET", "The socket connection was closed unexpectedly."), "reset"],
    ["Deno: refused", new TypeError("error sending request for url (http://127.0.0.1:1/v2/): client error (Connect): tcp connect error: Connection refused (os error 111)"), "refused"],
    ["Deno: DNS", new TypeError("error sending request: dns error: failed to lookup address information: Name or service not known"), "dns"],
    ["Deno: untrusted", new TypeError("client error (Connect): invalid peer certificate: UnknownIssuer"), "tls-cert"],
    ["abort", Object.assign(new Error("The operation was aborted."), { name: "AbortError" }), "timeout"],
    ["anything else", new Error("something else"), "other"],
  ])("%s", (_, e, kind) => {
    expect(classifyNetworkError(e)).toBe(kind as ReturnType<typeof classifyNetworkError>)
  })
})

describe("Retry-After", () => {
  test("seconds, dates, garbage", () => {
    expect(retryAfterMs("3", 0)).toBe(3000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000)
    expect(retryAfterMs(new Date(1_000).toUTCString(), 4_000)).toBe(0)
    expect(retryAfterMs("soon", 0)).toBeUndefined()
    expect(retryAfterMs(null, 0)).toBeUndefined()
  })
})

describe("credentials stay at the registry's origin", () => {
  test("sameOrigin compares scheme, host and port", () => {
    expect(sameOrigin("https://r.example/v2/x", "https://r.example")).toBe(true)
    expect(sameOrigin("https://r.example:443/v2/x", "https://r.example")).toBe(true)
    expect(sameOrigin("http://r.example/v2/x", "https://r.example")).toBe(false)
    expect(sameOrigin("https://r.example:5000/x", "https://r.example")).toBe(false)
    expect(sameOrigin("https://cdn.example/x", "https://r.example")).toBe(false)
    expect(sameOrigin("not a url", "https://r.example")).toBe(false)
  })
  test("withoutCredentials drops Authorization and cookies only", () => {
    expect(withoutCredentials({ Authorization: "Basic x", cookie: "a=b", accept: "*/*", range: "bytes=1-" })).toEqual({
      accept: "*/*",
      range: "bytes=1-",
    })
  })
})

describe("error messages", () => {
  const errors = (code: string, message: string) => JSON.stringify({ errors: [{ code, message, detail: {} }] })

  test("the registry's errors body is parsed", () => {
    expect(parseErrorBody(errors("DENIED", "no"))).toEqual([{ code: "DENIED", message: "no" }])
    expect(parseErrorBody("<html>")).toEqual([])
    expect(parseErrorBody('{"errors":"x"}')).toEqual([])
  })

  test("401 without credentials says how to log in; with them, where they came from", () => {
    const anon = statusError({ label: "r/x:1", what: "manifest" }, 401, "https://r.example/v2/x/manifests/1", errors("UNAUTHORIZED", "authentication required"))
    expect(anon.code).toBe("Unauthorized")
    expect(anon.message).toContain("UNAUTHORIZED: authentication required")
    expect(anon.message).toContain("podman login")
    const withCreds = statusError(
      { label: "r/x:1", what: "manifest", creds: { username: "u", password: "p", source: "/run/containers/0/auth.json" } },
      401,
      "https://r.example/v2/",
      "",
    )
    expect(withCreds.message).toContain("/run/containers/0/auth.json")
  })

  test("404s: repository, manifest, blob, not a registry", () => {
    expect(statusError({ label: "l", what: "manifest", repository: "a/b" }, 404, "https://r/v2/a/b/manifests/1", errors("NAME_UNKNOWN", "repository name not known to registry")).message).toMatch(
      /repository a\/b not found .*check the name/,
    )
    expect(statusError({ label: "l", what: "manifest" }, 404, "https://r/", errors("MANIFEST_UNKNOWN", "manifest unknown")).message).toMatch(/check the name and the tag or digest/)
    expect(statusError({ label: "l", what: "blob", digest: "sha256:1" }, 404, "https://r/", "").message).toMatch(/blob sha256:1 not found/)
    expect(statusError({ label: "l", what: "ping" }, 404, "https://r/v2/", "").message).toMatch(/not a container registry/)
  })

  test("429, 5xx, 403 and the unexpected", () => {
    expect(statusError({ label: "l", what: "manifest" }, 429, "https://r/", "")).toMatchObject({ code: "TooManyRequests", status: 429 })
    expect(statusError({ label: "l", what: "manifest" }, 502, "https://r/", "")).toMatchObject({ code: "ServerError", status: 502 })
    expect(statusError({ label: "l", what: "manifest" }, 403, "https://r/", errors("DENIED", "requested access to the resource is denied"))).toMatchObject({ code: "Denied" })
    expect(statusError({ label: "l", what: "manifest" }, 418, "https://r/", "")).toMatchObject({ code: "BadResponse" })
  })

  test("network failures name the host and what to do", () => {
    const e = networkError("r:1/x:1", { _tag: "NetFailure", kind: "tls-handshake", url: "https://127.0.0.1:5000/v2/", detail: "EPROTO" })
    expect(e.code).toBe("Unreachable")
    expect(e.message).toContain("127.0.0.1:5000")
    expect(e.message).toContain("--tls-verify=false")
    expect(networkError("l", { _tag: "NetFailure", kind: "timeout", url: "https://h/", detail: "no answer" }).code).toBe("Timeout")
  })
})
