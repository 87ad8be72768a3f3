import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import { parseRemoteUrl, quoteUrl, type RemoteUrl, resolveLocation } from "../../../src/registry/RemoteUrl.ts"

const ok = (e: Either.Either<RemoteUrl, string>) => {
  if (Either.isLeft(e)) throw new Error(`refused: ${e.left}`)
  return e.right as string
}
const why = (e: Either.Either<RemoteUrl, string>) => {
  if (Either.isRight(e)) throw new Error(`accepted: ${e.right}`)
  return e.left
}

describe("a URL a registry names (a Bearer realm)", () => {
  test("http and https with a host are taken, normalized", () => {
    expect(ok(parseRemoteUrl("https://auth.example/token?x=1"))).toBe("https://auth.example/token?x=1")
    expect(ok(parseRemoteUrl("http://127.0.0.1:5000/token"))).toBe("http://127.0.0.1:5000/token")
    expect(ok(parseRemoteUrl("HTTPS://Auth.Example/t"))).toBe("https://auth.example/t")
  })

  test("every other scheme is refused, naming it", () => {
    for (const [raw, scheme] of [
      ["file:///etc/passwd", "file:"],
      ["FILE:///etc/passwd", "file:"],
      ["data:application/json,{\"token\":\"x\"}", "data:"],
      ["ftp://files.example/token", "ftp:"],
      ["unix:/var/run/docker.sock", "unix:"],
      ["javascript:alert(1)", "javascript:"],
      ["blob:https://a.example/uuid", "blob:"],
      ["ws://a.example/token", "ws:"],
    ] as const) {
      const reason = why(parseRemoteUrl(raw))
      expect({ raw, reason }).toEqual({ raw, reason: expect.stringContaining(`is a ${scheme} URL; only http and https are followed`) })
    }
  })

  test("relative, empty, odd characters, credentials in the URL: refused", () => {
    expect(why(parseRemoteUrl("/token"))).toMatch(/not an absolute URL/)
    expect(why(parseRemoteUrl(""))).toMatch(/empty/)
    expect(why(parseRemoteUrl("https://auth.example/to ken"))).toMatch(/whitespace, control characters or backslashes/)
    expect(why(parseRemoteUrl("https://auth.example/\ttoken"))).toMatch(/whitespace/)
    expect(why(parseRemoteUrl("http:\\\\evil.example/token"))).toMatch(/backslashes/)
    expect(why(parseRemoteUrl("https://u:p@auth.example/token"))).toMatch(/user name or password/)
    expect(why(parseRemoteUrl("https://u@auth.example/token"))).toMatch(/user name or password/)
    expect(why(parseRemoteUrl("http://[::1/"))).toMatch(/not a URL/)
  })
})

describe("a redirect's Location", () => {
  const base = ok(parseRemoteUrl("https://reg.example:5000/v2/app/blobs/sha256:aa")) as RemoteUrl

  test("absolute http(s) anywhere; relative on the same origin", () => {
    expect(ok(resolveLocation("https://cdn.example/b?sig=1", base))).toBe("https://cdn.example/b?sig=1")
    expect(ok(resolveLocation("http://cdn.example/b", base))).toBe("http://cdn.example/b")
    expect(ok(resolveLocation("/storage/b", base))).toBe("https://reg.example:5000/storage/b")
    expect(ok(resolveLocation("./sha256:bb", base))).toBe("https://reg.example:5000/v2/app/blobs/sha256:bb")
    expect(ok(resolveLocation("?part=2", base))).toBe("https://reg.example:5000/v2/app/blobs/sha256:aa?part=2")
  })

  test("local schemes, and relative forms that lead elsewhere, are refused", () => {
    expect(why(resolveLocation("file:///etc/shadow", base))).toMatch(/is a file: URL/)
    expect(why(resolveLocation("data:,x", base))).toMatch(/is a data: URL/)
    expect(why(resolveLocation("//evil.example/b", base))).toMatch(/relative but leads to https:\/\/evil\.example; a relative Location stays on https:\/\/reg\.example:5000/)
    expect(why(resolveLocation("\\\\evil.example/b", base))).toMatch(/backslashes/)
    expect(why(resolveLocation("/\\evil.example/b", base))).toMatch(/backslashes/)
    expect(why(resolveLocation("\n//evil.example/b", base))).toMatch(/control characters/)
    expect(why(resolveLocation("", base))).toMatch(/empty Location/)
    expect(why(resolveLocation("https://u:p@cdn.example/b", base))).toMatch(/user name or password/)
  })
})

test("a refused value is quoted with control characters escaped, and long ones cut", () => {
  expect(quoteUrl("file:///\u001b[31mx")).toBe('"file:///\\u001b[31mx"')
  const long = `https://a.example/${"x".repeat(500)}`
  const q = quoteUrl(long)
  expect(q.length).toBeLessThan(260)
  expect(q).toMatch(/… \(518 characters\)$/)
})
