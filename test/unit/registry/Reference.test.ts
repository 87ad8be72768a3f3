import { describe, expect, test } from "bun:test"
import {
  displayReference,
  formatReference,
  InvalidReference,
  isReference,
  manifestSelector,
  parseReference,
  registryHost,
  withDigest,
} from "../../../src/domain/Reference.ts"

const d = `sha256:${"a".repeat(64)}`
const d512 = `sha512:${"b".repeat(128)}`

// input → normalized :ref name (what podman hands the store)
const valid: ReadonlyArray<[string, string, { registry: string; repository: string; tag?: string; digest?: string }]> = [
  ["alpine", "docker.io/library/alpine:latest", { registry: "docker.io", repository: "library/alpine", tag: "latest" }],
  ["alpine:3.19", "docker.io/library/alpine:3.19", { registry: "docker.io", repository: "library/alpine", tag: "3.19" }],
  ["user/img", "docker.io/user/img:latest", { registry: "docker.io", repository: "user/img", tag: "latest" }],
  ["docker.io/alpine", "docker.io/library/alpine:latest", { registry: "docker.io", repository: "library/alpine" }],
  ["index.docker.io/library/alpine:1", "docker.io/library/alpine:1", { registry: "docker.io", repository: "library/alpine" }],
  ["docker.io/library/alpine:3.19", "docker.io/library/alpine:3.19", { registry: "docker.io", repository: "library/alpine" }],
  ["localhost/x", "localhost/x:latest", { registry: "localhost", repository: "x" }],
  ["localhost:5000/x", "localhost:5000/x:latest", { registry: "localhost:5000", repository: "x" }],
  ["127.0.0.1:5000/test/busybox:1", "127.0.0.1:5000/test/busybox:1", { registry: "127.0.0.1:5000", repository: "test/busybox", tag: "1" }],
  [`registry.example:443/a/b/c@${d}`, `registry.example:443/a/b/c@${d}`, { registry: "registry.example:443", repository: "a/b/c", digest: d }],
  [`alpine@${d}`, `docker.io/library/alpine@${d}`, { registry: "docker.io", repository: "library/alpine", digest: d }],
  // tag + digest: both kept, the digest names the image
  [`alpine:3.19@${d}`, `docker.io/library/alpine@${d}`, { registry: "docker.io", repository: "library/alpine", tag: "3.19", digest: d }],
  [`quay.io/org/app@${d512}`, `quay.io/org/app@${d512}`, { registry: "quay.io", repository: "org/app", digest: d512 }],
  ["example.com/a.b/c_d/e__f/g-h/i--j:v1.0_rc-2", "example.com/a.b/c_d/e__f/g-h/i--j:v1.0_rc-2", { registry: "example.com", repository: "a.b/c_d/e__f/g-h/i--j" }],
  ["[::1]:5000/x:1", "[::1]:5000/x:1", { registry: "[::1]:5000", repository: "x" }],
  ["docker://alpine", "docker.io/library/alpine:latest", { registry: "docker.io", repository: "library/alpine" }],
  ["my-host.example/x", "my-host.example/x:latest", { registry: "my-host.example", repository: "x" }],
  // a first component without '.' or ':' that is not localhost is a Docker Hub namespace
  ["myhost/x", "docker.io/myhost/x:latest", { registry: "docker.io", repository: "myhost/x" }],
  // an uppercase first component can only be a host
  ["Registry/x", "Registry/x:latest", { registry: "Registry", repository: "x" }],
  [`a:${"t".repeat(128)}`, `docker.io/library/a:${"t".repeat(128)}`, { registry: "docker.io", repository: "library/a" }],
]

const invalid: ReadonlyArray<[string, RegExp]> = [
  ["", /empty/],
  ["Alpine", /lowercase/],
  ["docker.io/Library/alpine", /lowercase/],
  ["alpine:", /invalid tag/],
  ["alpine:-x", /invalid tag/],
  [`alpine:${"t".repeat(129)}`, /invalid tag/],
  ["alpine@sha256:abc", /not a digest/],
  [`alpine@sha256:${"A".repeat(64)}`, /unsupported digest/],
  [`alpine@md5:${"a".repeat(32)}`, /unsupported digest/],
  ["alpine@sha256:../../etc/passwd", /not a digest/],
  ["a".repeat(64), /image ID/],
  ["registry.example:443/", /empty component|missing/],
  ["example.com//x", /empty component/],
  ["example.com/x/", /empty component/],
  ["-host.example/x", /invalid registry host/],
  ["example.com:port/x", /invalid tag|invalid registry host/],
  ["example.com/x_/y", /invalid repository path component/],
  ["example.com/a..b", /invalid repository path component/],
  ["with space", /invalid repository path component/],
  [`example.com/${"a".repeat(250)}`, /longer than 255/],
]

describe("parseReference", () => {
  test.each(valid)("%s → %s", (input, normalized, parts) => {
    const ref = parseReference(input)
    expect(formatReference(ref)).toBe(normalized)
    expect(ref).toMatchObject(parts)
  })

  test.each(invalid)("refuses %j", (input, reason) => {
    let caught: unknown
    try {
      parseReference(input)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(InvalidReference)
    const e = caught as InvalidReference
    expect(e.input).toBe(input)
    expect(e.reason).toMatch(reason)
    expect(e.message).toContain(JSON.stringify(input))
    expect(isReference(input)).toBe(false)
  })

  test("the normalized string parses back to itself", () => {
    for (const [input] of valid) {
      const once = formatReference(parseReference(input))
      expect(formatReference(parseReference(once))).toBe(once)
    }
  })
})

describe("helpers", () => {
  test("displayReference keeps tag and digest", () => {
    expect(displayReference(parseReference(`alpine:3.19@${d}`))).toBe(`docker.io/library/alpine:3.19@${d}`)
  })

  test("manifestSelector prefers the digest", () => {
    expect(manifestSelector(parseReference("alpine:3.19"))).toBe("3.19")
    expect(manifestSelector(parseReference(`alpine:3.19@${d}`))).toBe(d)
  })

  test("withDigest pins the image and drops the tag", () => {
    expect(formatReference(withDigest(parseReference("alpine:3.19"), d as never))).toBe(`docker.io/library/alpine@${d}`)
  })

  test("registryHost maps Docker Hub to its API host only", () => {
    expect(registryHost(parseReference("alpine"))).toBe("registry-1.docker.io")
    expect(registryHost(parseReference("127.0.0.1:5000/x"))).toBe("127.0.0.1:5000")
    expect(registryHost("quay.io")).toBe("quay.io")
  })
})
