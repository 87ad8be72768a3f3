/**
 * Writes tar entries into an empty directory in overlay format, the way containers/storage's
 * overlay driver does (pkg/archive `Unpack` with the overlay whiteout converter), with stricter
 * safety because we do not extract inside a chroot.
 *
 * Safety: nothing is ever written outside `root`.
 * - Names are cleaned lexically (EntryPath); a `..` above the root is refused.
 * - The staging dir starts empty, so every path in it was made by this writer, and the writer
 *   remembers what it made (`kinds`). An entry whose parent chain holds a symlink is refused
 *   instead of being written through it, so no path is ever resolved through a link; files are
 *   opened O_CREAT|O_EXCL|O_NOFOLLOW as a second guard.
 * - Symlink targets are stored as written, absolute or climbing (`../../x`): they are only ever
 *   resolved inside the container's mount namespace, never by us. containers/storage's overlay
 *   path stores them the same way (its breakout check runs in a chroot where every target is
 *   inside the root).
 * - Hardlink targets are cleaned like names and must be a non-directory this layer already
 *   wrote; a link never reaches outside the layer.
 *
 * Format (ALS-PROTOCOL.md §4): `.wh.NAME` → 0/0 char device NAME owned as the header says
 * (mode 0, mtime left as made, like containers/storage); `.wh..wh..opq` → opaque xattr on its
 * directory; other `.wh..wh.*` (aufs metadata) skipped; `trusted.overlay.*`, `user.overlay.*`
 * and `security.selinux` xattrs from the tar dropped, every other xattr kept.
 * Later entries win (a non-directory is replaced; a directory over a directory merges its
 * metadata). Missing parents are created 0755 root:root. The entry for the root itself is
 * skipped, as containers/storage does. Entry types it refuses (sparse, contiguous, vendor
 * types) are refused here too (`UnsupportedEntry`).
 *
 * Speed: plain sync fs calls (one Effect wraps the whole extraction), fd-based metadata calls
 * on files, no stat of anything the writer already knows. A typical file costs open, write,
 * futimes, close: chown is skipped when the file is already created with the right owner, chmod
 * when the umask let the mode through. Directory modes and times are applied once at the end
 * (after their children are written; this also lets read-only directories be filled).
 */
import * as fs from "node:fs"
import { S_IFBLK, S_IFCHR, S_IFIFO, type SyscallsApi } from "../sys/SyscallsApi.ts"
import { cleanComponents, PathEscape } from "./EntryPath.ts"
import { errnoCode, ioFailure, LayerIoError, LayerRejected, type LayerRejectedCode } from "./errors.ts"
import type { TarEntry, TarSink } from "./TarParser.ts"
import { Writeback } from "./Writeback.ts"

const enum K { Dir = 1, File, Symlink, Other, Whiteout }

const O_NEW_FILE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW

const Y = new Uint8Array([0x79]) // "y"

/** xattrs a layer must never set: overlay's own (they would forge whiteouts/redirects), SELinux labels. */
export const droppedXattr = (name: string): boolean =>
  name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.") || name === "security.selinux"

export interface OverlayWriterOptions {
  /** existing empty directory */
  readonly root: string
  /** the layer digest, for messages */
  readonly layer: string
  readonly sys: Pick<SyscallsApi, "mknod" | "lsetxattr" | "startWriteback">
  readonly opaqueXattr: string
}

interface DirMeta {
  mode: number
  atime: number
  mtime: number
}

export class OverlayWriter implements TarSink {
  /** entries written (every kind, whiteouts and implicit parents excluded) */
  files = 0
  /** regular file bytes written */
  bytes = 0
  /** xattrs the filesystem refused with ENOTSUP (containers/storage warns and goes on) */
  readonly unsupportedXattrs = new Set<string>()
  /** cleaned path of the entry being written, undefined when it is skipped */
  currentPath: string | undefined

  private readonly root: string
  private readonly kinds = new Map<string, K>()
  /** directories whose group is not ours: files made in them may inherit it (setgid, grpid) */
  private readonly foreignGroupDirs = new Set<string>()
  private readonly euid: number
  private readonly egid: number
  /** the process umask, or undefined when unknown (then every file gets an explicit chmod) */
  private readonly umask: number | undefined
  private readonly dirMeta = new Map<string, DirMeta>()
  /** the last parent verified to be a real directory chain, to skip re-walking it */
  private lastParent = ""
  private fd = -1
  private readonly writeback: Writeback
  private fileChown = true
  private fileChmod = true
  private cur: TarEntry | undefined
  private curAbs = ""

