// The FUSE answers for a lazily served layer, request by request (no mount): names from the
// TOC, attributes, the overlay opaque xattr on opaque directories, xattr size protocol,
// read-only, and a read that fails its check is EIO and an event naming the file.

import { afterAll, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as zlib from "node:zlib"
import type { Digest } from "../../../src/domain/Digest.ts"
import * as P from "../../../src/fuse/Protocol.ts"
import { makeChunkReader } from "../../../src/lazy/Chunks.ts"
import { type LazyLayer, type LazyRef, makeLazyFs } from "../../../src/lazy/LazyFs.ts"
import { parseToc } from "../../../src/lazy/TocModel.ts"
import { NodeTable } from "../../../src/serve/Nodes.ts"

const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`
const h = (nodeid: number, unique = 1n): P.InHeader => ({ len: 0, opcode: 0, unique, nodeid, uid: 0, gid: 0, pid: 1 })
const errOf = (reply: Uint8Array) => Math.abs(new DataView(reply.buffer, reply.byteOffset).getInt32(4, true))
// node:zlib's zstd API is newer than the pinned @types/node
const zstdCompressSync = (zlib as unknown as { zstdCompressSync: (b: Uint8Array) => Buffer }).zstdCompressSync
const bodyOf = (reply: Uint8Array) => reply.subarray(P.OUT_HEADER_SIZE)
const nodeIdOf = (reply: Uint8Array) => Number(new DataView(reply.buffer, reply.byteOffset).getBigUint64(P.OUT_HEADER_SIZE, true))

/** temp dirs of this file, removed in afterAll */
const made: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "lazyfs-"))
  made.push(d)
  return d
}
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

const setup = (flip = false) => {
  const content = new TextEncoder().encode("hello lazy\n")
  const frame = new Uint8Array(zstdCompressSync(content))
  const blob = new Uint8Array(100 + frame.length + 50)
  blob.set(frame, 100)
  if (flip) blob[100 + frame.length - 2]! ^= 1
  const model = parseToc("zstd:chunked", JSON.stringify({
    version: 1,
    entries: [
      { type: "dir", name: "d/", mode: 0o755 },
      { type: "reg", name: "d/.wh..wh..opq", size: 0 },
      { type: "reg", name: "d/f", mode: 0o640, uid: 7, size: content.length, digest: sha(content), offset: 100, endOffset: 100 + frame.length, xattrs: { "user.a": "eHl6" } },
      { type: "symlink", name: "d/l", linkName: "f" },
    ],
  }), blob.length, 100 + frame.length)
  const events: string[] = []
  const layer: LazyLayer = {
    layer: `sha256:${"b".repeat(64)}` as Digest,
    model,
    reader: makeChunkReader("zstd:chunked", { read: async (o, n) => blob.subarray(o, o + n) }, tmp()),
    info: new TextEncoder().encode("{}"),
    blobSize: blob.length,
    blobFile: () => Promise.reject(new Error("not complete")),
    corrupt: (file) => events.push(`corrupt ${file}`),
    failed: (file) => events.push(`failed ${file}`),
    readTimeoutMs: 5000,
    opaqueXattr: "trusted.overlay.opaque",
  }
  const nodes = new NodeTable()
  const lazy = makeLazyFs(nodes, (ref: LazyRef) => ({ kind: "lazy", ref }))
  const diffId = nodeIdOf(lazy.layerEntry(1n, 1, "diff", layer)!)
  const at = (id: number) => {
    const n = nodes.get(id)!
    return { n, ref: (n.data as { kind: "lazy"; ref: LazyRef }).ref }
  }
  const call = async (req: P.Request) => {
    const { n, ref } = at(req.h.nodeid)
    return (await lazy.handle(req, n, ref))!
  }
  const lookup = async (parent: number, name: string) => call({ op: "Lookup", h: h(parent), name })
  return { layer, diffId, call, lookup, events, content }
}

test("names, attributes, symlinks and reads come from the TOC; the opaque directory carries the overlay xattr", async () => {
  const { diffId, call, lookup, content } = setup()
  const d = await lookup(diffId, "d")
  expect(errOf(d)).toBe(0)
  const dId = nodeIdOf(d)
  expect(errOf(await lookup(dId, ".wh..wh..opq"))).toBe(P.Errno.ENOENT)
  expect(errOf(await lookup(dId, "nope"))).toBe(P.Errno.ENOENT)
  // opaque: size first, then the value
  const size = await call({ op: "Getxattr", h: h(dId), name: "trusted.overlay.opaque", size: 0 })
  expect(new DataView(size.buffer).getUint32(P.OUT_HEADER_SIZE, true)).toBe(1)
  expect(new TextDecoder().decode(bodyOf(await call({ op: "Getxattr", h: h(dId), name: "trusted.overlay.opaque", size: 10 })))).toBe("y")
  const fId = nodeIdOf(await lookup(dId, "f"))
  const attr = await call({ op: "Getattr", h: h(fId) })
  const v = new DataView(attr.buffer, attr.byteOffset + P.OUT_HEADER_SIZE + 16)
  expect(Number(v.getBigUint64(8, true))).toBe(content.length)
  expect(v.getUint32(60, true)).toBe(P.S_IFREG | 0o640)
  expect(v.getUint32(68, true)).toBe(7)
  expect(new TextDecoder().decode(bodyOf(await call({ op: "Listxattr", h: h(fId), size: 100 })))).toBe("user.a\0")
  expect(errOf(await call({ op: "Getxattr", h: h(fId), name: "user.a", size: 1 }))).toBe(34) // ERANGE
  expect(errOf(await call({ op: "Getxattr", h: h(fId), name: "trusted.overlay.opaque", size: 10 }))).toBe(P.Errno.ENODATA)
  expect(new TextDecoder().decode(bodyOf(await call({ op: "Read", h: h(fId), fh: 0n, offset: 6, size: 100 })))).toBe("lazy\n")
  const lId = nodeIdOf(await lookup(dId, "l"))
  expect(new TextDecoder().decode(bodyOf(await call({ op: "Readlink", h: h(lId) })))).toBe("f")
  // read-only
  expect(errOf(await call({ op: "Mkdir", h: h(dId), name: "x" }))).toBe(P.Errno.EROFS)
  expect(errOf(await call({ op: "Create", h: h(dId), name: "x", mode: 0o644, flags: 0 }))).toBe(P.Errno.EROFS)
})

test("a chunk that fails its check: the READ is EIO, and the event names the file", async () => {
  const { diffId, call, lookup, events } = setup(true)
  const dId = nodeIdOf(await lookup(diffId, "d"))
  const fId = nodeIdOf(await lookup(dId, "f"))
  expect(errOf(await call({ op: "Read", h: h(fId), fh: 0n, offset: 0, size: 100 }))).toBe(P.Errno.EIO)
  expect(events).toEqual(["corrupt d/f"])
})
