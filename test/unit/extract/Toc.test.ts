// TOC digests of eStargz and zstd:chunked layers: verified from the streamed bytes.
import { describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import * as path from "node:path"
import { estargzBlob, layerBlob, rawTar, type RawEntry, sha256, zstdChunkedBlob } from "../../lib/tars.ts"
import { walkTree } from "../../lib/tree.ts"
import { failure, ingest, ok, sys, withSandbox } from "./harness.ts"

const entries: ReadonlyArray<RawEntry> = [
  { name: "bin/", type: "dir", mode: 0o755 },
  { name: "bin/app", content: "a".repeat(5000), mode: 0o755 },
  { name: "etc/conf", content: "key=value\n" },
  { name: "etc/link", type: "symlink", linkname: "conf" },
  { name: "etc/.wh.old" },
  { name: "empty", content: "" },
]
const bogus = sha256(new TextEncoder().encode("not the toc"))

const checkTree = (diffDir: string) => {
  const t = new Map(walkTree(diffDir, sys).map((e) => [e.path, e]))
  expect(t.get("bin/app")).toMatchObject({ type: "file", size: 5000, mode: 0o755 })
  expect(fs.readFileSync(path.join(diffDir, "etc/conf"), "utf8")).toBe("key=value\n")
  expect(t.get("etc/link")).toMatchObject({ type: "symlink", linkTarget: "conf" })
  expect(t.get("etc/old")).toMatchObject({ type: "char", rdevMajor: 0, rdevMinor: 0 })
  return t
}

describe("eStargz", () => {
  test("TOC digest verified; the TOC entry is kept in diff, as containers/storage's ordinary pull does", async () => {
    await withSandbox(async (box) => {
      const blob = estargzBlob([{ name: ".prefetch.landmark", content: "\xf0" }, ...entries])
      const r = ok(await ingest(blob, box, { chunkSize: 333 }))
      expect(r.compression).toBe("gzip")
      expect(r.tocDigest).toBe(sha256(blob.toc))
      expect(r.diffId).toBe(blob.diffId)
      const t = checkTree(box.diffDir)
      expect(fs.readFileSync(path.join(box.diffDir, "stargz.index.json")).equals(blob.toc)).toBe(true)
      expect(t.has(".prefetch.landmark")).toBe(true)
    })
  })

  test("wrong TOC digest → TocDigestMismatch", async () => {
    await withSandbox(async (box) => {
      const e = failure(await ingest(estargzBlob(entries, { tocDigest: bogus }), box))
      expect(e).toMatchObject({ code: "TocDigestMismatch" })
      expect(e.message).toContain(bogus)
    })
  })

  test("annotation on a layer without stargz.index.json → TocDigestMismatch", async () => {
    await withSandbox(async (box) => {
      const plain = layerBlob(rawTar(entries), "gzip")
      const e = failure(await ingest({ ...plain, annotations: { "containerd.io/snapshot/stargz/toc.digest": bogus } }, box))
      expect(e).toMatchObject({ code: "TocDigestMismatch" })
      expect(e.message).toContain("stargz.index.json")
    })
  })
})

describe("zstd:chunked", () => {
  test("TOC digest verified from the manifest-position annotation; skippable frames skipped", async () => {
    await withSandbox(async (box) => {
      const blob = zstdChunkedBlob(entries)
      const r = ok(await ingest(blob, box, { chunkSize: 7 }))
      expect(r.compression).toBe("zstd")
      expect(r.tocDigest).toBe(sha256(blob.manifest))
      expect(r.diffId).toBe(blob.diffId)
      expect(r.digest).toBe(blob.digest)
      checkTree(box.diffDir)
    })
  })

  test("TOC digest verified from the footer when the position annotation is absent", async () => {
    await withSandbox(async (box) => {
      const blob = zstdChunkedBlob(entries, { position: false })
      const r = ok(await ingest(blob, box))
      expect(r.tocDigest).toBe(sha256(blob.manifest))
      checkTree(box.diffDir)
    })
  })

  test("a blob starting with a skippable frame", async () => {
    await withSandbox(async (box) => {
      const blob = zstdChunkedBlob(entries, { leadingSkippable: true })
      expect(blob.blob.readUInt32LE(0)).toBe(0x184d2a5e)
      const r = ok(await ingest(blob, box, { chunkSize: 3 }))
      expect(r.compression).toBe("zstd")
      expect(r.tocDigest).toBe(sha256(blob.manifest))
    })
  })

  test("wrong TOC digest → TocDigestMismatch (annotation and footer paths)", async () => {
    for (const position of [true, false]) {
      await withSandbox(async (box) => {
        const e = failure(await ingest(zstdChunkedBlob(entries, { position, tocDigest: bogus }), box))
        expect(e).toMatchObject({ code: "TocDigestMismatch" })
      })
    }
  })

  test("a manifest position outside the blob → TocDigestMismatch", async () => {
    await withSandbox(async (box) => {
      const blob = zstdChunkedBlob(entries)
      const annotations = { ...blob.annotations, "io.github.containers.zstd-chunked.manifest-position": `${blob.size}:100:200:1` }
      const e = failure(await ingest({ ...blob, annotations }, box))
      expect(e).toMatchObject({ code: "TocDigestMismatch" })
    })
  })

  test("annotation on a plain zstd layer without footer → TocDigestMismatch", async () => {
    await withSandbox(async (box) => {
      const plain = layerBlob(rawTar(entries), "zstd")
      const e = failure(
        await ingest({ ...plain, annotations: { "io.github.containers.zstd-chunked.manifest-checksum": bogus } }, box),
      )
      expect(e).toMatchObject({ code: "TocDigestMismatch" })
    })
  })

  test("both TOC annotations → TocDigestMismatch, as containers/storage refuses them", async () => {
    await withSandbox(async (box) => {
      const blob = zstdChunkedBlob(entries)
      const annotations = { ...blob.annotations, "containerd.io/snapshot/stargz/toc.digest": bogus }
      expect(failure(await ingest({ ...blob, annotations }, box))).toMatchObject({ code: "TocDigestMismatch" })
    })
  })

  test("no TOC annotation: no tocDigest", async () => {
    await withSandbox(async (box) => {
      const blob = zstdChunkedBlob(entries)
      const r = ok(await ingest({ ...blob, annotations: {} }, box))
      expect(r.tocDigest).toBeUndefined()
    })
  })
})
