/**
 * The FUSE side of a layer served lazily: its `diff` is a directory built from the verified
 * TOC (every entry as `als pull` would have extracted it, in overlay format: whiteouts are 0/0
 * char devices, opaque directories carry the overlay opaque xattr), its `info` a file of the
 * verified metadata, its `blob` a file of the blob's size whose reads wait for the background
 * pull to complete (podman stats it at lookup; only save/push read it).
 *
 * Reads of a file fetch only the chunks they touch (Chunks.ts), each checked before a byte is
 * returned; a chunk that fails its check is EIO and an event naming layer and file; a source
 * that does not answer within the read deadline is EIO, never a read hung forever.
 * Everything is read-only; the tree never changes, so the kernel may keep it long.
 */
import * as path from "node:path"
import type { Digest } from "../domain/Digest.ts"
import * as P from "../fuse/Protocol.ts"
import * as R from "../fuse/Replies.ts"
import type { Node, NodeTable } from "../serve/Nodes.ts"
import { ChunkCorrupt, type ChunkReader } from "./Chunks.ts"
import type { TocModel, TocNode } from "./TocModel.ts"

export interface LazyLayer {
  /** the blob digest (the layer's name in the store once complete) */
  readonly layer: Digest
  readonly model: TocModel
  readonly reader: ChunkReader
  /** the `info` file's bytes */
  readonly info: Uint8Array
  readonly blobSize: number
  /** the verified blob file once the layer is complete; rejects if it never will be */
  readonly blobFile: () => Promise<string>
  /** a chunk failed its check: for the log */
  readonly corrupt: (file: string, detail: string) => void
  /** a read that failed for another reason (source gone, deadline) */
  readonly failed: (file: string, detail: string) => void
  readonly readTimeoutMs: number
  /** the overlay opaque xattr's name (trusted.overlay.opaque as root) */
  readonly opaqueXattr: string
}

/** What a node of a lazy layer is: a TOC entry below `diff`, or the layer's info or blob. */
export type LazyRef =
  | { readonly what: "toc"; readonly layer: LazyLayer; readonly node: TocNode; readonly path: string }
  | { readonly what: "info"; readonly layer: LazyLayer }
  | { readonly what: "blob"; readonly layer: LazyLayer }

const S_IFCHR = 0o020000
const S_IFBLK = 0o060000
const S_IFIFO = 0o010000
const DT = { fifo: 1, char: 2, dir: 4, block: 6, file: 8, symlink: 10 } as const
const ERANGE = 34
const FOPEN_KEEP_CACHE = 1 << 1
/** seconds the kernel may keep names and attributes: a lazy tree never changes */
const VALID = 3600

const enc = new TextEncoder()

// st_ino for TOC entries: one per entry (hard links share theirs), far above the node ids
let nextIno = 2 ** 40
const inos = new WeakMap<object, number>()
const inoOf = (key: object): number => {
  let n = inos.get(key)
  if (n === undefined) {
    n = nextIno++
    inos.set(key, n)
  }
  return n
}

const rdevOf = (major: number, minor: number) => ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0

export const lazyAttr = (ref: LazyRef, started: number): R.Attr => {
  if (ref.what === "info") return { ino: inoOf(ref.layer.info), mode: P.S_IFREG | 0o444, size: ref.layer.info.length, nlink: 1, time: started }
  if (ref.what === "blob") return { ino: inoOf(ref.layer), mode: P.S_IFREG | 0o444, size: ref.layer.blobSize, nlink: 1, time: started }
  const n = ref.node
  const base = { ino: inoOf(n), uid: n.uid, gid: n.gid, time: n.mtime }
  switch (n.kind) {
    case "dir":
      return { ...base, mode: P.S_IFDIR | n.mode, size: 4096, nlink: 2 }
    case "file":
      return { ...base, mode: P.S_IFREG | n.mode, size: n.size, nlink: Math.max(1, n.nlink) }
    case "symlink":
      return { ...base, mode: P.S_IFLNK | 0o777, size: enc.encode(n.target).length, nlink: 1 }
    case "char":
    case "block":
      return { ...base, mode: (n.kind === "char" ? S_IFCHR : S_IFBLK) | n.mode, size: 0, nlink: 1, rdev: rdevOf(n.major, n.minor) }
    case "fifo":
      return { ...base, mode: S_IFIFO | n.mode, size: 0, nlink: 1 }
  }
}

const xattrsOf = (ref: LazyRef): ReadonlyArray<readonly [string, Uint8Array]> => {
  if (ref.what !== "toc") return []
  const n = ref.node
  return n.kind === "dir" && n.opaque ? [...n.xattrs, [ref.layer.opaqueXattr, enc.encode("y")] as const] : n.xattrs
}

