// eStargz: a layer converted by test/lib/estargz.ts, its TOC found through the footer, checked
// against the TOC digest, parsed into the same model as zstd:chunked; each file's bytes rebuilt
// from its gzip-member chunks and checked; the TOC's own file is part of the tree (als pull
// extracts it too).

import { afterAll, expect, test } from "bun:test"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { gunzipSync } from "node:zlib"
import tar from "tar-stream"
import { ChunkCorrupt, fileRangeSource, makeChunkReader, type RangeSource } from "../../../src/lazy/Chunks.ts"
import { fetchToc } from "../../../src/lazy/TocFetch.ts"
import { nodeAt, type TocFile } from "../../../src/lazy/TocModel.ts"
import type { Digest } from "../../../src/domain/Digest.ts"
import { verifyTocOfFile } from "../../../src/verify/Toc.ts"
import { toEstargz } from "../../lib/estargz.ts"

const big = randomBytes(300_000)

export const sampleTar = async (): Promise<Uint8Array> => {
  const pack = tar.pack()
  const parts: Buffer[] = []
  pack.on("data", (c: unknown) => void parts.push(c as Buffer))
  const done = new Promise<void>((r) => pack.on("end", () => r()))
  const t = new Date(1_600_000_000_000)
  pack.entry({ name: "etc/", type: "directory", mode: 0o755, mtime: t })
  pack.entry({ name: "etc/motd", type: "file", mode: 0o644, mtime: t }, "hello from estargz\n")
  pack.entry({ name: "data/", type: "directory", mode: 0o750, uid: 1000, gid: 1000, mtime: t })
  pack.entry({ name: "data/big.bin", type: "file", mode: 0o600, mtime: t, pax: { "SCHILY.xattr.user.k": "v" } }, big)
  pack.entry({ name: "data/empty", type: "file", mode: 0o644, mtime: t }, "")
  pack.entry({ name: "data/hl", type: "link", linkname: "data/big.bin", mode: 0o600, mtime: t })
  pack.entry({ name: "data/sym", type: "symlink", linkname: "../etc/motd", mode: 0o777, mtime: t })
  pack.entry({ name: "dev/zero", type: "character-device", devmajor: 1, devminor: 5, mode: 0o666, mtime: t })
  pack.entry({ name: "gone/.wh..wh..opq", type: "file", mode: 0o644, mtime: t }, "")
  pack.entry({ name: ".wh.old", type: "file", mode: 0o644, mtime: t }, "")
  pack.finalize()
  await done
  return new Uint8Array(Buffer.concat(parts))
}

/** temp dirs of this file, removed in afterAll */
const made: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "lazy-estargz-"))
  made.push(d)
  return d
}
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})
const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`

test("the converter writes what the format says: the whole blob gunzips to the tar plus the TOC entry, and the store's own TOC check verifies it", async () => {
  const l = toEstargz(await sampleTar(), 64 * 1024)
  expect(sha(gunzipSync(l.blob))).toBe(l.diffId)
  const dir = tmp()
  fs.writeFileSync(path.join(dir, "blob"), l.blob)
  expect(verifyTocOfFile(path.join(dir, "blob"), l.size, "gzip", { digest: l.tocDigest as Digest, from: "test" }))
    .toEqual({ _tag: "Verified", digest: l.tocDigest as Digest })
})

test("the eStargz TOC is found by its footer, verified, and parsed: files, chunks, links, device, whiteout, opaque dir, xattrs, the TOC file itself", async () => {
  const l = toEstargz(await sampleTar(), 64 * 1024)
  const dir = tmp()
  const file = path.join(dir, "blob")
  fs.writeFileSync(file, l.blob)
  const { model, digest } = await fetchToc(fileRangeSource(file), l.size, { kind: "estargz", digest: l.tocDigest as Digest })
  expect(digest).toBe(l.tocDigest as Digest)
  expect(model.format).toBe("estargz")
  const b = nodeAt(model, "data/big.bin") as TocFile
  expect(b).toMatchObject({ kind: "file", size: big.length, mode: 0o600, nlink: 2 })
  expect(b.chunks.length).toBe(Math.ceil(big.length / (64 * 1024)))
  expect(nodeAt(model, "data/hl")).toBe(b)
  expect(b.xattrs.map(([n, v]) => [n, Buffer.from(v).toString()])).toEqual([["user.k", "v"]])
  expect(nodeAt(model, "data")).toMatchObject({ kind: "dir", uid: 1000, gid: 1000, mode: 0o750, mtime: 1_600_000_000 })
  expect(nodeAt(model, "data/sym")).toMatchObject({ kind: "symlink", target: "../etc/motd" })
  expect(nodeAt(model, "dev/zero")).toMatchObject({ kind: "char", major: 1, minor: 5 })
  expect(nodeAt(model, "old")).toMatchObject({ kind: "char", major: 0, minor: 0 })
  expect(nodeAt(model, "gone")).toMatchObject({ kind: "dir", opaque: true })
  const reader = makeChunkReader("estargz", fileRangeSource(file), tmp())
  expect(Buffer.from(await reader.read(b, 0, b.size)).equals(big)).toBe(true)
  expect(Buffer.from(await reader.read(nodeAt(model, "etc/motd") as TocFile, 0, 100)).toString()).toBe("hello from estargz\n")
  const toc = nodeAt(model, "stargz.index.json") as TocFile
  expect(sha(await reader.read(toc, 0, toc.size))).toBe(l.tocDigest)
  // a read in the middle touches one chunk
  const r2 = makeChunkReader("estargz", fileRangeSource(file), tmp())
  expect(Buffer.from(await r2.read(b, 70_000, 1000)).equals(big.subarray(70_000, 71_000))).toBe(true)
  expect(r2.stats.fetched).toBe(1)
})

test("eStargz: a wrong TOC digest is refused; a changed chunk byte is ChunkCorrupt, never returned", async () => {
  const l = toEstargz(await sampleTar(), 64 * 1024)
  const dir = tmp()
  const file = path.join(dir, "blob")
  fs.writeFileSync(file, l.blob)
  await expect(fetchToc(fileRangeSource(file), l.size, { kind: "estargz", digest: `sha256:${"0".repeat(64)}` as Digest }))
    .rejects.toThrow(/the TOC has digest/)
  const { model } = await fetchToc(fileRangeSource(file), l.size, { kind: "estargz", digest: l.tocDigest as Digest })
  const b = nodeAt(model, "data/big.bin") as TocFile
  const c = b.chunks[1]!
  const flipped: RangeSource = {
    read: async (o, n) => {
      const bytes = Buffer.from(await fileRangeSource(file).read(o, n))
      // a byte of the deflate data (stored blocks: random data does not compress)
      if (o === c.blobOffset) bytes[40]! ^= 1
      return bytes
    },
  }
  await expect(makeChunkReader("estargz", flipped, tmp()).read(b, c.fileOffset, 5)).rejects.toBeInstanceOf(ChunkCorrupt)
})
