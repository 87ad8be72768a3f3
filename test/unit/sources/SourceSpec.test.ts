import { describe, expect, test } from "bun:test"
import { InvalidReference } from "../../../src/domain/Reference.ts"
import { archiveName, isFullReference, layoutName, ociArchiveName, podmanLayoutName } from "../../../src/sources/SourceName.ts"
import { formatSourceSpec, parseSourceSpec, SpecError } from "../../../src/sources/SourceSpec.ts"

describe("parseSourceSpec", () => {
  test("transport prefixes as skopeo spells them", () => {
    expect(parseSourceSpec("oci:./layout:1.0")).toEqual({ kind: "oci", path: "./layout", reference: "1.0" })
    expect(parseSourceSpec("oci:/srv/img")).toEqual({ kind: "oci", path: "/srv/img", reference: undefined })
    expect(parseSourceSpec("oci:dir:")).toEqual({ kind: "oci", path: "dir", reference: undefined })
    expect(parseSourceSpec("oci-archive:a.tar:latest")).toEqual({ kind: "oci-archive", path: "a.tar", reference: "latest" })
    expect(parseSourceSpec("docker-archive:b.tar")).toEqual({ kind: "docker-archive", path: "b.tar", reference: undefined })
    expect(parseSourceSpec("docker-archive:b.tar:busybox:latest")).toEqual({ kind: "docker-archive", path: "b.tar", reference: "busybox:latest" })
    expect(parseSourceSpec("docker-archive:b.tar:@2")).toEqual({ kind: "docker-archive", path: "b.tar", index: 2 })
  })

  test("anything else is a registry reference, with or without docker://", () => {
    expect(parseSourceSpec("alpine")).toEqual({ kind: "registry", ref: "alpine" })
    expect(parseSourceSpec("localhost:5000/x:1")).toEqual({ kind: "registry", ref: "localhost:5000/x:1" })
    expect(parseSourceSpec("docker://quay.io/a/b")).toEqual({ kind: "registry", ref: "docker://quay.io/a/b" })
  })

  test("transports als does not read, and local sources without a path, are refused with advice", () => {
    expect(() => parseSourceSpec("dir:/tmp/x")).toThrow(/does not read the dir: transport.*skopeo copy/)
    expect(() => parseSourceSpec("containers-storage:alpine")).toThrow(SpecError)
    expect(() => parseSourceSpec("oci:")).toThrow(/needs a path/)
    expect(() => parseSourceSpec("docker-archive:x.tar:@one")).toThrow(/not an image index/)
  })

  test("formatSourceSpec writes a spec back", () => {
    for (const s of ["oci:./l:1", "oci-archive:a.tar", "docker-archive:b.tar:@1", "docker-archive:b.tar:busybox:1"]) {
      expect(formatSourceSpec(parseSourceSpec(s))).toBe(s)
    }
  })
})

describe("recorded names", () => {
  test("--name wins and is normalized like a registry reference", () => {
    expect(layoutName({ name: "busybox", path: "x" })).toEqual({ name: "docker.io/library/busybox:latest", origin: "--name" })
    expect(archiveName({ name: "127.0.0.1:5000/a/b:1", repoTags: ["x:1"] })?.name).toBe("127.0.0.1:5000/a/b:1")
    expect(() => layoutName({ name: "Not/Valid", path: "x" })).toThrow(InvalidReference)
  })

  test("an OCI layout: a full ref.name annotation, else podman's own name for the path", () => {
    expect(layoutName({ path: "l", tag: "1", refName: "quay.io/org/app:1" })).toEqual({
      name: "quay.io/org/app:1",
      origin: "the layout's org.opencontainers.image.ref.name",
    })
    // verified with podman 4.3.1: `podman pull oci:test/fixtures/hello:latest` names the image so
    expect(layoutName({ path: "test/fixtures/hello", tag: "latest", refName: "latest" })?.name).toBe("localhost/test/fixtures/hello:latest")
    expect(podmanLayoutName("/srv/images/app", undefined)?.name).toBe("localhost/srv/images/app:latest")
    // a path podman cannot name (upper case, ./): a valid name derived from it
    const derived = podmanLayoutName("./My Images/App", "v2")
    expect(derived?.name).toBe("localhost/my-images/app:v2")
    expect(derived?.origin).toMatch(/derived/)
  })

  test("a docker-archive: its RepoTags read as Docker reads them", () => {
    expect(archiveName({ repoTags: ["busybox:latest"] })).toEqual({ name: "docker.io/library/busybox:latest", origin: "the archive's tags" })
    expect(archiveName({ repoTags: ["localhost/test/x:1", "other:2"] })?.name).toBe("localhost/test/x:1")
    expect(archiveName({ reference: "other:2", repoTags: ["localhost/test/x:1", "other:2"] })?.name).toBe("docker.io/library/other:2")
    expect(archiveName({ repoTags: [] })).toBeUndefined()
  })

  test("an oci-archive: ref.name as podman's NormalizeName reads it", () => {
    expect(ociArchiveName({ refName: "localhost/test/x:latest" })?.name).toBe("localhost/test/x:latest")
    expect(ociArchiveName({ refName: "app:1" })?.name).toBe("localhost/app:1")
    expect(ociArchiveName({})).toBeUndefined()
  })

  test("isFullReference tells a registry-qualified name from a tag or short name", () => {
    expect(isFullReference("localhost/a:1")).toBe(true)
    expect(isFullReference("host:5000/a")).toBe(true)
    expect(isFullReference("quay.io/a/b")).toBe(true)
    expect(isFullReference("latest")).toBe(false)
    expect(isFullReference("library/busybox:1")).toBe(false)
  })
})
