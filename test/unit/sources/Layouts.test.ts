// OCI layouts and docker-archives read as image sources: the repo fixture (a real umoci
// layout), damaged copies of it, and archives written here the way podman and docker write them.
import { afterAll, describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { gzipSync } from "node:zlib"
import { Effect, Either } from "effect"
import tar from "tar-stream"
import type { Digest } from "../../../src/domain/Digest.ts"
import type { IndexEntry } from "../../../src/domain/Manifest.ts"
import { claimedDigest, pickArchiveImage, readArchiveManifest, resolveArchive } from "../../../src/sources/DockerArchive.ts"
import { archiveTree, directoryTree } from "../../../src/sources/FileTree.ts"
import { localSource } from "../../../src/sources/LocalSource.ts"
import { pickEntry, resolveLayout } from "../../../src/sources/OciLayout.ts"
import { SourceError } from "../../../src/sources/SourceError.ts"

const FIXTURE = resolve(import.meta.dir, "../../fixtures/hello")
const amd64 = { os: "linux", architecture: "amd64" }
const dirs: string[] = []
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "als-layouts-"))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const sha256 = (b: Uint8Array | string) => `sha256:${createHash("sha256").update(b).digest("hex")}` as Digest
const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(Effect.either(e))
const sourceErr = <A, E>(r: Either.Either<A, E>): SourceError => {
  if (Either.isRight(r)) throw new Error("expected a failure")
  if (!(r.left instanceof SourceError)) throw new Error(`expected a SourceError, got ${String(r.left)}`)
  return r.left
}
const drain = async (body: AsyncIterable<Uint8Array>) => {
  const parts: Uint8Array[] = []
  for await (const c of body) parts.push(c)
  return Buffer.concat(parts)
}
const fixtureManifest = () => {
  const index = JSON.parse(readFileSync(join(FIXTURE, "index.json"), "utf8"))
  const mDigest: string = index.manifests[0].digest
  const manifest = JSON.parse(readFileSync(join(FIXTURE, "blobs/sha256", mDigest.slice(7)), "utf8"))
  const config = JSON.parse(readFileSync(join(FIXTURE, "blobs/sha256", manifest.config.digest.slice(7)), "utf8"))
  return { mDigest, manifest, config }
}

const entry = (tag: string | undefined, platform?: { os: string; architecture: string }, n = 1): IndexEntry => ({
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  digest: sha256(`${tag}${n}${platform?.architecture}`),
  size: 1,
  ...(tag ? { annotations: { "org.opencontainers.image.ref.name": tag } } : {}),
  ...(platform ? { platform } : {}),
})

describe("pickEntry", () => {
  test("a tag picks its entry; no tag picks the only one", () => {
    const a = entry("a")
    expect(pickEntry([a, entry("b")], "a", amd64)).toEqual({ _tag: "Picked", entry: a })
    expect(pickEntry([a], undefined, amd64)).toEqual({ _tag: "Picked", entry: a })
  })
  test("an unknown tag lists the layout's tags; several images without a tag are listed too", () => {
    expect(pickEntry([entry("a"), entry("b")], "c", amd64)).toEqual({ _tag: "TagNotFound", tags: ["a", "b"] })
    const amb = pickEntry([entry("a"), entry("b")], undefined, amd64)
    expect(amb).toEqual({ _tag: "Ambiguous", choices: ["a", "b"] })
  })
  test("entries of one tag that declare platforms are chosen by platform", () => {
    const arm = entry("x", { os: "linux", architecture: "arm64" })
    const x86 = entry("x", amd64)
    expect(pickEntry([arm, x86], "x", { os: "linux", architecture: "arm64", variant: "v8" })).toEqual({ _tag: "Picked", entry: arm })
    expect(pickEntry([arm, x86], undefined, amd64)).toEqual({ _tag: "Picked", entry: x86 })
    expect(pickEntry([arm, x86], "x", { os: "linux", architecture: "s390x" })).toEqual({ _tag: "NoPlatform", available: ["linux/arm64", "linux/amd64"] })
  })
})

