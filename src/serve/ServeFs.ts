/**
 * The served tree, request by request (ALS-PROTOCOL.md sections 2 and 5):
 *
 *   /                         listed empty; names below are parsed, never listed
 *   /<b64(ref)>/              a ref directory
 *   /<key>/, /<b64(ref)>/<key>/        a layer directory: diff, info, blob
 *   /.pool/<b64(k=v)>/…/rootfs.<digest>/  the same, found from the seed's annotations
 *   <layer dir>/{diff,info,blob}       symlinks to the layer's entries in the store: the data
 *                                      plane stays on disk, the kernel follows them
 *
 * Read-only, except containers/storage's two notifications, both answered ENOENT as it
 * expects from a store that counts uses: creating `<layer dir>/use` (a holder more) and
 * `rmdir <layer dir>` (a holder less). Every name that is not one of the shapes above is
 * ENOENT (Names.ts); nothing from a name reaches a path but a parsed digest.
 *
 * Cache lifetimes: positive answers for committed layers are kept a while (they never change
 * while they exist); a missing layer is an error answer, which the kernel does not cache, so
 * the client's next look asks again.
 */
import type { Digest } from "../domain/Digest.ts"
import type { FuseHandler } from "../fuse/Session.ts"
import * as P from "../fuse/Protocol.ts"
import * as R from "../fuse/Replies.ts"
import { type Node, NodeTable, type NodeKind } from "./Nodes.ts"
import { MAX_POOL_DEPTH, parseKey, parseLayerEntry, parsePoolElement, parseRefName, parseRootfsName, POOL_DIR, poolTarget, USE_FILE } from "./Names.ts"
import type { LayerRequest, ServedLayer } from "./Resolver.ts"
import { type LazyLayer, lazyAttr, makeLazyFs } from "../lazy/LazyFs.ts"

/** A layer the supply serves lazily carries its lazy side (src/lazy/LazySupply.ts). */
const lazyOf = (served: ServedLayer): LazyLayer | undefined => (served as ServedLayer & { readonly lazy?: LazyLayer }).lazy

export interface LayerSupply {
  readonly resolve: (req: LayerRequest) => Promise<ServedLayer | undefined>
  readonly stored: (key: Digest) => Promise<ServedLayer | undefined>
  readonly used: (tag: "LayerAcquired" | "LayerReleased", layer: ServedLayer, key: Digest, ref: string | undefined, pid: number) => void
}

export interface ServeFsOptions {
  /** seconds the kernel may keep a name / attributes of a directory that always exists */
  readonly dirValid?: number
  /** seconds the kernel may keep a layer directory and its entries */
  readonly layerValid?: number
}

const enc = new TextEncoder()

