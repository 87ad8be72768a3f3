// The zstd:chunked TOC of a real image (the feature image converted by Debian 13's skopeo):
// fetched by range from the blob file, checked against the annotation's digest, parsed into
// the tree `als pull` extracts, and every file's bytes rebuilt chunk by chunk and checked.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { tocExpectation } from "../../../src/verify/Toc.ts"
import { fetchToc } from "../../../src/lazy/TocFetch.ts"
import { ChunkCorrupt, fileRangeSource, makeChunkReader, type RangeSource } from "../../../src/lazy/Chunks.ts"
import { nodeAt, parseToc, TocInvalid, type TocFile, type TocModel } from "../../../src/lazy/TocModel.ts"
import { blobPath, buildFeatureImage, compressionVariant, readLayoutManifest, type OciImage } from "../../lib/images.ts"

let img: OciImage
let layers: Array<{ digest: string; size: number; annotations: Record<string, string>; file: string }>

beforeAll(async () => {
  img = await compressionVariant(await buildFeatureImage(), "zstd:chunked")
  layers = readLayoutManifest(img.layoutDir, img.tag).layers.map((l) => ({
    digest: l.digest,
    size: l.size,
    annotations: (l.annotations ?? {}) as Record<string, string>,
    file: blobPath(img.layoutDir, l.digest),
  }))
}, 30 * 60_000)

const modelOf = async (i: number, src?: RangeSource) => {
  const l = layers[i]!
  return fetchToc(src ?? fileRangeSource(l.file), l.size, tocExpectation(l.digest, l.annotations)!)
}

/** temp dirs of this file, removed in afterAll */
const made: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "lazy-toc-"))
  made.push(d)
  return d
}
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

test("every layer's TOC verifies against its annotation and parses; every file's chunks rebuild its bytes with the TOC's digest", async () => {
  for (let i = 0; i < layers.length; i++) {
    const { model } = await modelOf(i)
    expect(model.format).toBe("zstd:chunked")
    const reader = makeChunkReader("zstd:chunked", fileRangeSource(layers[i]!.file), tmp())
    for (const f of model.files) {
      const bytes = await reader.read(f, 0, f.size)
      expect(bytes.length).toBe(f.size)
      if (f.digest) expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(f.digest)
    }
  }
})

test("the first layer: a 1 MiB file in many chunks, a partial read fetches only the chunks it touches, then the cache answers", async () => {
  const { model } = await modelOf(0)
  const blob = nodeAt(model, "data/blob.bin") as TocFile
  expect(blob.kind).toBe("file")
  expect(blob.size).toBe(1 << 20)
  expect(blob.chunks.length).toBeGreaterThan(4)
  const cache = tmp()
  const reader = makeChunkReader("zstd:chunked", fileRangeSource(layers[0]!.file), cache)
  const c = blob.chunks[2]!
  const part = await reader.read(blob, c.fileOffset + 10, 100)
  expect(reader.stats.fetched).toBe(1)
  expect(reader.stats.fetchedBytes).toBe(c.blobEnd - c.blobOffset)
  const again = await reader.read(blob, c.fileOffset + 10, 100)
  expect(reader.stats.fetched).toBe(1)
  expect(reader.stats.cached).toBe(1)
  expect(Buffer.from(again)).toEqual(Buffer.from(part))
  // against the bytes the whole file decompresses to
  const all = await makeChunkReader("zstd:chunked", fileRangeSource(layers[0]!.file), tmp()).read(blob, 0, blob.size)
  expect(Buffer.from(part)).toEqual(Buffer.from(all.subarray(c.fileOffset + 10, c.fileOffset + 110)))
})

test("the tree: symlinks, a hard link sharing its file, a device, modes with special bits, owners, times, base64 xattrs", async () => {
  const { model } = await modelOf(1)
  expect(nodeAt(model, "links/abs")).toMatchObject({ kind: "symlink", target: "/etc/hostname" })
  expect(nodeAt(model, "links/dir-link")).toMatchObject({ kind: "symlink", target: "../usr/share" })
  const a = nodeAt(model, "links/hl-a") as TocFile
  expect(nodeAt(model, "links/hl-b")).toBe(a)
  expect(a.nlink).toBe(2)
  expect(nodeAt(model, "dev/null")).toMatchObject({ kind: "char", major: 1, minor: 3, mode: 0o666 })
  expect(nodeAt(model, "links/fifo")).toMatchObject({ kind: "fifo" })
  expect(nodeAt(model, "usr/bin/suid")).toMatchObject({ kind: "file", mode: 0o4755 })
  expect(nodeAt(model, "home/user")).toMatchObject({ kind: "dir", uid: 1000, gid: 1000, mode: 0o750 })
  expect(nodeAt(model, "data/old-mtime")).toMatchObject({ mtime: Date.UTC(2001, 1, 3, 4, 5, 6) / 1000 })
  const x = nodeAt(model, "data/xattr-file")!
  expect(x.xattrs.map(([n, v]) => [n, Buffer.from(v).toString()])).toEqual([["user.test", "1"]])
  // a parent the TOC does not list is made as the extractor makes it
  expect(nodeAt(model, "usr")).toMatchObject({ kind: "dir", mode: 0o755, uid: 0, gid: 0 })
})

