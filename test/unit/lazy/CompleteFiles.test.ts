// Files complete before their layer (Chunks.ts `complete`, LazyFs.ts OPEN): once every chunk of
// a file was fetched and checked, the file has a copy of its own on disk (exactly its bytes,
// written once, read-only) and an OPEN of it answers in passthrough against that copy; a file
// with a chunk missing is still answered the plain way (READ through us). Copies an earlier
// process left are not reused. Against the real kernel (6.9+, root): the second read of a file
// complete on disk sends no READ to the session, while the layer is still not complete; a file
// not complete still is read through the session.
//
// Every read through the mount happens in another process: this thread answers the requests.

import { afterAll, beforeAll, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import tar from "tar-stream"
import type { Digest } from "../../../src/domain/Digest.ts"
import * as P from "../../../src/fuse/Protocol.ts"
import * as R from "../../../src/fuse/Replies.ts"
import { type Session, startSession } from "../../../src/fuse/Session.ts"
import { type ChunkReader, fileRangeSource, makeChunkReader } from "../../../src/lazy/Chunks.ts"
import { type LazyLayer, type LazyRef, makeLazyFs } from "../../../src/lazy/LazyFs.ts"
import { fetchToc } from "../../../src/lazy/TocFetch.ts"
import { nodeAt, type TocFile, type TocModel } from "../../../src/lazy/TocModel.ts"
import { NodeTable } from "../../../src/serve/Nodes.ts"
import { toEstargz } from "../../lib/estargz.ts"

const made: string[] = []
const sessions: Session[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "lazy-complete-"))
  made.push(d)
  return d
}
afterAll(() => {
  for (const s of sessions) {
    try {
      s.unmount()
    } catch {
      // already gone
    }
  }
  // a directory something is still mounted on is left: a recursive removal would walk into it
  const mounted = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "")
  for (const d of made.splice(0)) if (!mounted.some((m) => m === d || m.startsWith(`${d}/`))) fs.rmSync(d, { recursive: true, force: true })
})

const CHUNK = 32 * 1024
const files: Record<string, Uint8Array> = {
  "data/big.bin": new Uint8Array(randomBytes(5 * CHUNK + 100)),
  "data/other.bin": new Uint8Array(randomBytes(3 * CHUNK)),
  "etc/motd": new TextEncoder().encode("hello, complete file\n"),
}

let model: TocModel
let blobFile: string
let blobSize: number

beforeAll(async () => {
  const pack = tar.pack()
  const parts: Buffer[] = []
  pack.on("data", (c: unknown) => void parts.push(c as Buffer))
  const done = new Promise<void>((r) => pack.on("end", () => r()))
  pack.entry({ name: "data/", type: "directory", mode: 0o755 })
  pack.entry({ name: "etc/", type: "directory", mode: 0o755 })
  for (const [name, body] of Object.entries(files)) pack.entry({ name, type: "file", mode: 0o644 }, Buffer.from(body))
  pack.finalize()
  await done
  const l = toEstargz(new Uint8Array(Buffer.concat(parts)), CHUNK)
  blobFile = path.join(tmp(), "blob")
  fs.writeFileSync(blobFile, l.blob)
  blobSize = l.size
  model = (await fetchToc(fileRangeSource(blobFile), l.size, { kind: "estargz", digest: l.tocDigest as Digest })).model
})

const fileAt = (p: string) => nodeAt(model, p) as TocFile
const settled = async (reader: ChunkReader, f: TocFile) => await reader.complete(f)

