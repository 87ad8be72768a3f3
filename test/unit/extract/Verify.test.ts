// Blob, DiffID and stream verification: the right error for each way a layer can be wrong.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect, Either } from "effect"
import type { Digest } from "../../../src/domain/Digest.ts"
import { ingestLayer } from "../../../src/extract/LayerIngest.ts"
import { Syscalls } from "../../../src/sys/Syscalls.ts"
import { chunks, layerBlob, rawTar, type RawEntry, sha256 } from "../../lib/tars.ts"
import { failure, ingest, ok, sys, withSandbox } from "./harness.ts"

const files: ReadonlyArray<RawEntry> = [
  { name: "etc/", type: "dir" },
  { name: "etc/hostname", content: "box\n" },
  { name: "bin/tool", content: "t".repeat(100000), mode: 0o755 },
]
const tar = rawTar(files)
const otherDigest = sha256(new TextEncoder().encode("something else"))

describe("blob verification", () => {
  test("digest mismatch → BlobDigestMismatch", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "gzip")
      const e = failure(await ingest({ ...blob, digest: otherDigest }, box))
      expect(e).toMatchObject({ _tag: "LayerRejected", code: "BlobDigestMismatch" })
      expect(e.message).toContain(otherDigest)
      expect(e.message).toContain("Retry")
    })
  })

  test("a corrupted download that also breaks decompression reports the digest, not the content", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "gzip")
      const bad = Buffer.from(blob.blob)
      bad[20] ^= 0xff
      bad[21] ^= 0xff
      const e = failure(await ingest({ ...blob, blob: bad }, box))
      expect(e).toMatchObject({ code: "BlobDigestMismatch" })
    })
  })

  test("short blob → BlobSizeMismatch", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "gzip")
      const cut = blob.blob.subarray(0, blob.size - 100)
      const e = failure(await ingest({ ...blob, blob: cut }, box))
      expect(e).toMatchObject({ code: "BlobSizeMismatch" })
      expect(e.message).toContain(`${blob.size - 100} bytes`)
    })
  })

  test("long blob → BlobSizeMismatch as soon as the size is exceeded", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar([{ name: "f", content: "z".repeat(1 << 20) }]), "none")
      let pulled = 0
      async function* source() {
        for await (const c of chunks(blob.blob, 4096)) {
          pulled += c.length
          yield c
        }
        // an endless sender
        for (;;) {
          pulled += 4096
          yield new Uint8Array(4096)
        }
      }
      const e = failure(await ingest(blob, box, { source: source(), size: 10000 }))
      expect(e).toMatchObject({ code: "BlobSizeMismatch" })
      expect(pulled).toBeLessThanOrEqual(10000 + 4096)
      expect(fs.statSync(box.blobPath).size).toBeLessThanOrEqual(10000)
    })
  })

  test("DiffID mismatch → DiffIdMismatch", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "zstd")
      const e = failure(await ingest({ ...blob, diffId: otherDigest }, box))
      expect(e).toMatchObject({ code: "DiffIdMismatch" })
      expect(e.message).toContain(sha256(tar))
    })
  })

  test("the DiffID covers every decompressed byte, also after the end-of-archive marker", async () => {
    await withSandbox(async (box) => {
      const padded = rawTar(files, { trailer: new Uint8Array(20000) })
      const blob = layerBlob(padded, "gzip")
      const r = ok(await ingest(blob, box))
      expect(r.diffId).toBe(sha256(padded))
      expect(r.diffSize).toBe(padded.length)
    })
  })

  test("sha512 digests are verified with sha512", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "gzip")
      const { createHash } = await import("node:crypto")
      const d512 = `sha512:${createHash("sha512").update(blob.blob).digest("hex")}` as Digest
      const r = ok(await ingest({ ...blob, digest: d512 }, box))
      expect(r.digest).toBe(d512)
    })
  })
})