export const makeServeFs = (supply: LayerSupply, opts: ServeFsOptions = {}): FuseHandler & { readonly nodes: NodeTable } => {
  const nodes = new NodeTable()
  const lazyFs = makeLazyFs(nodes, (ref) => ({ kind: "lazy", ref }))
  const dirValid = opts.dirValid ?? 60
  const layerValid = opts.layerValid ?? 60
  const started = Date.now() / 1000

  const attrOf = (id: number, data: NodeKind): R.Attr => {
    switch (data.kind) {
      case "link":
        return { ino: id, mode: P.S_IFLNK | 0o777, size: enc.encode(data.target).length, nlink: 1, time: started }
      case "lazy":
        return lazyAttr(data.ref, started)
      case "layer":
        // writable by root: containers/storage creates `use` here (and is answered ENOENT)
        return { ino: id, mode: P.S_IFDIR | 0o755, size: 0, nlink: 2, time: started }
      default:
        return { ino: id, mode: P.S_IFDIR | 0o555, size: 0, nlink: 2, time: started }
    }
  }
  const validOf = (data: NodeKind) => (data.kind === "layer" || data.kind === "link" ? layerValid : dirValid)

  const entry = (unique: bigint, parent: number, name: string, data: NodeKind) => {
    const node = nodes.lookup(parent, name, data)
    const v = validOf(data)
    return R.replyEntry(unique, node.id, attrOf(node.id, data), { entry: v, attr: v })
  }

  const enoent = (unique: bigint) => R.replyError(unique, P.Errno.ENOENT)

  const layerData = (served: ServedLayer, key: Digest, ref: string | undefined): NodeKind => ({
    kind: "layer",
    key,
    ref,
    layer: served.layer,
    dir: served.dir,
    ...(lazyOf(served) ? { lazy: lazyOf(served) } : {}),
  })

  const lookupLayer = async (unique: bigint, parent: Node, name: string, req: LayerRequest) => {
    const served = await supply.resolve(req)
    if (!served) return enoent(unique)
    return entry(unique, parent.id, name, layerData(served, req.key, req.ref))
  }

  const lookup = (req: Extract<P.Request, { op: "Lookup" }>): Uint8Array | Promise<Uint8Array> => {
    const unique = req.h.unique
    const parent = nodes.get(req.h.nodeid)
    if (!parent) return enoent(unique)
    const name = req.name
    const d = parent.data
    switch (d.kind) {
      case "root": {
        if (name === POOL_DIR) return entry(unique, parent.id, name, { kind: "pool", annotations: [] })
        const key = parseKey(name)
        if (key) return lookupLayer(unique, parent, name, { key })
        const ref = parseRefName(name)
        return ref === undefined ? enoent(unique) : entry(unique, parent.id, name, { kind: "ref", ref })
      }
      case "ref": {
        const key = parseKey(name)
        return key ? lookupLayer(unique, parent, name, { key, ref: d.ref }) : enoent(unique)
      }
      case "pool": {
        const digest = parseRootfsName(name)
        if (digest) {
          const target = poolTarget(d.annotations, digest)
          if (!target) return enoent(unique)
          return lookupLayer(unique, parent, name, { key: digest, ref: target.ref, annotations: target.annotations })
        }
        const kv = parsePoolElement(name)
        if (!kv || d.annotations.length >= MAX_POOL_DEPTH) return enoent(unique)
        return entry(unique, parent.id, name, { kind: "pool", annotations: [...d.annotations, kv] })
      }
      case "layer": {
        if (d.lazy) return lazyFs.layerEntry(unique, parent.id, name, d.lazy) ?? enoent(unique)
        const e = parseLayerEntry(name)
        return e ? entry(unique, parent.id, name, { kind: "link", target: `${d.dir}/${e}` }) : enoent(unique)
      }
      case "link":
        return R.replyError(unique, P.Errno.ENOTDIR)
      case "lazy":
        return lazyFs.handle(req, parent, d.ref) ?? enoent(unique)
    }
  }

  /** `use` in a layer directory: a holder more, and ENOENT as containers/storage expects. */
  const create = (unique: bigint, node: Node | undefined, name: string, pid: number) => {
    if (!node || node.data.kind !== "layer") return R.replyError(unique, node ? P.Errno.EROFS : P.Errno.ENOENT)
    if (name !== USE_FILE) return R.replyError(unique, P.Errno.EROFS)
    const d = node.data
    supply.used("LayerAcquired", { dir: d.dir, layer: d.layer }, d.key, d.ref, pid)
    return enoent(unique)
  }

  /** rmdir of a layer directory: a holder less, and ENOENT. */
  const rmdir = async (unique: bigint, parent: Node | undefined, name: string, pid: number) => {
    if (!parent || (parent.data.kind !== "root" && parent.data.kind !== "ref")) return enoent(unique)
    const key = parseKey(name)
    if (!key) return R.replyError(unique, parseRefName(name) !== undefined ? P.Errno.EROFS : P.Errno.ENOENT)
    const ref = parent.data.kind === "ref" ? parent.data.ref : undefined
    const known = nodes.child(parent.id, name)
    const served = known?.data.kind === "layer"
      ? { dir: known.data.dir, layer: known.data.layer }
      : await supply.stored(key).catch(() => undefined)
    if (served) supply.used("LayerReleased", served, key, ref, pid)
    return enoent(unique)
  }

  const readdir = (req: Extract<P.Request, { op: "Readdir" }>) => {
    const node = nodes.get(req.h.nodeid)
    if (!node) return enoent(req.h.unique)
    if (node.data.kind === "link") return R.replyError(req.h.unique, P.Errno.ENOTDIR)
    const entries: R.DirEntry[] = [
      { ino: node.id, name: ".", type: P.DT_DIR },
      { ino: node.parent || node.id, name: "..", type: P.DT_DIR },
    ]
    // ref and pool directories are never listed: their names are looked up, not enumerated
    if (node.data.kind === "layer") {
      for (const name of ["diff", "info", "blob"]) entries.push({ ino: 0xffffffff, name, type: P.DT_LNK })
    }
    return R.replyData(req.h.unique, R.encodeDirents(entries, req.offset, req.size))
  }

  const handle = (req: P.Request): Uint8Array | Promise<Uint8Array> | undefined => {
    const unique = req.h.unique
    // a lazily served layer's own nodes (src/lazy) answer for themselves
    const lazyNode = req.op === "Forget" || req.op === "BatchForget" ? undefined : nodes.get(req.h.nodeid)
    if (lazyNode?.data.kind === "lazy") return lazyFs.handle(req, lazyNode, lazyNode.data.ref)
    switch (req.op) {
      case "Lookup":
        return lookup(req)
      case "Forget":
        nodes.forget(req.h.nodeid, req.nlookup)
        return undefined
      case "BatchForget":
        for (const f of req.items) nodes.forget(f.nodeid, f.nlookup)
        return undefined
      case "Interrupt":
        return undefined
      case "Getattr": {
        const node = nodes.get(req.h.nodeid)
        return node ? R.replyAttr(unique, attrOf(node.id, node.data), validOf(node.data)) : enoent(unique)
      }
      case "Readlink": {
        const node = nodes.get(req.h.nodeid)
        if (!node || node.data.kind !== "link") return R.replyError(unique, P.Errno.EINVAL)
        return R.replyData(unique, enc.encode(node.data.target))
      }
      case "Opendir": {
        const node = nodes.get(req.h.nodeid)
        return node && node.data.kind !== "link" ? R.replyOpen(unique, 0n) : R.replyError(unique, P.Errno.ENOTDIR)
      }
      case "Readdir":
        return readdir(req)
      case "Releasedir":
      case "Release":
        return R.replyEmpty(unique)
      case "Open":
        return R.replyError(unique, P.Errno.EACCES)
      case "Read":
        return R.replyError(unique, P.Errno.EIO) // nothing here is opened
      case "Create":
      case "Mknod":
        return create(unique, nodes.get(req.h.nodeid), req.name, req.h.pid)
      case "Rmdir":
        return rmdir(unique, nodes.get(req.h.nodeid), req.name, req.h.pid)
      case "Mkdir":
      case "Unlink":
      case "Write":
        return R.replyError(unique, P.Errno.EROFS)
      case "Statfs":
        return R.replyStatfs(unique)
      case "Access":
        return R.replyEmpty(unique)
      case "Getxattr":
        return R.replyError(unique, P.Errno.ENODATA)
      case "Listxattr":
        return req.size === 0 ? R.replyXattrSize(unique, 0) : R.replyData(unique, new Uint8Array(0))
      case "Init":
      case "Destroy":
      case "Unsupported":
      case "Malformed":
        return R.replyError(unique, P.Errno.ENOSYS)
    }
  }

  return { handle, nodes }
}
