import { describe, expect, test } from "bun:test"
import {
  displayReference,
  formatReference,
  InvalidReference,
  isReference,
  manifestSelector,
  parseReference,
  registryHost,
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
  // tag + digest: podman drops the tag, the digest names the image
  [`alpine:3.19@${d}`, `docker.io/library/alpine@${d}`, { registry: "docker.io", repository: "library/alpine", tag: undefined, digest: d }],
  [`quay.io/org/app@${d512}`, `quay.io/org/app@${d512}`, { registry: "quay.io", repository: "org/app", digest: d512 }],
  ["example.com/a.b/c_d/e__f/g-h/i--j:v1.0_rc-2", "example.com/a.b/c_d/e__f/g-h/i--j:v1.0_rc-2", { registry: "example.com", repository: "a.b/c_d/e__f/g-h/i--j" }],
  ["docker://alpine", "docker.io/library/alpine:latest", { registry: "docker.io", repository: "library/alpine" }],
  ["my-host.example/x", "my-host.example/x:latest", { registry: "my-host.example", repository: "x" }],
  // a first component without '.' or ':' that is not localhost is a Docker Hub namespace
  ["myhost/x", "docker.io/myhost/x:latest", { registry: "docker.io", repository: "myhost/x" }],
  // an upper-case host is a host when it has a '.' or ':'
  ["Registry.example/x", "Registry.example/x:latest", { registry: "Registry.example", repository: "x" }],
  [`a:${"t".repeat(128)}`, `docker.io/library/a:${"t".repeat(128)}`, { registry: "docker.io", repository: "library/a" }],
]

// input → the kind of podman's refusal
const invalid: ReadonlyArray<[string, string]> = [
  ["", "empty"],
  ["Alpine", "uppercase"],
  ["docker.io/Library/alpine", "uppercase"],
  // podman's fork reads an upper-case first component without '.' or ':' as a Docker Hub path
  ["Registry/x", "uppercase"],
  ["alpine:", "format"],
  ["alpine:-x", "format"],
  [`alpine:${"t".repeat(129)}`, "format"],
  ["alpine@sha256:abc", "format"],
  [`alpine@sha256:${"A".repeat(64)}`, "digest-format"],
  [`alpine@sha256:${"a".repeat(63)}`, "digest-length"],
  [`alpine@md5:${"a".repeat(32)}`, "digest-algorithm"],
  ["alpine@sha256:../../etc/passwd", "format"],
  ["a".repeat(64), "image-id"],
  [`sha256:${"a".repeat(64)}`, "image-id"],
  ["registry.example:443/", "format"],
  ["example.com//x", "format"],
  ["example.com/x/", "format"],
  ["-host.example/x", "format"],
  ["example.com:port/x", "format"],
  ["example.com/x_/y", "format"],
  ["example.com/a..b", "format"],
  ["with space", "format"],
  // the fork has no IPv6 hosts
  ["[::1]:5000/x:1", "format"],
  [`docker://alpine:3.19@${d}`, "format"],
  ["oci:/tmp/layout", "transport"],
  [`example.com/${"a".repeat(250)}`, "too-long"],
  // 245 characters as written, 263 once normalized to docker.io/library/…
  ["a".repeat(245), "too-long"],
]

describe("parseReference", () => {
  test.each(valid)("%s → %s", (input, normalized, parts) => {
    const ref = parseReference(input)
    expect(formatReference(ref)).toBe(normalized)
    expect(ref).toMatchObject(parts)
  })

  test.each(invalid)("refuses %j (%s)", (input, kind) => {
    let caught: unknown
    try {
      parseReference(input)
    } catch (e) {
      caught = e
    }
    expect(caught).toBeInstanceOf(InvalidReference)
    const e = caught as InvalidReference
    expect(e.input).toBe(input)
    expect(e.kind).toBe(kind as never)
    expect(e.message).toContain(JSON.stringify(input))
    expect(isReference(input)).toBe(false)
  })

  test("a huge input is refused at once, whatever it holds (linear time: no backtracking blow-up)", () => {
    for (const body of ["a".repeat(5000), "a-".repeat(50_000), "a/".repeat(50_000), `x@sha256:${"a".repeat(100_000)}`]) {
      const started = performance.now()
      let caught: unknown
      try {
        parseReference(`${body}!`)
      } catch (e) {
        caught = e
      }
      expect((caught as InvalidReference).kind).toBe("too-long")
      expect((caught as InvalidReference).input.length).toBeLessThanOrEqual(80)
      expect(performance.now() - started).toBeLessThan(1000)
    }
  })

  test("inputs up to the bound stay fast: the grammar's expressions do not backtrack exponentially", () => {
    // with Go's `[-]*` separator copied as is, 24 letters and a '!' took seconds
    for (const s of ["a".repeat(4000), "a-".repeat(2000), "a.".repeat(2000), "a__".repeat(1300), "a/".repeat(2000), "A".repeat(4000)]) {
      const started = performance.now()
      expect(isReference(`${s}!`)).toBe(false)
      expect(performance.now() - started).toBeLessThan(1000)
    }
  })

  test("the normalized string parses back to itself", () => {
    for (const [input] of valid) {
      const once = formatReference(parseReference(input))
      expect(formatReference(parseReference(once))).toBe(once)
    }
  })
})

describe("helpers", () => {
  test("displayReference shows tag and digest when both are known", () => {
    expect(displayReference({ ...parseReference(`alpine@${d}`), tag: "3.19" })).toBe(`docker.io/library/alpine:3.19@${d}`)
    expect(displayReference(parseReference("alpine:3.19"))).toBe("docker.io/library/alpine:3.19")
  })

  test("manifestSelector prefers the digest", () => {
    expect(manifestSelector(parseReference("alpine:3.19"))).toBe("3.19")
    expect(manifestSelector(parseReference(`alpine:3.19@${d}`))).toBe(d)
    expect(manifestSelector(parseReference(`alpine@${d}`))).toBe(d)
  })

  test("registryHost maps Docker Hub to its API host only", () => {
    expect(registryHost(parseReference("alpine"))).toBe("registry-1.docker.io")
    expect(registryHost(parseReference("127.0.0.1:5000/x"))).toBe("127.0.0.1:5000")
    expect(registryHost("quay.io")).toBe("quay.io")
  })
})