  constructor(private readonly opts: OverlayWriterOptions) {
    this.root = opts.root.replace(/\/+$/, "")
    this.euid = process.geteuid?.() ?? -1
    this.egid = process.getegid?.() ?? -1
    this.umask = readUmask()
    const st = fs.statSync(this.root)
    if (st.gid !== this.egid || (st.mode & 0o2000) !== 0) this.foreignGroupDirs.add("")
    this.writeback = new Writeback(opts.sys.startWriteback)
  }

  /** A new file or dir in `parent` already belongs to uid:gid when we are uid:gid and the
   * directory passes no other group down. Saves a chown per file for root-owned layers. */
  private ownedAsCreated(parent: string, uid: number, gid: number): boolean {
    return uid === this.euid && gid === this.egid && !this.foreignGroupDirs.has(parent)
  }

  entry(e: TarEntry): void {
    this.cur = e
    this.currentPath = undefined
    try {
      this.begin(e)
    } catch (err) {
      throw this.wrap(err, e, "creating")
    }
  }

  data(chunk: Uint8Array): void {
    if (this.fd < 0) return
    try {
      let off = 0
      while (off < chunk.length) off += fs.writeSync(this.fd, chunk, off, chunk.length - off)
      this.bytes += chunk.length
      this.writeback.wrote(chunk.length)
    } catch (err) {
      throw this.wrap(err, this.cur!, "writing")
    }
  }

  end(): void {
    if (this.fd < 0) return
    const e = this.cur!
    const fd = this.fd
    this.fd = -1
    this.writeback.closing()
    try {
      if (this.fileChown) fs.fchownSync(fd, e.uid, e.gid)
      // after chown, which clears setuid/setgid
      if (this.fileChmod) fs.fchmodSync(fd, e.mode)
      // after chown (clears security.capability) and after the data (writes clear it too)
      if (e.xattrs) this.setXattrs(this.curAbs, e.xattrs)
      fs.futimesSync(fd, atimeOf(e), e.mtime)
    } catch (err) {
      try {
        fs.closeSync(fd)
      } catch {}
      throw this.wrap(err, e, "finishing")
    }
    try {
      fs.closeSync(fd)
    } catch (err) {
      throw this.wrap(err, e, "closing")
    }
  }

  /** Applies directory modes and times, now that nothing more is written into them. */
  finish(): void {
    this.closeOpen()
    for (const [rel, m] of this.dirMeta) {
      if (this.kinds.get(rel) !== K.Dir) continue
      const abs = this.abs(rel)
      try {
        fs.chmodSync(abs, m.mode)
        fs.utimesSync(abs, m.atime, m.mtime)
      } catch (err) {
        throw ioFailure(this.opts.layer, abs, "setting the mode and times of", err)
      }
    }
  }

