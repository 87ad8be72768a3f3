/**
 * Replies to the kernel (include/uapi/linux/fuse.h, 7.40), encoded from typed values. Pure:
 * values in, bytes out, no IO. Little-endian, as on every Linux this runs on.
 */
import { ATTR_SIZE, OUT_HEADER_SIZE, FUSE_KERNEL_VERSION } from "./Protocol.ts"

export interface Attr {
  readonly ino: number
  readonly mode: number
  readonly size: number
  readonly nlink: number
  readonly uid?: number
  readonly gid?: number
  /** a device's number (new_encode_dev: minor low 8 bits | major << 8 | minor high bits << 12) */
  readonly rdev?: number
  /** seconds since the epoch, for atime, mtime and ctime */
  readonly time: number
}

/** Cache lifetimes the kernel keeps an answer for, in seconds (fractions allowed). */
export interface Validity {
  readonly entry: number
  readonly attr: number
}

const message = (unique: bigint, bodySize: number, error = 0) => {
  const buf = new Uint8Array(OUT_HEADER_SIZE + bodySize)
  const view = new DataView(buf.buffer)
  view.setUint32(0, buf.length, true)
  view.setInt32(4, -error, true)
  view.setBigUint64(8, unique, true)
  return { buf, view }
}

const setTimeout2 = (view: DataView, secAt: number, nsecAt: number, seconds: number) => {
  const s = Math.max(0, Math.floor(seconds))
  view.setBigUint64(secAt, BigInt(s), true)
  view.setUint32(nsecAt, Math.floor((seconds - s) * 1e9), true)
}

const putAttr = (view: DataView, at: number, a: Attr) => {
  view.setBigUint64(at, BigInt(a.ino), true)
  view.setBigUint64(at + 8, BigInt(a.size), true)
  view.setBigUint64(at + 16, BigInt(Math.ceil(a.size / 512)), true)
  for (const off of [24, 32, 40]) view.setBigUint64(at + off, BigInt(Math.floor(a.time)), true)
  // nsec fields stay 0
  view.setUint32(at + 60, a.mode, true)
  view.setUint32(at + 64, a.nlink, true)
  view.setUint32(at + 68, a.uid ?? 0, true)
  view.setUint32(at + 72, a.gid ?? 0, true)
  view.setUint32(at + 76, a.rdev ?? 0, true)
  view.setUint32(at + 80, 4096, true) // blksize
}

export const replyError = (unique: bigint, errno: number): Uint8Array => message(unique, 0, errno).buf

export const replyEmpty = (unique: bigint): Uint8Array => message(unique, 0).buf

/** fuse_entry_out: nodeid, generation, timeouts, attr (128 bytes). */
export const replyEntry = (unique: bigint, nodeid: number, attr: Attr, valid: Validity): Uint8Array => {
  const { buf, view } = message(unique, 40 + ATTR_SIZE)
  const o = OUT_HEADER_SIZE
  view.setBigUint64(o, BigInt(nodeid), true)
  view.setBigUint64(o + 8, 0n, true)
  setTimeout2(view, o + 16, o + 32, valid.entry)
  setTimeout2(view, o + 24, o + 36, valid.attr)
  putAttr(view, o + 40, attr)
  return buf
}

/** fuse_attr_out (104 bytes). */
export const replyAttr = (unique: bigint, attr: Attr, validSeconds: number): Uint8Array => {
  const { buf, view } = message(unique, 16 + ATTR_SIZE)
  setTimeout2(view, OUT_HEADER_SIZE, OUT_HEADER_SIZE + 8, validSeconds)
  putAttr(view, OUT_HEADER_SIZE + 16, attr)
  return buf
}

export const replyData = (unique: bigint, data: Uint8Array): Uint8Array => {
  const { buf } = message(unique, data.length)
  buf.set(data, OUT_HEADER_SIZE)
  return buf
}

/** fuse_open_out: a file handle, FOPEN_* flags and (with FOPEN_PASSTHROUGH) the backing id. */
export const replyOpen = (unique: bigint, fh: bigint, openFlags = 0, backingId = 0): Uint8Array => {
  const { buf, view } = message(unique, 16)
  view.setBigUint64(OUT_HEADER_SIZE, fh, true)
  view.setUint32(OUT_HEADER_SIZE + 8, openFlags, true)
  view.setInt32(OUT_HEADER_SIZE + 12, backingId, true)
  return buf
}