describe("resolveLayout", () => {
  test("the fixture resolves to its manifest, config and layers, DiffIDs paired by position", async () => {
    const { mDigest, manifest, config } = fixtureManifest()
    const r = await run(resolveLayout(directoryTree(FIXTURE), "oci:fixture", "latest", amd64))
    if (Either.isLeft(r)) throw r.left
    const image = r.right
    expect(image.manifestDigest as string).toBe(mDigest)
    expect(image.configDigest).toBe(manifest.config.digest)
    expect(image.platform).toBe("linux/amd64")
    expect(image.refName).toBe("latest")
    expect(image.layers.map((l) => [l.digest, l.size, l.diffId])).toEqual(
      manifest.layers.map((l: { digest: string; size: number }, i: number) => [l.digest, l.size, config.rootfs.diff_ids[i]]),
    )
  })

  test("a damaged manifest, a truncated layer, a missing index.json and an unknown tag are refused plainly", async () => {
    const { mDigest, manifest } = fixtureManifest()
    const copy = () => {
      const d = join(temp(), "layout")
      cpSync(FIXTURE, d, { recursive: true })
      return d
    }
    const m = copy()
    const mPath = join(m, "blobs/sha256", mDigest.slice(7))
    writeFileSync(mPath, `${readFileSync(mPath, "utf8")} `)
    const e1 = sourceErr(await run(resolveLayout(directoryTree(m), "oci:m", undefined, amd64)))
    expect(e1.code).toBe("DigestMismatch")
    expect(e1.message).toContain(mDigest)

    const t = copy()
    const layer = join(t, "blobs/sha256", manifest.layers[1].digest.slice(7))
    writeFileSync(layer, readFileSync(layer).subarray(0, 100))
    const e2 = sourceErr(await run(resolveLayout(directoryTree(t), "oci:t", undefined, amd64)))
    expect(e2.code).toBe("DigestMismatch")
    expect(e2.message).toMatch(/100 bytes .* manifest says/)

    const e3 = sourceErr(await run(resolveLayout(directoryTree(temp()), "oci:empty", undefined, amd64)))
    expect(e3.code).toBe("NotALayout")
    expect(e3.message).toContain("index.json")

    const e4 = sourceErr(await run(resolveLayout(directoryTree(FIXTURE), "oci:f:v9", "v9", amd64)))
    expect(e4.code).toBe("TagNotFound")
    expect(e4.message).toContain("tags: latest")
  })

  test("localSource streams the layer blobs of the layout", async () => {
    const { manifest } = fixtureManifest()
    const r = await run(Effect.gen(function*() {
      const { source, recorded } = yield* localSource({ kind: "oci", path: FIXTURE, reference: "latest" }, { platform: amd64, name: "127.0.0.1:5000/als/hello:1" })
      const image = yield* source.resolve(amd64)
      const blob = yield* source.blob(image.layers[0]!.digest)
      const bytes = yield* Effect.promise(() => drain(blob.body))
      return { recorded, aliases: source.aliases(image), digest: sha256(bytes), size: blob.size }
    }))
    if (Either.isLeft(r)) throw r.left
    expect(r.right.recorded).toEqual({ name: "127.0.0.1:5000/als/hello:1", origin: "--name" })
    expect(r.right.digest).toBe(manifest.layers[0].digest)
    expect(r.right.size).toBe(manifest.layers[0].size)
    expect(r.right.aliases).toContain(`127.0.0.1:5000/als/hello@${fixtureManifest().mDigest}`)
  })
})

// ---- docker-archive -------------------------------------------------------------------------

const packTar = async (files: ReadonlyArray<[string, Uint8Array | string]>, links: ReadonlyArray<[string, string]> = []) => {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer)
  })
  const done = new Promise<void>((r) => pack.on("end", () => r()))
  for (const [name, body] of files) pack.entry({ name, size: Buffer.from(body).length }, Buffer.from(body))
  for (const [name, target] of links) pack.entry({ name, type: "symlink", linkname: target })
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

/** A two-layer docker-archive: layer 1 plain (podman's `<diffid>.tar` behind an `ID/layer.tar` link), layer 2 gzip (docker 25's `blobs/sha256/<digest>`). */
const makeArchive = async (opts: { corruptLayer1?: boolean; tags?: string[] } = {}) => {
  const l1 = await packTar([["etc/one", "one"]])
  const l2tar = await packTar([["etc/two", "two"]])
  const l2 = gzipSync(l2tar)
  const config = JSON.stringify({ architecture: "arm64", os: "linux", rootfs: { type: "layers", diff_ids: [sha256(l1), sha256(l2tar)] } })
  const cHex = sha256(config).slice(7)
  const l1Hex = sha256(l1).slice(7)
  const l2Hex = sha256(l2).slice(7)
  const l1Stored = opts.corruptLayer1 ? Buffer.from(l1).fill(0x41, 600, 603) : l1
  const manifest = JSON.stringify([{ Config: `${cHex}.json`, RepoTags: opts.tags ?? ["busybox:latest"], Layers: [`abc/layer.tar`, `blobs/sha256/${l2Hex}`] }])
  const bytes = await packTar(
    [[`${l1Hex}.tar`, l1Stored], [`blobs/sha256/${l2Hex}`, l2], [`${cHex}.json`, config], ["manifest.json", manifest]],
    [["abc/layer.tar", `../${l1Hex}.tar`]],
  )
  const file = join(temp(), "archive.tar")
  writeFileSync(file, bytes)
  return { file, l1, l2, l2tar, configDigest: sha256(config) }
}

