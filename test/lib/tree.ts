/**
 * Directory trees as data, for tests that compare what was extracted (ours, or podman's
 * `podman image mount`) with what was expected.
 *
 *   const a = walkTree(dirA, sys)          // sorted entries, root first as "."
 *   const problems = diffTrees(a, walkTree(dirB, sys), { mtime: false, hardlinks: false })
 *   expect(problems).toEqual([])
 *
 * Never follows symlinks. Hardlink identity is recorded as `hardlinkOf` (the first path, in
 * sorted order, of the same inode) and compared only when asked, as are mtimes.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { SyscallsApi } from "../../src/sys/Syscalls.ts"

export type TreeEntryType = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket"

export interface TreeEntry {
  /** relative to the root, "." for the root itself */
  readonly path: string
  readonly type: TreeEntryType
  /** permission bits with setuid/setgid/sticky (st_mode & 0o7777) */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** bytes, for files (0 otherwise) */
  readonly size: number
  /** sha256 hex of the content, for files */
  readonly sha256?: string
  readonly linkTarget?: string
  readonly rdevMajor?: number
  readonly rdevMinor?: number
  /** name → value; printable values as text, others as "hex:…" */
  readonly xattrs: Readonly<Record<string, string>>
  /** nanoseconds since the epoch, as a decimal string */
  readonly mtime: string
  /** for a non-directory with several links: the first path (sorted) of the same inode */
  readonly hardlinkOf?: string
}

export interface WalkOptions {
  /** skip these relative paths and everything below them */
  readonly skip?: (relPath: string) => boolean
  /** read xattrs (default true) */
  readonly xattrs?: boolean
}

type Xattrs = Pick<SyscallsApi, "llistxattr" | "lgetxattr">

const showValue = (v: Uint8Array): string => {
  const printable = v.every((c) => c >= 0x20 && c < 0x7f)
  return printable ? Buffer.from(v).toString("latin1") : `hex:${Buffer.from(v).toString("hex")}`
}

// glibc's major/minor encoding of dev_t
const major = (d: bigint) => Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn))
const minor = (d: bigint) => Number((d & 0xffn) | ((d >> 12n) & ~0xffn))

const typeOf = (s: fs.BigIntStats): TreeEntryType =>
  s.isFile()
    ? "file"
    : s.isDirectory()
    ? "dir"
    : s.isSymbolicLink()
    ? "symlink"
    : s.isCharacterDevice()
    ? "char"
    : s.isBlockDevice()
    ? "block"
    : s.isFIFO()
    ? "fifo"
    : "socket"

const fileSha256 = (p: string): string => {
  const h = createHash("sha256")
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      h.update(buf.subarray(0, n))
    }
  } finally {
    fs.closeSync(fd)
  }
  return h.digest("hex")
}