describe("corrupt data", () => {
  test("truncated gzip → CorruptData", async () => {
    await withSandbox(async (box) => {
      const full = layerBlob(tar, "gzip").blob
      const cut = full.subarray(0, full.length - 30)
      const e = failure(await ingest({ ...layerBlob(tar, "gzip"), blob: cut, digest: sha256(cut), size: cut.length }, box))
      expect(e).toMatchObject({ code: "CorruptData" })
      expect(e.message).toContain("gzip")
    })
  })

  test("gzip with garbage after the last member → CorruptData", async () => {
    await withSandbox(async (box) => {
      const b = Buffer.concat([layerBlob(tar, "gzip").blob, Buffer.from("not gzip at all")])
      const e = failure(await ingest({ ...layerBlob(tar, "gzip"), blob: b, digest: sha256(b), size: b.length }, box))
      expect(e).toMatchObject({ code: "CorruptData" })
    })
  })

  test("truncated zstd → CorruptData (the decoder alone would accept it)", async () => {
    await withSandbox(async (box) => {
      const full = layerBlob(tar, "zstd").blob
      const cut = full.subarray(0, full.length - 5)
      const e = failure(await ingest({ ...layerBlob(tar, "zstd"), blob: cut, digest: sha256(cut), size: cut.length }, box))
      expect(e).toMatchObject({ code: "CorruptData" })
      expect(e.message).toContain("zstd")
    })
  })

  test("corrupt zstd blocks → CorruptData", async () => {
    await withSandbox(async (box) => {
      const b = Buffer.from(layerBlob(tar, "zstd").blob)
      b.fill(0xff, 9, b.length - 4)
      const e = failure(await ingest({ ...layerBlob(tar, "zstd"), blob: b, digest: sha256(b), size: b.length }, box))
      expect(e).toMatchObject({ code: "CorruptData" })
    })
  })

  test("garbage instead of a tar → CorruptData", async () => {
    await withSandbox(async (box) => {
      const junk = Buffer.alloc(4096, "garbage! ")
      for (const c of ["none", "gzip", "zstd"] as const) {
        fs.rmSync(box.diffDir, { recursive: true })
        fs.mkdirSync(box.diffDir)
        const e = failure(await ingest(layerBlob(junk, c), box))
        expect(e).toMatchObject({ code: "CorruptData" })
        expect(e.message).toContain("checksum")
      }
    })
  })

  test("a tar cut inside an entry → CorruptData", async () => {
    await withSandbox(async (box) => {
      const cut = tar.subarray(0, 512 + 512 + 512 + 3000)
      const e = failure(await ingest(layerBlob(cut, "gzip"), box))
      expect(e).toMatchObject({ code: "CorruptData" })
      expect(e.message).toContain("truncated")
    })
  })

  test("a non-zero block after one zero block → CorruptData", async () => {
    await withSandbox(async (box) => {
      const bad = Buffer.concat([rawTar(files, { end: false }), Buffer.alloc(512), rawTar([{ name: "late" }])])
      expect(failure(await ingest(layerBlob(bad, "none"), box))).toMatchObject({ code: "CorruptData" })
    })
  })

  test("a tar without end-of-archive marker is accepted, as Go's archive/tar does", async () => {
    await withSandbox(async (box) => {
      const bare = rawTar(files, { end: false })
      const r = ok(await ingest(layerBlob(bare, "none"), box))
      expect(r.files).toBe(3)
    })
  })

  test("an empty blob is an empty layer", async () => {
    await withSandbox(async (box) => {
      const r = ok(await ingest(layerBlob(new Uint8Array(0), "none"), box))
      expect(r).toMatchObject({ files: 0, bytes: 0, diffSize: 0, compression: "none" })
    })
  })
})