test("a file gets its copy once all its chunks are in: exactly its bytes, read-only, never before; an earlier process's copies are not reused; dropped with the layer", async () => {
  const cache = tmp()
  const big = fileAt("data/big.bin")
  expect(big.chunks.length).toBe(6)
  const reader = makeChunkReader("estargz", fileRangeSource(blobFile), cache)
  expect(reader.complete(big)).toBeUndefined()
  // all but the last chunk: not complete
  await reader.read(big, 0, 5 * CHUNK)
  expect(await settled(reader, big)).toBeUndefined()
  await reader.read(big, 5 * CHUNK, 100)
  const copy = await settled(reader, big)
  expect(copy).toBeString()
  expect(path.dirname(copy!)).toBe(path.join(cache, "files"))
  expect(Buffer.from(fs.readFileSync(copy!)).equals(Buffer.from(files["data/big.bin"]!))).toBe(true)
  const st = fs.lstatSync(copy!)
  expect(st.isFile()).toBe(true)
  expect(st.mode & 0o777).toBe(0o400)
  expect(reader.complete(big)).toBe(copy!) // settled: the path itself, no waiting
  // a file never read has none
  expect(reader.complete(fileAt("data/other.bin"))).toBeUndefined()

  // a new process on the same cache: the old copy is gone; a read (from the chunk cache) makes it again
  const again = makeChunkReader("estargz", fileRangeSource(blobFile), cache)
  expect(fs.existsSync(copy!)).toBe(false)
  expect(again.complete(big)).toBeUndefined()
  await again.read(big, 0, 10)
  expect(again.stats.fetched).toBe(0)
  const copy2 = await settled(again, big)
  expect(Buffer.from(fs.readFileSync(copy2!)).equals(Buffer.from(files["data/big.bin"]!))).toBe(true)

  // a chunk gone from the cache after it was fetched: no copy (the copy reads every chunk back);
  // the read that fetches it again makes one
  const third = makeChunkReader("estargz", fileRangeSource(blobFile), cache)
  const other = fileAt("data/other.bin")
  await third.read(other, 0, 10) // the first chunk only
  for (const f of fs.readdirSync(cache)) if (f.startsWith("sha256-")) fs.rmSync(path.join(cache, f))
  await third.read(other, CHUNK, 2 * CHUNK)
  expect(await settled(third, other)).toBeUndefined()
  await third.read(other, 0, 10)
  const copy3 = await settled(third, other)
  expect(Buffer.from(fs.readFileSync(copy3!)).equals(Buffer.from(files["data/other.bin"]!))).toBe(true)

  third.dropCopies()
  expect(third.complete(other)).toBeUndefined()
  expect(fs.existsSync(path.join(cache, "files"))).toBe(false)
})

/** a lazy layer over the test blob, not complete (its background pull never ends here) */
const layerOf = (reader: ChunkReader): LazyLayer => ({
  layer: `sha256:${"b".repeat(64)}` as Digest,
  model,
  reader,
  info: new TextEncoder().encode("{}"),
  blobSize,
  blobFile: () => new Promise<string>(() => undefined),
  corrupt: () => undefined,
  failed: () => undefined,
  readTimeoutMs: 10_000,
  opaqueXattr: "trusted.overlay.opaque",
})

const h = (nodeid: number, unique = 1n): P.InHeader => ({ len: 0, opcode: 0, unique, nodeid, uid: 0, gid: 0, pid: 1 })
const nodeIdOf = (reply: Uint8Array) => Number(new DataView(reply.buffer, reply.byteOffset).getBigUint64(P.OUT_HEADER_SIZE, true))

test("OPEN of a complete file answers in passthrough against its copy; of a file with a chunk missing, the plain way; open for writing never", async () => {
  const reader = makeChunkReader("estargz", fileRangeSource(blobFile), tmp())
  const layer = layerOf(reader)
  const nodes = new NodeTable()
  const lazy = makeLazyFs(nodes, (ref: LazyRef) => ({ kind: "lazy", ref }))
  const call = async (req: P.Request) => {
    const n = nodes.get(req.h.nodeid)!
    return (await lazy.handle(req, n, (n.data as { kind: "lazy"; ref: LazyRef }).ref))!
  }
  const diff = nodeIdOf(lazy.layerEntry(1n, 1, "diff", layer)!)
  const data = nodeIdOf(await call({ op: "Lookup", h: h(diff), name: "data" }))
  const big = nodeIdOf(await call({ op: "Lookup", h: h(data), name: "big.bin" }))
  const other = nodeIdOf(await call({ op: "Lookup", h: h(data), name: "other.bin" }))
  const open = (id: number, flags = 0) => call({ op: "Open", h: h(id), flags })

  expect(await open(big)).not.toBeInstanceOf(R.BackedOpen)
  await call({ op: "Read", h: h(big), fh: 0n, offset: 0, size: 5 * CHUNK + 100 })
  await call({ op: "Read", h: h(other), fh: 0n, offset: 0, size: 100 })
  const backed = await open(big)
  expect(backed).toBeInstanceOf(R.BackedOpen)
  const b = backed as R.BackedOpen
  expect(b.size).toBe(files["data/big.bin"]!.length)
  expect(Buffer.from(fs.readFileSync(b.backing)).equals(Buffer.from(files["data/big.bin"]!))).toBe(true)
  // its fallback is the plain answer
  expect(new DataView(b.buffer, b.byteOffset).getInt32(4, true)).toBe(0)
  expect(await open(other)).not.toBeInstanceOf(R.BackedOpen)
  expect(await open(big, fs.constants.O_RDWR)).not.toBeInstanceOf(R.BackedOpen)
})