describe("docker-archive", () => {
  test("layers get the digest and size of the file as stored, plain or gzip, and a media type to match", async () => {
    const a = await makeArchive()
    const tree = archiveTree(a.file)
    const r = await run(Effect.gen(function*() {
      const entries = yield* readArchiveManifest(tree, "docker-archive:a")
      const pick = pickArchiveImage(entries, {})
      if (pick._tag !== "Picked") throw new Error(pick._tag)
      return yield* resolveArchive(tree, "docker-archive:a", pick.entry)
    }))
    if (Either.isLeft(r)) throw r.left
    const image = r.right
    expect(image.configDigest).toBe(a.configDigest)
    expect(image.platform).toBe("linux/arm64")
    expect(image.layers.map((l) => [l.digest, l.size, l.mediaType, l.diffId])).toEqual([
      [sha256(a.l1), a.l1.length, "application/vnd.oci.image.layer.v1.tar", sha256(a.l1)],
      [sha256(a.l2), a.l2.length, "application/vnd.oci.image.layer.v1.tar+gzip", sha256(a.l2tar)],
    ])
  })

  test("the source names the image after its first tag and streams layers from inside the archive", async () => {
    const a = await makeArchive()
    const r = await run(Effect.gen(function*() {
      const { source, recorded } = yield* localSource({ kind: "docker-archive", path: a.file }, { platform: amd64 })
      const image = yield* source.resolve(amd64)
      const blob = yield* source.blob(image.layers[1]!.digest)
      const bytes = yield* Effect.promise(() => drain(blob.body))
      return { recorded, bytes, aliases: source.aliases(image) }
    }))
    if (Either.isLeft(r)) throw r.left
    expect(r.right.recorded).toEqual({ name: "docker.io/library/busybox:latest", origin: "the archive's tags" })
    expect(sha256(r.right.bytes)).toBe(sha256(a.l2))
    expect(r.right.aliases).toEqual([])
  })

  test("a layer that does not hash to the digest its file name gives is refused before anything is stored", async () => {
    const a = await makeArchive({ corruptLayer1: true })
    const r = await run(Effect.gen(function*() {
      const { source } = yield* localSource({ kind: "docker-archive", path: a.file }, { platform: amd64 })
      return yield* source.resolve(amd64)
    }))
    const e = sourceErr(r)
    expect(e.code).toBe("DigestMismatch")
    expect(e.message).toContain("abc/layer.tar")
  })

  test("several images: a tag or @N picks one, none lists them", async () => {
    const entries = [
      { Config: "a.json", RepoTags: ["a:1"], Layers: [] },
      { Config: "b.json", RepoTags: ["docker.io/library/b:2"], Layers: [] },
    ]
    expect(pickArchiveImage(entries, { reference: "b:2" })).toMatchObject({ _tag: "Picked", index: 1 })
    expect(pickArchiveImage(entries, { index: 0 })).toMatchObject({ _tag: "Picked", index: 0 })
    expect(pickArchiveImage(entries, {})).toEqual({ _tag: "Ambiguous", choices: ["a:1", "docker.io/library/b:2"] })
    expect(pickArchiveImage(entries, { reference: "c:3" })).toEqual({ _tag: "TagNotFound", tags: ["a:1", "docker.io/library/b:2"] })
  })

  test("claimedDigest reads the digest a file name gives", () => {
    const hex = "a".repeat(64)
    expect(claimedDigest(`${hex}.tar`)).toBe(`sha256:${hex}` as Digest)
    expect(claimedDigest(`blobs/sha256/${hex}`)).toBe(`sha256:${hex}` as Digest)
    expect(claimedDigest(`${hex}/layer.tar`)).toBeUndefined()
  })

  test("a missing file and a directory given as an archive are told apart", async () => {
    const e1 = sourceErr(await run(localSource({ kind: "docker-archive", path: "/nonexistent/x.tar" }, { platform: amd64 })))
    expect(e1.code).toBe("NotFound")
    const e2 = sourceErr(await run(localSource({ kind: "docker-archive", path: FIXTURE }, { platform: amd64 })))
    expect(e2.message).toContain(`oci:${FIXTURE}`)
    const e3 = sourceErr(await run(localSource({ kind: "oci-archive", path: join(FIXTURE, "index.json") }, { platform: amd64 })))
    expect(e3.code).toBe("InvalidArchive")
  })
})