test("whiteouts in overlay format: .wh.X is a 0/0 char device X, .wh..wh..opq marks its directory opaque", async () => {
  const { model } = await modelOf(2)
  expect(nodeAt(model, "data/delete-me.txt")).toMatchObject({ kind: "char", major: 0, minor: 0 })
  expect(nodeAt(model, "removed-dir")).toMatchObject({ kind: "char", major: 0, minor: 0 })
  expect(nodeAt(model, "data/.wh.delete-me.txt")).toBeUndefined()
  expect(nodeAt(model, "replaced")).toMatchObject({ kind: "dir", opaque: true })
  expect(nodeAt(model, "data")).toMatchObject({ kind: "dir", opaque: false })
  expect(nodeAt(model, "replaced/.wh..wh..opq")).toBeUndefined()
})

test("a TOC whose bytes are not the annotation's digest is refused before parsing", async () => {
  const l = layers[0]!
  const exp = tocExpectation(l.digest, l.annotations)!
  const flipped: RangeSource = {
    read: async (o, n) => {
      const b = Buffer.from(await fileRangeSource(l.file).read(o, n))
      if (exp.kind === "zstd:chunked" && exp.range && o === exp.range.offset) b[5]! ^= 1
      return b
    },
  }
  await expect(modelOf(0, flipped)).rejects.toThrow(/the TOC has digest sha256:[0-9a-f]{64}, the annotation says/)
})

test("a chunk whose bytes changed is ChunkCorrupt, no byte returned, and not cached", async () => {
  const { model } = await modelOf(0)
  const blob = nodeAt(model, "data/blob.bin") as TocFile
  const c = blob.chunks[1]!
  const flipped: RangeSource = {
    read: async (o, n) => {
      const b = Buffer.from(await fileRangeSource(layers[0]!.file).read(o, n))
      if (o === c.blobOffset) b[b.length >> 1]! ^= 0x40
      return b
    },
  }
  const cache = tmp()
  const reader = makeChunkReader("zstd:chunked", flipped, cache)
  await expect(reader.read(blob, c.fileOffset, 10)).rejects.toBeInstanceOf(ChunkCorrupt)
  expect(fs.readdirSync(cache)).toEqual([])
  // the chunk before it is fine
  expect((await reader.read(blob, 0, 10)).length).toBe(10)
})

const parse = (entries: unknown[]) => parseToc("zstd:chunked", JSON.stringify({ version: 1, entries }), 1000, 900)
const D = `sha256:${"a".repeat(64)}`

test("hostile or inconsistent TOCs are TocInvalid", () => {
  const cases: Array<[string, unknown[]]> = [
    ["climbs out", [{ type: "reg", name: "../etc/passwd", size: 0 }]],
    ["bad digest", [{ type: "reg", name: "f", size: 3, digest: "md5:x", offset: 10, endOffset: 20 }]],
    ["no digest", [{ type: "reg", name: "f", size: 3, offset: 10, endOffset: 20 }]],
    ["negative size", [{ type: "reg", name: "f", size: -1 }]],
    ["chunk gap", [{ type: "reg", name: "f", size: 10, digest: D, offset: 10, endOffset: 50, chunkSize: 4, chunkDigest: D }, { type: "chunk", name: "f", offset: 30, chunkOffset: 5, chunkSize: 5, chunkDigest: D }]],
    ["short cover", [{ type: "reg", name: "f", size: 10, digest: D, offset: 10, endOffset: 50, chunkSize: 4, chunkDigest: D }]],
    ["past blob", [{ type: "reg", name: "f", size: 3, digest: D, offset: 10, endOffset: 5000 }]],
    ["stray chunk", [{ type: "chunk", name: "f", offset: 30, chunkOffset: 0, chunkSize: 5, chunkDigest: D }]],
    ["hardlink to nothing", [{ type: "hardlink", name: "a", linkName: "b" }]],
    ["unknown type", [{ type: "socket", name: "s" }]],
    ["xattr not base64", [{ type: "dir", name: "d", xattrs: { "user.a": "!!" } }]],
    ["whiteout as dir", [{ type: "reg", name: ".wh.x/y", size: 0 }]],
    ["file as parent", [{ type: "reg", name: "f", size: 0 }, { type: "dir", name: "f/d" }]],
  ]
  for (const [what, entries] of cases) expect({ what, threw: (() => {
    try {
      parse(entries)
      return "parsed"
    } catch (e) {
      return e instanceof TocInvalid ? "TocInvalid" : String(e)
    }
  })() }).toEqual({ what, threw: "TocInvalid" })
  expect(() => parseToc("zstd:chunked", "[]", 10, 5)).toThrow(TocInvalid)
  expect(() => parseToc("zstd:chunked", JSON.stringify({ version: 2, entries: [] }), 10, 5)).toThrow(TocInvalid)
})

test("overlay's own xattrs and SELinux labels from the TOC are dropped, others kept", () => {
  const m: TocModel = parse([{ type: "dir", name: "d", xattrs: { "trusted.overlay.opaque": "eQ==", "user.overlay.x": "eQ==", "security.selinux": "eQ==", "user.k": "dg==" } }])
  expect(nodeAt(m, "d")!.xattrs.map(([n]) => n)).toEqual(["user.k"])
})