  /** Closes a file left open by a failure, so that the caller can delete the staging dir. */
  closeOpen(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd)
      } catch {}
      this.fd = -1
    }
  }

  private abs(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`
  }

  private reject(code: LayerRejectedCode, e: TarEntry, what: string): LayerRejected {
    const todo = code === "UnsupportedEntry"
      ? "containers/storage cannot extract it either: rebuild the image without such entries."
      : "The layer is refused as unsafe: do not use this image, and report it to its publisher."
    return new LayerRejected({
      code,
      entry: e.name,
      message: `layer ${this.opts.layer}: entry ${JSON.stringify(e.name)}: ${what}. ${todo}`,
    })
  }

  private wrap(err: unknown, e: TarEntry, what: string): unknown {
    if (err instanceof LayerRejected || err instanceof LayerIoError) return err
    if (err instanceof PathEscape) {
      return this.reject("UnsafeEntry", e, `${err.message}; writing it would escape the layer directory`)
    }
    const errno = errnoCode(err)
    if (errno === "ENAMETOOLONG") return this.reject("UnsupportedEntry", e, "the name is too long for the filesystem")
    if (errno !== undefined) {
      return ioFailure(this.opts.layer, this.currentPath === undefined ? this.root : this.abs(this.currentPath), what, err)
    }
    return err
  }

  private begin(e: TarEntry): void {
    if (e.kind === "unsupported") throw this.reject("UnsupportedEntry", e, e.unsupported ?? "unsupported entry type")
    const comps = cleanComponents(e.name)
    const last = comps.length - 1
    if (last < 0) {
      // the layer root itself: containers/storage skips a directory entry for it
      if (e.kind === "dir") return
      throw this.reject("UnsafeEntry", e, "a non-directory entry would replace the layer root")
    }
    for (let i = 0; i < last; i++) {
      if (comps[i].startsWith(".wh.")) {
        if (comps[i].startsWith(".wh..wh.")) return // inside aufs metadata (.wh..wh.plnk/…): skipped
        throw this.reject("InvalidWhiteout", e, `the whiteout name ${JSON.stringify(comps[i])} is used as a directory`)
      }
    }
    const base = comps[last]
    const parent = last === 0 ? "" : comps.slice(0, last).join("/")
    if (base.startsWith(".wh.")) return this.whiteout(e, parent, base)

    const rel = last === 0 ? base : `${parent}/${base}`
    if (!this.ensureDir(parent, e)) {
      throw this.reject("UnsupportedEntry", e, `its parent ${JSON.stringify(parent)} is not a directory`)
    }
    this.currentPath = rel
    const abs = this.abs(rel)
    this.curAbs = abs

    if (e.kind === "link") return this.hardlink(e, rel, abs)

    let existing = this.kinds.get(rel)
    if (existing !== undefined && !(existing === K.Dir && e.kind === "dir")) {
      this.remove(rel, existing)
      existing = undefined
    }

    const sys = this.opts.sys
    switch (e.kind) {
      case "file":
        // created with its final permission bits when the umask lets them through
        this.fd = fs.openSync(abs, O_NEW_FILE, e.mode & 0o777)
        this.writeback.opened(this.fd)
        this.fileChown = !this.ownedAsCreated(parent, e.uid, e.gid)
        this.fileChmod = this.umask === undefined || (e.mode & 0o7000) !== 0 || (e.mode & this.umask) !== 0
        this.kinds.set(rel, K.File)
        this.files++
        return // data() and end() follow from the parser
      case "dir":
        if (existing === undefined) {
          fs.mkdirSync(abs, 0o700)
          this.kinds.set(rel, K.Dir)
          this.files++
        }
        if (existing !== undefined || !this.ownedAsCreated(parent, e.uid, e.gid)) fs.chownSync(abs, e.uid, e.gid)
        if (e.gid !== this.egid) this.foreignGroupDirs.add(rel)
        else this.foreignGroupDirs.delete(rel)
        if (e.xattrs) this.setXattrs(abs, e.xattrs)
        this.dirMeta.set(rel, { mode: e.mode, atime: atimeOf(e), mtime: e.mtime })
        return
      case "symlink":
        if (e.linkname === "") throw this.reject("UnsupportedEntry", e, "the symlink has an empty target")
        fs.symlinkSync(e.linkname, abs)
        this.kinds.set(rel, K.Symlink)
        this.files++
        fs.lchownSync(abs, e.uid, e.gid)
        if (e.xattrs) this.setXattrs(abs, e.xattrs)
        fs.lutimesSync(abs, atimeOf(e), e.mtime)
        return
      case "char":
      case "block":
      case "fifo": {
        const type = e.kind === "char" ? S_IFCHR : e.kind === "block" ? S_IFBLK : S_IFIFO
        sys.mknod(abs, type | 0o600, e.devmajor, e.devminor)
        this.kinds.set(rel, K.Other)
        this.files++
        this.metadata(abs, e)
        return
      }
    }
  }

  /** chown, then chmod (chown clears setuid/setgid), xattrs, times: for non-symlink paths we made. */
  private metadata(abs: string, e: TarEntry): void {
    fs.chownSync(abs, e.uid, e.gid)
    fs.chmodSync(abs, e.mode)
    if (e.xattrs) this.setXattrs(abs, e.xattrs)
    fs.utimesSync(abs, atimeOf(e), e.mtime)
  }

  private hardlink(e: TarEntry, rel: string, abs: string): void {
    let target: string
    try {
      target = cleanComponents(e.linkname).join("/")
    } catch (err) {
      if (err instanceof PathEscape) {
        throw this.reject("UnsafeEntry", e, `the hardlink target ${JSON.stringify(e.linkname)} is outside the layer`)
      }
      throw err
    }
    if (target === rel) throw this.reject("UnsupportedEntry", e, "the hardlink points to itself")
    const check = () => {
      const k = this.kinds.get(target)
      if (k === undefined) {
        throw this.reject(
          "UnsafeEntry",
          e,
          `the hardlink target ${JSON.stringify(e.linkname)} is not an earlier file of this layer`,
        )
      }
      if (k === K.Dir) throw this.reject("UnsafeEntry", e, `the hardlink target ${JSON.stringify(e.linkname)} is a directory`)
      return k
    }
    check()
    const existing = this.kinds.get(rel)
    if (existing !== undefined) this.remove(rel, existing)
    const kind = check() // removing a directory may have removed the target
    fs.linkSync(this.abs(target), abs) // linkat without AT_SYMLINK_FOLLOW: links a symlink itself
    this.kinds.set(rel, kind)
    this.files++
    // the header's metadata applies to the shared inode, as in containers/storage
    if (kind === K.Symlink) {
      fs.lchownSync(abs, e.uid, e.gid)
      if (e.xattrs) this.setXattrs(abs, e.xattrs)
    } else if (kind !== K.Whiteout) {
      this.metadata(abs, e)
    }
  }

  private whiteout(e: TarEntry, parent: string, base: string): void {
    if (base === ".wh..wh..opq") {
      if (!this.ensureDir(parent, e)) return // the directory itself was whited out: nothing to mark
      const abs = this.abs(parent)
      this.currentPath = parent
      this.opts.sys.lsetxattr(abs, this.opts.opaqueXattr, Y)
      return
    }
    if (base.startsWith(".wh..wh.")) return // aufs metadata
    const name = base.slice(4)
    if (name === "" || name === "." || name === "..") {
      throw this.reject("InvalidWhiteout", e, `${JSON.stringify(base)} does not name a file to hide`)
    }
    // `rm -rf /foo/bar` may give `.wh.foo` then `foo/.wh.bar`: containers/storage skips the second
    if (!this.ensureDir(parent, e)) return
    const rel = parent === "" ? name : `${parent}/${name}`
    this.currentPath = rel
    const abs = this.abs(rel)
    const existing = this.kinds.get(rel)
    if (existing !== undefined) this.remove(rel, existing)
    this.opts.sys.mknod(abs, S_IFCHR, 0, 0)
    this.kinds.set(rel, K.Whiteout)
    fs.chownSync(abs, e.uid, e.gid)
  }

  /**
   * Makes sure every component of `rel` is a directory this writer made (creating missing ones
   * 0755 root:root). Refuses symlinks in the chain; returns false if a component is another
   * non-directory.
   */
  private ensureDir(rel: string, e: TarEntry): boolean {
    if (rel === this.lastParent || rel === "") return true
    let end = rel.length
    // walk up to the deepest known directory, then create downwards
    for (;;) {
      const k = this.kinds.get(rel.slice(0, end))
      if (k === K.Dir) break
      if (k === K.Symlink) {
        throw this.reject("UnsafeEntry", e, `it writes through the symlink ${JSON.stringify(rel.slice(0, end))}`)
      }
      if (k !== undefined) return false
      end = rel.lastIndexOf("/", end - 1)
      if (end < 0) {
        end = 0
        break
      }
    }
    // rel.slice(0, end) is a directory (or the root when end is 0); create the rest
    while (end < rel.length) {
      let next = rel.indexOf("/", end + 1)
      if (next < 0) next = rel.length
      const p = rel.slice(0, next)
      fs.mkdirSync(this.abs(p), 0o755)
      fs.chownSync(this.abs(p), 0, 0) // root:root whatever the parent passes down, like containers/storage
      fs.chmodSync(this.abs(p), 0o755) // whatever the umask
      this.kinds.set(p, K.Dir)
      if (this.egid !== 0) this.foreignGroupDirs.add(p)
      end = next
    }
    this.lastParent = rel
    return true
  }

  private remove(rel: string, k: K): void {
    const abs = this.abs(rel)
    if (k === K.Dir) {
      fs.rmSync(abs, { recursive: true, force: true })
      const prefix = `${rel}/`
      for (const key of this.kinds.keys()) if (key.startsWith(prefix)) this.kinds.delete(key)
      this.dirMeta.delete(rel)
      for (const key of this.dirMeta.keys()) if (key.startsWith(prefix)) this.dirMeta.delete(key)
      this.foreignGroupDirs.delete(rel)
      for (const key of this.foreignGroupDirs) if (key.startsWith(prefix)) this.foreignGroupDirs.delete(key)
    } else {
      fs.unlinkSync(abs)
    }
    this.kinds.delete(rel)
    this.lastParent = ""
  }

  private setXattrs(abs: string, xattrs: ReadonlyArray<readonly [string, Uint8Array]>): void {
    for (const [name, value] of xattrs) {
      if (droppedXattr(name)) continue
      try {
        this.opts.sys.lsetxattr(abs, name, value)
      } catch (err) {
        const code = errnoCode(err)
        // the filesystem does not support this namespace: containers/storage warns and goes on
        if (code === "EOPNOTSUPP" || code === "ENOTSUP") {
          this.unsupportedXattrs.add(name)
          continue
        }
        // a name or value the kernel refuses: the layer's fault, not the host's
        if (code === "EINVAL" || code === "ERANGE" || code === "E2BIG" || code === "E7") {
          throw this.reject("UnsupportedEntry", this.cur!, `the kernel refuses its xattr ${JSON.stringify(name)} (${code})`)
        }
        throw err
      }
    }
  }
}

/** The umask from /proc (reading it with process.umask() briefly sets it to 0, racing with
 * files created on other threads). */
const readUmask = (): number | undefined => {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))
    return m ? parseInt(m[1], 8) : undefined
  } catch {
    return undefined
  }
}

/** containers/storage never sets an access time before the modification time. */
const atimeOf = (e: TarEntry): number => (e.atime !== undefined && e.atime > e.mtime ? e.atime : e.mtime)
