/**
 * The client against a real docker-registry on 127.0.0.1 (plain HTTP), with images pushed by
 * skopeo from OCI layouts built here.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import { rmSync } from "node:fs"
import { Effect } from "effect"
import type { Digest } from "../../../src/domain/Digest.ts"
import { formatReference } from "../../../src/domain/Reference.ts"
import { formatPlatform, parsePlatform } from "../../../src/domain/Platform.ts"
import { currentPlatform } from "../../../src/registry/PlatformPolicy.ts"
import {
  type BuiltImage,
  type BuiltLayer,
  buildLayer,
  freePort,
  makeTempDir,
  pushLayout,
  type RegistryHandle,
  startRegistry,
  writeOciImage,
  writeOciIndex,
} from "../../lib/registry.ts"
import { failure, ok, ref, sha256Of, withClient } from "./client.ts"

let registry: RegistryHandle
let layout: string
let multiLayout: string
let single: BuiltImage
let big: BuiltLayer
let multi: { indexDigest: string; images: ReadonlyArray<BuiltImage> }

beforeAll(async () => {
  registry = await startRegistry()
  layout = makeTempDir("als-layout-")
  multiLayout = makeTempDir("als-layout-")
  // incompressible content so the blob spans many chunks
  big = await buildLayer({ "data/random.bin": randomBytes(3 * 1024 * 1024) })
  const small = await buildLayer({ "etc/hello": "hello\n" })
  single = writeOciImage(layout, "1", { os: "linux", architecture: "amd64" }, [small, big])
  await pushLayout(layout, "1", `${registry.host}/test/x:1`)
  multi = writeOciIndex(multiLayout, "multi", [
    { platform: { os: "linux", architecture: "amd64" }, layers: [await buildLayer({ "arch": "amd64\n" })] },
    { platform: { os: "linux", architecture: "arm64", variant: "v8" }, layers: [await buildLayer({ "arch": "arm64\n" })] },
    { platform: { os: "linux", architecture: "arm", variant: "v6" }, layers: [await buildLayer({ "arch": "armv6\n" })] },
  ])
  await pushLayout(multiLayout, "multi", `${registry.host}/test/multi:1`, { all: true })
}, 60_000)

afterAll(async () => {
  await registry?.stop()
  rmSync(layout, { recursive: true, force: true })
  rmSync(multiLayout, { recursive: true, force: true })
})

describe("resolve", () => {
  test("by tag: manifest, config and layers paired with diff_ids", async () => {
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/test/x:1`))))
    expect(formatReference(r.ref)).toBe(`${registry.host}/test/x:1`)
    expect(r.manifestDigest).toBe(single.manifestDigest as Digest)
    expect(r.manifestMediaType).toBe("application/vnd.oci.image.manifest.v1+json")
    expect(r.indexDigest).toBeUndefined()
    expect(r.platform).toBe("linux/amd64")
    expect(r.configDigest).toBe(single.configDigest as Digest)
    expect(r.config.rootfs.diff_ids).toEqual(single.layers.map((l) => l.diffId) as Digest[])
    expect(r.layers.map((l): unknown[] => [l.digest, l.size, l.diffId])).toEqual(single.layers.map((l) => [l.digest, l.size, l.diffId]))
    expect(r.layers[0].mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip")
  })

  test("by digest", async () => {
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/test/x@${single.manifestDigest}`))))
    expect(r.manifestDigest).toBe(single.manifestDigest as Digest)
    expect(r.layers).toHaveLength(2)
  })

  test("tag and digest: the digest is fetched", async () => {
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/test/x:nonexistent@${single.manifestDigest}`))))
    expect(r.manifestDigest).toBe(single.manifestDigest as Digest)
    expect(formatReference(r.ref)).toBe(`${registry.host}/test/x@${single.manifestDigest}`)
  })

  test("a multi-arch index: the platform asked for, verified child by digest", async () => {
    const byPlatform = async (p: string) => ok(await withClient((c) => c.resolve(ref(`${registry.host}/test/multi:1`), { platform: parsePlatform(p) })))
    const amd = await byPlatform("linux/amd64")
    expect(amd.indexDigest).toBe(multi.indexDigest as Digest)
    expect(amd.manifestDigest).toBe(multi.images[0].manifestDigest as Digest)
    expect(amd.platform).toBe("linux/amd64")
    expect(amd.layers[0].diffId).toBe(multi.images[0].layers[0].diffId as Digest)

    const arm64 = await byPlatform("linux/arm64")
    expect(arm64.manifestDigest).toBe(multi.images[1].manifestDigest as Digest)
    expect(arm64.platform).toBe("linux/arm64/v8")

    // arm/v7 runs the v6 image, as podman would pick it
    const armv7 = await byPlatform("linux/arm/v7")
    expect(armv7.manifestDigest).toBe(multi.images[2].manifestDigest as Digest)
    expect(armv7.platform).toBe("linux/arm/v6")
  })

  test("without a platform: this machine's", async () => {
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/test/multi:1`))))
    expect(r.platform).toBe(formatPlatform(currentPlatform()))
  })

  test("the index by digest", async () => {
    const r = ok(await withClient((c) => c.resolve(ref(`${registry.host}/test/multi@${multi.indexDigest}`), { platform: parsePlatform("linux/amd64") })))
    expect(r.indexDigest).toBe(multi.indexDigest as Digest)
    expect(r.manifestDigest).toBe(multi.images[0].manifestDigest as Digest)
  })

  test("a platform the index lacks: PlatformNotFound listing what it has", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/test/multi:1`), { platform: parsePlatform("linux/s390x") })))
    expect(e.code).toBe("PlatformNotFound")
    expect(e.message).toContain("linux/s390x")
    expect(e.message).toContain("linux/amd64, linux/arm64/v8, linux/arm/v6")
    expect(e.message).toContain("--platform")
  })

  test("an unknown tag: NotFound saying to check the name", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/test/x:nope`))))
    expect(e.code).toBe("NotFound")
    expect(e.status).toBe(404)
    expect(e.message).toMatch(/MANIFEST_UNKNOWN/)
    expect(e.message).toMatch(/check the name/)
  })

  test("an unknown repository: NotFound", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/no/such:1`))))
    expect(e.code).toBe("NotFound")
    expect(e.message).toMatch(/check the name/)
  })

  test("an unknown digest: NotFound", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/test/x@sha256:${"0".repeat(64)}`))))
    expect(e.code).toBe("NotFound")
  })
})

describe("blob", () => {
  test("streams a multi-megabyte blob whose sha256 matches", async () => {
    const r = ok(
      await withClient((c) =>
        Effect.flatMap(c.blob(ref(`${registry.host}/test/x:1`), big.digest as Digest), (b) =>
          Effect.promise(async () => ({ size: b.size, offset: b.offset, ...(await sha256Of(b.body)) })),
        ),
      ),
    )
    expect(r).toEqual({ size: big.size, offset: 0, digest: big.digest, bytes: big.size })
  })

  test("from an offset (Range): the tail of the blob", async () => {
    const offset = 1_000_000
    const r = ok(
      await withClient((c) =>
        Effect.flatMap(c.blob(ref(`${registry.host}/test/x:1`), big.digest as Digest, { offset }), (b) =>
          Effect.promise(async () => {
            const chunks: Uint8Array[] = []
            for await (const chunk of b.body) chunks.push(chunk)
            return { size: b.size, offset: b.offset, tail: Buffer.concat(chunks) }
          }),
        ),
      ),
    )
    expect(r.size).toBe(big.size)
    expect(r.offset).toBe(offset)
    expect(Buffer.compare(r.tail, Buffer.from(big.blob.subarray(offset)))).toBe(0)
  })

  test("stopping early frees the connection and later requests still work", async () => {
    const r = ok(
      await withClient((c) =>
        Effect.gen(function* () {
          const b = yield* c.blob(ref(`${registry.host}/test/x:1`), big.digest as Digest)
          yield* Effect.promise(async () => {
            for await (const _ of b.body) break
          })
          return yield* c.resolve(ref(`${registry.host}/test/x:1`))
        }),
      ),
    )
    expect(r.layers).toHaveLength(2)
  })

  test("an unknown blob: NotFound", async () => {
    const e = failure(
      await withClient((c) => c.blob(ref(`${registry.host}/test/x:1`), `sha256:${"1".repeat(64)}` as Digest)),
    )
    expect(e.code).toBe("NotFound")
    expect(e.message).toMatch(/BLOB_UNKNOWN/)
  })
})

describe("transport security", () => {
  test("--tls-verify=false: https is tried, then plain HTTP", async () => {
    const p = ok(await withClient((c) => c.ping(registry.host), { config: { tlsVerify: false } }))
    expect(p).toEqual({ host: registry.host, scheme: "http", auth: "none" })
  })

  test("with TLS verification, a plain-HTTP registry fails with advice", async () => {
    const e = failure(await withClient((c) => c.resolve(ref(`${registry.host}/test/x:1`)), { config: { tlsVerify: true } }))
    expect(e.code).toBe("Unreachable")
    expect(e.message).toContain("--tls-verify=false")
  })

  test("a registry listed as insecure is reached over HTTP even with verification on", async () => {
    const r = ok(
      await withClient((c) => c.resolve(ref(`${registry.host}/test/x:1`)), { config: { tlsVerify: true, insecureHosts: [registry.host] } }),
    )
    expect(r.manifestDigest).toBe(single.manifestDigest as Digest)
  })

  test("nothing listening: Unreachable, fast, naming the host", async () => {
    const port = await freePort()
    const started = Date.now()
    const e = failure(await withClient((c) => c.resolve(ref(`127.0.0.1:${port}/test/x:1`))))
    expect(e.code).toBe("Unreachable")
    expect(e.message).toContain(`127.0.0.1:${port}`)
    expect(e.message).toMatch(/connection refused/)
    expect(Date.now() - started).toBeLessThan(3000)
  })
})