const withDeadline = <A>(p: Promise<A>, ms: number, what: string): Promise<A> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms)
    p.then((v) => (clearTimeout(t), resolve(v)), (e) => (clearTimeout(t), reject(e)))
  })

const readFileRange = async (file: string, offset: number, size: number): Promise<Uint8Array> => {
  const fs = await import("node:fs/promises")
  const fh = await fs.open(file, "r")
  try {
    const buf = Buffer.alloc(size)
    const { bytesRead } = await fh.read(buf, 0, size, offset)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/** A complete layer's files in the store: its blob and its extracted tree. */
interface Completed {
  readonly blob: string
  readonly diff: string
}

/** A TOC path joined below a directory stays below it: no empty, `.` or `..` component. */
const isPlainRelative = (p: string) => p !== "" && p.split("/").every((c) => c !== "" && c !== "." && c !== "..")

export interface LazyFs {
  /** LOOKUP of `diff`, `info` or `blob` in a lazy layer's directory; undefined for other names */
  readonly layerEntry: (unique: bigint, parent: number, name: string, layer: LazyLayer) => Uint8Array | undefined
  /** every request on a node of a lazy layer (not FORGET, which the table handles) */
  readonly handle: (req: P.Request, node: Node, ref: LazyRef) => Uint8Array | Promise<Uint8Array> | undefined
}

export const makeLazyFs = (nodes: NodeTable, wrap: (ref: LazyRef) => Node["data"]): LazyFs => {
  const started = Date.now() / 1000

  const entry = (unique: bigint, parent: number, name: string, ref: LazyRef) => {
    const node = nodes.lookup(parent, name, wrap(ref))
    return R.replyEntry(unique, node.id, lazyAttr(ref, started), { entry: VALID, attr: VALID })
  }

  const layerEntry = (unique: bigint, parent: number, name: string, layer: LazyLayer) => {
    switch (name) {
      case "diff":
        return entry(unique, parent, name, { what: "toc", layer, node: layer.model.root, path: "" })
      case "info":
        return entry(unique, parent, name, { what: "info", layer })
      case "blob":
        return entry(unique, parent, name, { what: "blob", layer })
      default:
        return undefined
    }
  }

  const read = async (unique: bigint, ref: LazyRef, offset: number, size: number): Promise<Uint8Array> => {
    const layer = ref.layer
    if (ref.what === "info") return R.replyData(unique, layer.info.subarray(offset, offset + size))
    if (ref.what === "blob") {
      try {
        const file = await withDeadline(layer.blobFile(), layer.readTimeoutMs, "the layer's blob")
        return R.replyData(unique, await readFileRange(file, offset, Math.min(size, Math.max(0, layer.blobSize - offset))))
      } catch (e) {
        layer.failed("blob", (e as Error).message)
        return R.replyError(unique, P.Errno.EIO)
      }
    }
    if (ref.node.kind !== "file") return R.replyError(unique, P.Errno.EINVAL)
    try {
      const bytes = await withDeadline(layer.reader.read(ref.node, offset, size), layer.readTimeoutMs, `reading ${ref.path}`)
      return R.replyData(unique, bytes)
    } catch (e) {
      if (e instanceof ChunkCorrupt) layer.corrupt(ref.path, e.message)
      else layer.failed(ref.path, (e as Error).message)
      return R.replyError(unique, P.Errno.EIO)
    }
  }

  // FUSE passthrough (src/fuse/Passthrough.ts): once the layer is complete, its committed copy in
  // the store holds every file, checked against the DiffID; an OPEN for reading names the file
  // there and the kernel reads it without us. Before that, a file all of whose chunks were
  // fetched and checked has a copy of its own (Chunks.ts), named the same way; the other files'
  // reads come here (chunks, verified). An open answered the plain way stays so for its handle.
  const completion = new WeakMap<LazyLayer, { done?: Completed }>()
  const completed = (layer: LazyLayer): Promise<Completed | undefined> => {
    let c = completion.get(layer)
    if (!c) {
      const watch: { done?: Completed } = {}
      completion.set(layer, c = watch)
      layer.blobFile().then((blob) => (watch.done = { blob, diff: path.join(path.dirname(blob), "diff") }), () => {})
    }
    const known = c
    if (known.done) return Promise.resolve(known.done)
    // a layer already complete settles within this turn of the event loop: wait that long, no longer
    return new Promise((resolve) => setImmediate(() => resolve(known.done)))
  }

  const handle = (req: P.Request, node: Node, ref: LazyRef): Uint8Array | Promise<Uint8Array> | undefined => {
    const unique = req.h.unique
    const dir = ref.what === "toc" && ref.node.kind === "dir" ? ref.node : undefined
    switch (req.op) {
      case "Lookup": {
        if (!dir || ref.what !== "toc") return R.replyError(unique, dir ? P.Errno.ENOENT : P.Errno.ENOTDIR)
        // the decoder reads names as latin1 bytes; TOC names are Unicode, written as UTF-8
        const name = Buffer.from(req.name, "latin1").toString("utf8")
        const child = dir.children.get(name)
        if (!child) return R.replyError(unique, P.Errno.ENOENT)
        return entry(unique, node.id, req.name, { what: "toc", layer: ref.layer, node: child, path: ref.path === "" ? name : `${ref.path}/${name}` })
      }
      case "Getattr":
        return R.replyAttr(unique, lazyAttr(ref, started), VALID)
      case "Readlink":
        return ref.what === "toc" && ref.node.kind === "symlink" ? R.replyData(unique, enc.encode(ref.node.target)) : R.replyError(unique, P.Errno.EINVAL)
      case "Opendir":
        return dir ? R.replyOpen(unique, 0n) : R.replyError(unique, P.Errno.ENOTDIR)
      case "Readdir": {
        if (!dir) return R.replyError(unique, P.Errno.ENOTDIR)
        const entries: R.DirEntry[] = [
          { ino: inoOf(dir), name: ".", type: DT.dir },
          { ino: node.parent || node.id, name: "..", type: DT.dir },
        ]
        for (const [name, child] of dir.children) entries.push({ ino: inoOf(child), name, type: DT[child.kind] })
        return R.replyData(unique, R.encodeDirents(entries, req.offset, req.size))
      }
      case "Open": {
        if (dir) return R.replyError(unique, P.Errno.EISDIR)
        if (ref.what === "toc" && ref.node.kind !== "file") return R.replyError(unique, P.Errno.EACCES)
        const plain = R.replyOpen(unique, 0n, FOPEN_KEEP_CACHE)
        if (ref.what === "info" || !P.isReadOnlyOpen(req.flags)) return plain
        if (ref.what === "toc" && (ref.node.kind !== "file" || !isPlainRelative(ref.path))) return plain
        const file = ref.what === "toc" && ref.node.kind === "file" ? ref.node : undefined
        const size = file ? file.size : ref.layer.blobSize
        const copyOf = (copy: string | undefined) => (copy === undefined ? plain : R.backedOpen(plain, copy, size))
        const backed = (done: Completed | undefined): Uint8Array | Promise<Uint8Array> => {
          if (done !== undefined) return R.backedOpen(plain, ref.what === "blob" ? done.blob : path.join(done.diff, ref.path), size)
          // a copy being written is local disk work: worth waiting for rather than a trip per read
          // (bounded like a read: a disk that stalls makes it a plain open, not a hung one)
          const copy = file ? ref.layer.reader.complete(file) : undefined
          if (!(copy instanceof Promise)) return copyOf(copy)
          return withDeadline(copy, ref.layer.readTimeoutMs, "the file's copy").then(copyOf, () => plain)
        }
        const known = completion.get(ref.layer)?.done
        return known ? backed(known) : completed(ref.layer).then(backed)
      }
      case "Read":
        return read(unique, ref, req.offset, req.size)
      case "Release":
      case "Releasedir":
      case "Access":
        return R.replyEmpty(unique)
      case "Getxattr": {
        const hit = xattrsOf(ref).find(([n]) => n === req.name)
        if (!hit) return R.replyError(unique, P.Errno.ENODATA)
        if (req.size === 0) return R.replyXattrSize(unique, hit[1].length)
        return req.size < hit[1].length ? R.replyError(unique, ERANGE) : R.replyData(unique, hit[1])
      }
      case "Listxattr": {
        const names = enc.encode(xattrsOf(ref).map(([n]) => `${n}\0`).join(""))
        if (req.size === 0) return R.replyXattrSize(unique, names.length)
        return req.size < names.length ? R.replyError(unique, ERANGE) : R.replyData(unique, names)
      }
      case "Statfs":
        return R.replyStatfs(unique)
      case "Create":
      case "Mknod":
      case "Mkdir":
      case "Rmdir":
      case "Unlink":
      case "Write":
        return R.replyError(unique, P.Errno.EROFS)
      case "Forget":
      case "BatchForget":
      case "Interrupt":
        return undefined
      case "Init":
      case "Destroy":
      case "Unsupported":
      case "Malformed":
        return R.replyError(unique, P.Errno.ENOSYS)
    }
  }

  return { layerEntry, handle }
}
