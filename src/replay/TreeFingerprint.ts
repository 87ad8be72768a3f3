/**
 * A layer's extracted tree as data: one entry per path, sorted, with what overlay and the
 * container will see (type, mode, owner, size, content hash, link target, device numbers,
 * xattrs, hardlink identity). A recording keeps it per layer; a replay compares its own tree
 * with it and names each path that differs.
 *
 * Left out on purpose: mtimes (whiteouts and implied parent directories get the time of
 * extraction; the tar's own mtimes are covered by the DiffID, which hashes the whole tar) and
 * the root directory itself (made by the workflow, not by the layer).
 */
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { SyscallsApi } from "../sys/Syscalls.ts"
import { fileDigest } from "../verify/FileHash.ts"

export interface TreeEntry {
  /** relative to the layer's diff directory */
  readonly path: string
  readonly type: "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket"
  /** permission bits with setuid/setgid/sticky, as 4 octal digits */
  readonly mode: string
  readonly uid: number
  readonly gid: number
  readonly size?: number
  /** sha256 hex of a file's content */
  readonly sha256?: string
  readonly target?: string
  /** `major,minor` of a device (whiteouts are 0,0 character devices) */
  readonly rdev?: string
  readonly xattrs?: Readonly<Record<string, string>>
  /** for a non-directory with several links: the first path (sorted) of the same inode */
  readonly hardlinkOf?: string
}

type Xattrs = Pick<SyscallsApi, "llistxattr" | "lgetxattr">

// glibc's encoding of dev_t
const major = (d: bigint) => Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn))
const minor = (d: bigint) => Number((d & 0xffn) | ((d >> 12n) & ~0xffn))

const typeOf = (s: fs.BigIntStats): TreeEntry["type"] =>
  s.isFile() ? "file" : s.isDirectory() ? "dir" : s.isSymbolicLink() ? "symlink" : s.isCharacterDevice() ? "char" : s.isBlockDevice() ? "block" : s.isFIFO() ? "fifo" : "socket"

const showXattr = (v: Uint8Array): string =>
  v.every((c) => c >= 0x20 && c < 0x7f) ? Buffer.from(v).toString("latin1") : `hex:${Buffer.from(v).toString("hex")}`

/** Every entry below `root` (not root itself), sorted by path. Never follows a symlink. */
export const fingerprintTree = (root: string, sys: Xattrs): Array<TreeEntry> => {
  const found: Array<{ rel: string; abs: string; st: fs.BigIntStats }> = []
  const visit = (rel: string, abs: string) => {
    for (const name of fs.readdirSync(abs)) {
      const r = rel === "" ? name : `${rel}/${name}`
      const a = path.join(abs, name)
      const st = fs.lstatSync(a, { bigint: true })
      found.push({ rel: r, abs: a, st })
      if (st.isDirectory()) visit(r, a)
    }
  }
  visit("", root)
  found.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
  const firstOfInode = new Map<string, string>()
  return found.map(({ rel, abs, st }) => {
    const type = typeOf(st)
    const xattrs: Record<string, string> = {}
    for (const name of [...sys.llistxattr(abs)].sort()) {
      const v = sys.lgetxattr(abs, name)
      if (v !== undefined) xattrs[name] = showXattr(v)
    }
    let hardlinkOf: string | undefined
    if (type !== "dir" && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`
      const first = firstOfInode.get(key)
      if (first === undefined) firstOfInode.set(key, rel)
      else hardlinkOf = first
    }
    return {
      path: rel,
      type,
      mode: Number(st.mode & 0o7777n).toString(8).padStart(4, "0"),
      uid: Number(st.uid),
      gid: Number(st.gid),
      ...(type === "file" ? { size: Number(st.size), sha256: fileDigest(abs, "sha256", { noFollow: true }).slice("sha256:".length) } : {}),
      ...(type === "symlink" ? { target: fs.readlinkSync(abs) } : {}),
      ...(type === "char" || type === "block" ? { rdev: `${major(st.rdev)},${minor(st.rdev)}` } : {}),
      ...(Object.keys(xattrs).length > 0 ? { xattrs } : {}),
      ...(hardlinkOf !== undefined ? { hardlinkOf } : {}),
    }
  })
}

/** The NDJSON a recording stores for a tree (one entry per line, keys in a fixed order). */
export const treeText = (entries: ReadonlyArray<TreeEntry>): string => entries.map((e) => JSON.stringify(e)).join("\n") + (entries.length ? "\n" : "")

export const treeDigest = (entries: ReadonlyArray<TreeEntry>): string =>
  `sha256:${createHash("sha256").update(treeText(entries)).digest("hex")}`

const describe = (e: TreeEntry): string =>
  `${e.type} ${e.mode} ${e.uid}:${e.gid}` +
  (e.size !== undefined ? ` ${e.size}B` : "") +
  (e.target !== undefined ? ` -> ${e.target}` : "") +
  (e.rdev !== undefined ? ` ${e.rdev}` : "")

/** Each path that differs between `recorded` and `replayed`, in words. Empty when equal. */
export const diffTrees = (recorded: ReadonlyArray<TreeEntry>, replayed: ReadonlyArray<TreeEntry>): Array<string> => {
  const a = new Map(recorded.map((e) => [e.path, e]))
  const b = new Map(replayed.map((e) => [e.path, e]))
  const out: Array<string> = []
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(p)
    const y = b.get(p)
    if (!x) {
      out.push(`${p}: not recorded, replayed ${describe(y!)}`)
      continue
    }
    if (!y) {
      out.push(`${p}: recorded ${describe(x)}, missing from the replay`)
      continue
    }
    const d: Array<string> = []
    const field = (name: string, r: unknown, q: unknown) => {
      if (JSON.stringify(r) !== JSON.stringify(q)) d.push(`${name} recorded ${JSON.stringify(r) ?? "none"}, replayed ${JSON.stringify(q) ?? "none"}`)
    }
    field("type", x.type, y.type)
    field("mode", x.mode, y.mode)
    field("owner", `${x.uid}:${x.gid}`, `${y.uid}:${y.gid}`)
    field("size", x.size, y.size)
    field("content sha256", x.sha256, y.sha256)
    field("link target", x.target, y.target)
    field("device", x.rdev, y.rdev)
    field("xattrs", x.xattrs, y.xattrs)
    field("hardlink of", x.hardlinkOf, y.hardlinkOf)
    if (d.length) out.push(`${p}: ${d.join("; ")}`)
  }
  return out
}