/** The errno of an answer we encoded (0 for success). */
export const replyErrno = (reply: Uint8Array): number =>
  reply.length >= OUT_HEADER_SIZE ? -new DataView(reply.buffer, reply.byteOffset, reply.byteLength).getInt32(4, true) | 0 : 0

/**
 * An OPEN answer the session may serve in passthrough mode: its bytes are the answer to send
 * when it cannot (no passthrough from the kernel, or the file does not check out), and it
 * names the on-disk file whose bytes are the file's whole content and the size it must have.
 * A Uint8Array, so handlers pass it along like any other answer.
 */
export class BackedOpen extends Uint8Array {
  backing = ""
  size = 0
}

export const backedOpen = (fallback: Uint8Array, backing: string, size: number): BackedOpen => {
  const b = new BackedOpen(fallback.length)
  b.set(fallback)
  b.backing = backing
  b.size = size
  return b
}

/** fuse_statfs_out (fuse_kstatfs, 80 bytes): a tree of names, no space to speak of. */
export const replyStatfs = (unique: bigint): Uint8Array => {
  const { buf, view } = message(unique, 80)
  const o = OUT_HEADER_SIZE
  view.setUint32(o + 40, 4096, true) // bsize
  view.setUint32(o + 44, 1024, true) // namelen
  view.setUint32(o + 48, 4096, true) // frsize
  return buf
}

/** getxattr/listxattr with size 0 ask for the length only (fuse_getxattr_out). */
export const replyXattrSize = (unique: bigint, size: number): Uint8Array => {
  const { buf, view } = message(unique, 8)
  view.setUint32(OUT_HEADER_SIZE, size, true)
  return buf
}

export interface InitReply {
  readonly minor: number
  readonly maxReadahead: number
  readonly flags: number
  readonly maxBackground: number
  readonly maxWrite: number
  readonly maxPages: number
  /** flags2 to grant (needs INIT_EXT in `flags`) */
  readonly flags2?: number
  /** with PASSTHROUGH: how deep backing filesystems may stack below us (1: a plain disk filesystem) */
  readonly maxStackDepth?: number
}

/** fuse_init_out, 64 bytes (the full size since 7.23). */
export const replyInit = (unique: bigint, r: InitReply): Uint8Array => {
  const { buf, view } = message(unique, 64)
  const o = OUT_HEADER_SIZE
  view.setUint32(o, FUSE_KERNEL_VERSION, true)
  view.setUint32(o + 4, r.minor, true)
  view.setUint32(o + 8, r.maxReadahead, true)
  view.setUint32(o + 12, r.flags, true)
  view.setUint16(o + 16, r.maxBackground, true)
  view.setUint16(o + 18, Math.floor(r.maxBackground * 3 / 4), true) // congestion threshold
  view.setUint32(o + 20, r.maxWrite, true)
  view.setUint32(o + 24, 1, true) // time_gran: 1 ns
  view.setUint16(o + 28, r.maxPages, true)
  view.setUint32(o + 32, r.flags2 ?? 0, true)
  view.setUint32(o + 36, r.maxStackDepth ?? 0, true)
  return buf
}

export interface DirEntry {
  readonly ino: number
  readonly name: string
  readonly type: number
}

const utf8 = new TextEncoder()

/**
 * READDIR: the entries from `offset` on that fit in `size` bytes (fuse_dirent, each padded
 * to 8 bytes); an entry's `off` is the offset of the next one.
 */
export const encodeDirents = (entries: ReadonlyArray<DirEntry>, offset: number, size: number): Uint8Array => {
  const parts: Uint8Array[] = []
  let used = 0
  for (let i = offset; i < entries.length; i++) {
    const e = entries[i]!
    const name = utf8.encode(e.name)
    const len = (24 + name.length + 7) & ~7
    if (used + len > size) break
    const part = new Uint8Array(len)
    const view = new DataView(part.buffer)
    view.setBigUint64(0, BigInt(e.ino), true)
    view.setBigUint64(8, BigInt(i + 1), true)
    view.setUint32(16, name.length, true)
    view.setUint32(20, e.type, true)
    part.set(name, 24)
    parts.push(part)
    used += len
  }
  const out = new Uint8Array(used)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