/** Every entry under `root` (root included as "."), sorted by path. */
export const walkTree = (root: string, sys: Xattrs, opts: WalkOptions = {}): Array<TreeEntry> => {
  const raw: Array<{ rel: string; abs: string; st: fs.BigIntStats }> = []
  const visit = (rel: string) => {
    const abs = rel === "." ? root : path.join(root, rel)
    const st = fs.lstatSync(abs, { bigint: true })
    raw.push({ rel, abs, st })
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) {
        const child = rel === "." ? name : `${rel}/${name}`
        if (opts.skip?.(child)) continue
        visit(child)
      }
    }
  }
  visit(".")
  raw.sort((a, b) => (a.rel === "." ? -1 : b.rel === "." ? 1 : a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
  const firstOfInode = new Map<string, string>()
  return raw.map(({ rel, abs, st }) => {
    const type = typeOf(st)
    const xattrs: Record<string, string> = {}
    if (opts.xattrs !== false) {
      for (const name of [...sys.llistxattr(abs)].sort()) {
        const v = sys.lgetxattr(abs, name)
        if (v !== undefined) xattrs[name] = showValue(v)
      }
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
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: type === "file" ? Number(st.size) : 0,
      ...(type === "file" ? { sha256: fileSha256(abs) } : {}),
      ...(type === "symlink" ? { linkTarget: fs.readlinkSync(abs) } : {}),
      ...(type === "char" || type === "block" ? { rdevMajor: major(st.rdev), rdevMinor: minor(st.rdev) } : {}),
      xattrs,
      mtime: String(st.mtimeNs),
      ...(hardlinkOf !== undefined ? { hardlinkOf } : {}),
    }
  })
}

export interface DiffOptions {
  /** paths (or a predicate) to leave out of the comparison, with everything below them */
  readonly ignore?: ReadonlyArray<string> | ((path: string) => boolean)
  /** compare mtimes (default false) */
  readonly mtime?: boolean
  /** compare hardlink identity (default false) */
  readonly hardlinks?: boolean
  /** which xattrs to compare (default: all) */
  readonly xattr?: (name: string) => boolean
  /** compare the root entry "." (default true) */
  readonly root?: boolean
}

const ignored = (p: string, ig: DiffOptions["ignore"]): boolean => {
  if (ig === undefined) return false
  if (typeof ig === "function") return ig(p)
  return ig.some((i) => p === i || p.startsWith(`${i}/`))
}

const describe = (e: TreeEntry): string =>
  `${e.type} ${e.mode.toString(8).padStart(4, "0")} ${e.uid}:${e.gid}` +
  (e.type === "file" ? ` ${e.size}B` : "") +
  (e.linkTarget !== undefined ? ` -> ${e.linkTarget}` : "") +
  (e.rdevMajor !== undefined ? ` ${e.rdevMajor},${e.rdevMinor}` : "")

/**
 * Human-readable differences between two trees (`a` expected, `b` actual); empty when equal.
 * Each line names the path and what differs: "usr/bin/x: mode 0755 ≠ 0644".
 */
export const diffTrees = (a: ReadonlyArray<TreeEntry>, b: ReadonlyArray<TreeEntry>, opts: DiffOptions = {}): Array<string> => {
  const keep = (e: TreeEntry) => !ignored(e.path, opts.ignore) && (opts.root !== false || e.path !== ".")
  const am = new Map(a.filter(keep).map((e) => [e.path, e]))
  const bm = new Map(b.filter(keep).map((e) => [e.path, e]))
  const out: Array<string> = []
  const paths = [...new Set([...am.keys(), ...bm.keys()])].sort()
  const xkeep = opts.xattr ?? (() => true)
  for (const p of paths) {
    const x = am.get(p)
    const y = bm.get(p)
    if (x === undefined) {
      out.push(`${p}: unexpected (${describe(y!)})`)
      continue
    }
    if (y === undefined) {
      out.push(`${p}: missing (expected ${describe(x)})`)
      continue
    }
    const d: Array<string> = []
    if (x.type !== y.type) d.push(`type ${x.type} ≠ ${y.type}`)
    if (x.mode !== y.mode) d.push(`mode ${x.mode.toString(8).padStart(4, "0")} ≠ ${y.mode.toString(8).padStart(4, "0")}`)
    if (x.uid !== y.uid || x.gid !== y.gid) d.push(`owner ${x.uid}:${x.gid} ≠ ${y.uid}:${y.gid}`)
    if (x.type === "file" && y.type === "file" && (x.size !== y.size || x.sha256 !== y.sha256)) {
      d.push(`content ${x.size}B ${x.sha256?.slice(0, 12)} ≠ ${y.size}B ${y.sha256?.slice(0, 12)}`)
    }
    if (x.linkTarget !== y.linkTarget) d.push(`link target ${x.linkTarget} ≠ ${y.linkTarget}`)
    if (x.rdevMajor !== y.rdevMajor || x.rdevMinor !== y.rdevMinor) {
      d.push(`device ${x.rdevMajor},${x.rdevMinor} ≠ ${y.rdevMajor},${y.rdevMinor}`)
    }
    const xs = Object.keys(x.xattrs).filter(xkeep)
    const ys = Object.keys(y.xattrs).filter(xkeep)
    for (const k of [...new Set([...xs, ...ys])].sort()) {
      if (x.xattrs[k] !== y.xattrs[k]) d.push(`xattr ${k} ${x.xattrs[k] ?? "(none)"} ≠ ${y.xattrs[k] ?? "(none)"}`)
    }
    if (opts.mtime && x.mtime !== y.mtime) d.push(`mtime ${x.mtime} ≠ ${y.mtime}`)
    if (opts.hardlinks && x.hardlinkOf !== y.hardlinkOf) {
      d.push(`hardlink of ${x.hardlinkOf ?? "(none)"} ≠ ${y.hardlinkOf ?? "(none)"}`)
    }
    if (d.length > 0) out.push(`${p}: ${d.join("; ")}`)
  }
  return out
}

/** Lists every path under `dir` (for "nothing else changed" checks): sorted relative paths. */
export const listPaths = (dir: string): Array<string> => {
  const out: Array<string> = []
  const visit = (rel: string) => {
    const abs = rel === "" ? dir : path.join(dir, rel)
    for (const name of fs.readdirSync(abs)) {
      const child = rel === "" ? name : `${rel}/${name}`
      out.push(child)
      if (fs.lstatSync(path.join(dir, child)).isDirectory()) visit(child)
    }
  }
  visit("")
  return out.sort()
}
