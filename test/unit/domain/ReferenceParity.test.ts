/**
 * Parity with podman on the upstream reference test tables (vectors/references.json: every
 * reference string of containers/image's docker/reference tests, distribution/reference's tests
 * and libimage's normalize tests, each with the answer real podman 4.3.1 gave for it).
 */
import { describe, expect, test } from "bun:test"
import { formatReference, InvalidReference, parseReference, type ReferenceErrorKind } from "../../../src/domain/Reference.ts"
import table from "./vectors/references.json"

interface Vector {
  readonly input: string
  readonly from: ReadonlyArray<string>
  readonly pulls?: string
  readonly refused?: string
  readonly podmanSaid?: string
}
const vectors = table.vectors as ReadonlyArray<Vector>

/**
 * Where als answers differently from podman on purpose, and why a podman user is better served.
 * Each entry is checked: als's answer is as written here, and podman's differs.
 */
const deliberate: ReadonlyArray<{ input: string; als: { refused: ReferenceErrorKind }; why: string }> = [
  {
    input: `alpine@sha384:${"a".repeat(96)}`,
    als: { refused: "digest-algorithm" },
    why: "podman accepts a sha384 digest, but als must verify every blob it stores and checks sha256 and sha512 only; " +
      "no registry serves sha384 manifests in practice, and a clear refusal beats a pull that cannot be verified",
  },
]
const deliberateByInput = new Map(deliberate.map((d) => [d.input, d]))

/** podman's `Trying to pull NAME` split the way the fork splits a normalized name. */
const partsOf = (name: string) => {
  const at = name.indexOf("@")
  const base = at === -1 ? name : name.slice(0, at)
  const digest = at === -1 ? undefined : name.slice(at + 1)
  const colon = base.lastIndexOf(":")
  const hasTag = digest === undefined && colon > base.lastIndexOf("/")
  const repo = hasTag ? base.slice(0, colon) : base
  const slash = repo.indexOf("/")
  return {
    registry: repo.slice(0, slash),
    repository: repo.slice(slash + 1),
    tag: hasTag ? base.slice(colon + 1) : undefined,
    digest,
  }
}

const refusal = (input: string): InvalidReference | undefined => {
  try {
    parseReference(input)
    return undefined
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidReference)
    return e as InvalidReference
  }
}

const sources = Object.keys(table.sources)

describe("every upstream reference vector gets podman's answer", () => {
  for (const source of sources) {
    const mine = vectors.filter((v) => v.from.some((f) => f.startsWith(source)) && !deliberateByInput.has(v.input))
    test(`${source} (${mine.length} vectors)`, () => {
      expect(mine.length).toBeGreaterThan(0)
      const wrong: Array<string> = []
      for (const v of mine) {
        const err = refusal(v.input)
        if (v.pulls !== undefined) {
          if (err) {
            wrong.push(`${JSON.stringify(v.input)}: podman pulls ${v.pulls}, als refuses (${err.reason})`)
            continue
          }
          const ref = parseReference(v.input)
          if (formatReference(ref) !== v.pulls) wrong.push(`${JSON.stringify(v.input)}: podman ${v.pulls}, als ${formatReference(ref)}`)
          const want = partsOf(v.pulls)
          const got = { registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest }
          if (JSON.stringify(got) !== JSON.stringify(want)) {
            wrong.push(`${JSON.stringify(v.input)}: parts ${JSON.stringify(got)}, podman ${JSON.stringify(want)}`)
          }
        } else if (err === undefined) {
          wrong.push(`${JSON.stringify(v.input)}: podman refuses (${v.podmanSaid}), als accepts`)
        } else if (err.kind !== v.refused) {
          wrong.push(`${JSON.stringify(v.input)}: podman refuses as ${v.refused} (${v.podmanSaid}), als as ${err.kind} (${err.reason})`)
        } else {
          expect(err.input).toBe(v.input)
          expect(err.message).toContain(JSON.stringify(v.input))
        }
      }
      expect(wrong).toEqual([])
    })
  }

  test("the tables cover what the issue names: IPv6 hosts, upper-case hosts, docker:// name:tag@digest, IDs", () => {
    const refusedAs = (input: string) => vectors.find((v) => v.input === input)?.refused
    expect(refusedAs("[::1]:5000/repo")).toBe("format")
    expect(refusedAs("[2001:db8::1]:5000/repo:tag")).toBe("format")
    expect(refusedAs("Foo/bar")).toBe("uppercase")
    expect(refusedAs("LOCALDOMAIN/debian")).toBe("uppercase")
    expect(refusedAs(`docker://fedora:latest@sha256:${"0123456789abcdef".repeat(4)}`)).toBe("format")
    expect(refusedAs("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a")).toBe("image-id")
    expect(vectors.length).toBeGreaterThan(300)
  })
})

describe("deliberate differences from podman", () => {
  test.each(deliberate.map((d) => [d.input, d] as const))("%s", (input, d) => {
    expect(d.why.length).toBeGreaterThan(40)
    const v = vectors.find((x) => x.input === input)
    expect(v).toBeDefined()
    // podman's answer differs from als's
    expect(v?.refused).not.toBe(d.als.refused)
    expect(refusal(input)?.kind).toBe(d.als.refused)
  })
})

describe("refusals podman's pull path adds to the grammar", () => {
  // observed with podman 4.3.1: `podman pull dir:foo` opens foo/manifest.json, `oci:foo` foo/index.json …
  test.each(["dir:foo", "oci:foo", "oci-archive:foo", "docker-archive:foo", "docker-daemon:foo", "containers-storage:foo", "tarball:foo", "sif:foo", "ostree:foo"])(
    "%s names another transport, not a registry image",
    (input) => {
      expect(refusal(input)?.kind).toBe("transport")
    },
  )

  test("an image ID says what it is and what to pull instead", () => {
    const e = refusal("a".repeat(64))
    expect(e?.kind).toBe("image-id")
    expect(e?.message).toMatch(/is an image ID, not a name to pull/)
    expect(e?.message).toMatch(/NAME@sha256/)
  })

  test("an upper-case first component is explained as podman reads it: a Docker Hub path, not a host", () => {
    expect(refusal("LOCALDOMAIN/debian")?.reason).toMatch(/lowercase.*not a registry host/)
  })

  test("IPv6 hosts are named as the cause", () => {
    expect(refusal("[::1]:5000/foo")?.reason).toMatch(/IPv6/)
  })
})