describe("media types and compression sniffing", () => {
  test("unknown media type → UnsupportedMediaType, before reading anything", async () => {
    await withSandbox(async (box) => {
      let read = false
      async function* source() {
        read = true
        yield new Uint8Array(1)
      }
      const e = failure(
        await ingest(layerBlob(tar, "gzip"), box, { source: source(), mediaType: "application/vnd.oci.image.config.v1+json" }),
      )
      expect(e).toMatchObject({ code: "UnsupportedMediaType" })
      expect(read).toBe(false)
    })
  })

  test("the magic wins over the media type (a 'tar+gzip' that is plain tar, zstd labelled gzip)", async () => {
    await withSandbox(async (box) => {
      const plain = layerBlob(tar, "none")
      expect(ok(await ingest({ ...plain, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }, box)).compression).toBe("none")
    })
    await withSandbox(async (box) => {
      const z = layerBlob(tar, "zstd")
      const r = ok(await ingest({ ...z, mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip" }, box))
      expect(r.compression).toBe("zstd")
      expect(r.diffId).toBe(sha256(tar))
    })
  })

  test("xz-compressed blob → UnsupportedMediaType", async () => {
    await withSandbox(async (box) => {
      const xz = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100)])
      const e = failure(await ingest({ ...layerBlob(tar, "gzip"), blob: xz, digest: sha256(xz), size: xz.length }, box))
      expect(e).toMatchObject({ code: "UnsupportedMediaType" })
    })
  })

  test("one-byte chunks still sniff, decode and extract", async () => {
    await withSandbox(async (box) => {
      const small = rawTar([{ name: "a", content: "abc" }])
      for (const c of ["gzip", "zstd"] as const) {
        fs.rmSync(box.diffDir, { recursive: true })
        fs.mkdirSync(box.diffDir)
        const r = ok(await ingest(layerBlob(small, c), box, { chunkSize: 1 }))
        expect(r.compression).toBe(c)
        expect(fs.readFileSync(path.join(box.diffDir, "a"), "utf8")).toBe("abc")
      }
    })
  })

  test("progress reports every blob byte", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "gzip")
      const seen: Array<number> = []
      ok(await ingest(blob, box, { chunkSize: 100, onBytes: (n) => seen.push(n) }))
      expect(seen.at(-1)).toBe(blob.size)
      expect(seen.every((n, i) => i === 0 || n > seen[i - 1])).toBe(true)
    })
  })
})

describe("interruption", () => {
  test("interrupting the Effect stops reading the source and releases the files", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "none")
      let pulls = 0
      let closed = false
      async function* slow() {
        try {
          for (;;) {
            pulls++
            await new Promise((r) => setTimeout(r, 5))
            yield new Uint8Array(512)
          }
        } finally {
          closed = true
        }
      }
      const r = await Effect.runPromise(
        ingestLayer({
          source: slow(),
          digest: blob.digest,
          size: 1 << 30,
          mediaType: blob.mediaType,
          diffId: blob.diffId,
          annotations: {},
          blobPath: box.blobPath,
          diffDir: box.diffDir,
        }).pipe(Effect.provideService(Syscalls, sys), Effect.timeout("100 millis"), Effect.either),
      )
      expect(Either.isLeft(r) && r.left._tag).toBe("TimeoutException")
      await new Promise((r) => setTimeout(r, 50))
      const after = pulls
      await new Promise((r) => setTimeout(r, 100))
      expect(pulls).toBe(after)
      expect(closed).toBe(true)
      // the staging dir can be deleted: nothing holds it
      fs.rmSync(box.diffDir, { recursive: true })
    })
  })
})

describe("local failures", () => {
  let mnt = ""
  beforeAll(() => {
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), "als-enospc-"))
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt])
  })
  afterAll(() => {
    execFileSync("umount", [mnt])
    fs.rmSync(mnt, { recursive: true, force: true })
  })

  test("a full disk while extracting → LayerIoError NoSpace telling to free space", async () => {
    const diffDir = path.join(mnt, "diff")
    fs.mkdirSync(diffDir)
    const blob = layerBlob(rawTar([{ name: "big", content: new Uint8Array(3 << 20).fill(7) }]), "gzip")
    const r = await Effect.runPromise(
      ingestLayer({
        source: chunks(blob.blob),
        digest: blob.digest,
        size: blob.size,
        mediaType: blob.mediaType,
        diffId: blob.diffId,
        annotations: {},
        blobPath: path.join(os.tmpdir(), `als-enospc-blob-${process.pid}`),
        diffDir,
      }).pipe(Effect.provideService(Syscalls, sys), Effect.either),
    )
    fs.rmSync(path.join(os.tmpdir(), `als-enospc-blob-${process.pid}`), { force: true })
    if (Either.isRight(r)) throw new Error("expected NoSpace")
    expect(r.left).toMatchObject({ _tag: "LayerIoError", code: "NoSpace" })
    expect(r.left.message).toContain("Free space")
    expect(r.left.message).toContain("big")
  })

  test("a full disk while writing the blob → NoSpace", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(tar, "gzip")
      const e = failure(await ingest(blob, box, { blobPath: "/dev/full" }))
      expect(e).toMatchObject({ _tag: "LayerIoError", code: "NoSpace", path: "/dev/full" })
    })
  })
})