test("through the kernel: the second read of a file complete on disk sends no READ to the session while its layer is still not complete; a file not complete still is read through it", async () => {
  const reader = makeChunkReader("estargz", fileRangeSource(blobFile), tmp())
  const layer = layerOf(reader)
  const nodes = new NodeTable()
  const lazy = makeLazyFs(nodes, (ref: LazyRef) => ({ kind: "lazy", ref }))
  const reads = new Map<string, number>()
  const now = Date.now() / 1000
  const mnt = tmp()
  const session = await startSession({
    mountpoint: mnt,
    onNotice: () => undefined,
    onError: () => undefined,
    handler: {
      handle: (r) => {
        if (r.h.nodeid === 1) {
          if (r.op === "Lookup") return lazy.layerEntry(r.h.unique, 1, r.name, layer) ?? R.replyError(r.h.unique, P.Errno.ENOENT)
          if (r.op === "Getattr") return R.replyAttr(r.h.unique, { ino: 1, mode: P.S_IFDIR | 0o555, size: 0, nlink: 2, time: now }, 0)
          return R.replyError(r.h.unique, P.Errno.ENOSYS)
        }
        const n = nodes.get(r.h.nodeid)
        if (!n || n.data.kind !== "lazy") return r.op === "Forget" || r.op === "BatchForget" ? undefined : R.replyError(r.h.unique, P.Errno.ENOENT)
        const ref = n.data.ref
        if (r.op === "Read" && ref.what === "toc") reads.set(ref.path, (reads.get(ref.path) ?? 0) + 1)
        return lazy.handle(r, n, ref)
      },
    },
  })
  sessions.push(session)
  if (session.passthrough().state !== "on") throw new Error(`passthrough is not on: ${JSON.stringify(session.passthrough())}`)
  const cat = async (p: string) => {
    const child = Bun.spawn(["cat", path.join(mnt, "diff", p)], { stdout: "pipe", stderr: "pipe" })
    const out = Buffer.from(await new Response(child.stdout).arrayBuffer())
    expect({ code: await child.exited, err: await new Response(child.stderr).text() }).toEqual({ code: 0, err: "" })
    return out
  }
  const readsOf = (p: string) => reads.get(p) ?? 0

  for (const p of ["etc/motd", "data/big.bin"]) {
    expect((await cat(p)).equals(Buffer.from(files[p]!))).toBe(true)
    expect(readsOf(p)).toBeGreaterThan(0) // the first read crossed: the file was not complete
    expect(await settled(reader, fileAt(p))).toBeString()
    // the first open's RELEASE reaches us after cat exits; an open before it is still plain (a
    // node is cached or passthrough, never both): read until an open is the kernel's (bounded)
    let before = readsOf(p)
    let again = await cat(p)
    for (let i = 0; i < 40 && readsOf(p) > before; i++) {
      await new Promise((r) => setTimeout(r, 100))
      before = readsOf(p)
      again = await cat(p)
    }
    expect(again.equals(Buffer.from(files[p]!))).toBe(true)
    expect(readsOf(p)).toBe(before) // no READ for it: the kernel read the copy
  }
  expect(session.passthrough().stats.passthrough).toBeGreaterThanOrEqual(2)

  // data/other.bin: one chunk of it fetched (a partial read), so it is not complete: read through us
  await reader.read(fileAt("data/other.bin"), 0, 10)
  expect(reader.complete(fileAt("data/other.bin"))).toBeUndefined()
  const before = readsOf("data/other.bin")
  expect((await cat("data/other.bin")).equals(Buffer.from(files["data/other.bin"]!))).toBe(true)
  expect(readsOf("data/other.bin")).toBeGreaterThan(before)
  session.unmount()
})
