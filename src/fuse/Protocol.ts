/**
 * The kernel FUSE protocol (include/uapi/linux/fuse.h, 7.40), the part `als serve` speaks:
 * its constants, and requests decoded into typed values at the boundary (replies are encoded in
 * Replies.ts). Pure: bytes in, values out, no IO. Little-endian, as on every Linux this runs on.
 *
 * A request the decoder cannot read (short, lengths that disagree, a name without its NUL)
 * becomes `Malformed` and is answered EINVAL; an opcode we do not implement becomes
 * `Unsupported` and is answered ENOSYS, which the kernel remembers for most opcodes.
 */

export const FUSE_KERNEL_VERSION = 7
// 7.40 for passthrough (FOPEN_PASSTHROUGH, backing_id, max_stack_depth); nothing we decode changed since 7.38
export const FUSE_KERNEL_MINOR_VERSION = 40
export const FUSE_ROOT_ID = 1

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
  RENAME2: 45,
} as const

/** INIT flags we ask for (the kernel grants the ones it also offers). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  BIG_WRITES: 1 << 5,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  /** fuse_init_in/out carry flags2 (the flags' bits 32..63) */
  INIT_EXT: 1 << 30,
} as const

/** INIT flags2 bits: the 64-bit flag's bit n is flags2's bit n-32. */
export const InitFlag2 = {
  /** FUSE_PASSTHROUGH (bit 37): OPEN may answer with a backing file the kernel reads itself (7.40) */
  PASSTHROUGH: 1 << (37 - 32),
} as const

/** fuse_open_out.open_flags */
export const OpenFlag = {
  KEEP_CACHE: 1 << 1,
  /** reads (and mmap) go to the backing file named by backing_id, never to us (7.40) */
  PASSTHROUGH: 1 << 7,
} as const

const O_ACCMODE = 3
/** An OPEN for reading only (O_RDONLY): the only kind a read-only tree hands a backing file. */
export const isReadOnlyOpen = (flags: number): boolean => (flags & O_ACCMODE) === 0

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EACCES: 13,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EROFS: 30,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  EPROTO: 71,
} as const

export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
/** d_type values for READDIR */
export const DT_DIR = 4
export const DT_LNK = 10

export const IN_HEADER_SIZE = 40
export const OUT_HEADER_SIZE = 16
export const ATTR_SIZE = 88

export interface InHeader {
  readonly len: number
  readonly opcode: number
  readonly unique: bigint
  readonly nodeid: number
  readonly uid: number
  readonly gid: number
  /** the requesting process (0 for requests the kernel makes itself, e.g. FORGET) */
  readonly pid: number
}

export type Request =
  | { readonly op: "Init"; readonly h: InHeader; readonly major: number; readonly minor: number; readonly maxReadahead: number; readonly flags: number; readonly flags2: number }
  | { readonly op: "Destroy"; readonly h: InHeader }
  | { readonly op: "Lookup"; readonly h: InHeader; readonly name: string }
  | { readonly op: "Forget"; readonly h: InHeader; readonly nlookup: number }
  | { readonly op: "BatchForget"; readonly h: InHeader; readonly items: ReadonlyArray<{ readonly nodeid: number; readonly nlookup: number }> }
  | { readonly op: "Getattr"; readonly h: InHeader }
  | { readonly op: "Readlink"; readonly h: InHeader }
  | { readonly op: "Opendir"; readonly h: InHeader }
  | { readonly op: "Readdir"; readonly h: InHeader; readonly fh: bigint; readonly offset: number; readonly size: number }
  | { readonly op: "Releasedir"; readonly h: InHeader }
  /** `flags`: the open(2) flags (O_ACCMODE and the rest) */
  | { readonly op: "Open"; readonly h: InHeader; readonly flags: number }
  | { readonly op: "Read"; readonly h: InHeader; readonly fh: bigint; readonly offset: number; readonly size: number }
  /** `fh`: the handle our OPEN answer gave */
  | { readonly op: "Release"; readonly h: InHeader; readonly fh: bigint }
  | { readonly op: "Mknod"; readonly h: InHeader; readonly name: string; readonly mode: number }
  | { readonly op: "Create"; readonly h: InHeader; readonly name: string; readonly mode: number; readonly flags: number }
  | { readonly op: "Mkdir"; readonly h: InHeader; readonly name: string }
  | { readonly op: "Rmdir"; readonly h: InHeader; readonly name: string }
  | { readonly op: "Unlink"; readonly h: InHeader; readonly name: string }
  | { readonly op: "Statfs"; readonly h: InHeader }
  | { readonly op: "Access"; readonly h: InHeader; readonly mask: number }
  | { readonly op: "Getxattr"; readonly h: InHeader; readonly name: string; readonly size: number }
  | { readonly op: "Listxattr"; readonly h: InHeader; readonly size: number }
  | { readonly op: "Interrupt"; readonly h: InHeader; readonly target: bigint }
  /** a write to a read-only tree: answered EROFS */
  | { readonly op: "Write"; readonly h: InHeader; readonly opcode: number }
  | { readonly op: "Unsupported"; readonly h: InHeader }
  | { readonly op: "Malformed"; readonly h: InHeader; readonly reason: string }

/** Requests the kernel expects no answer to. */
export const expectsReply = (r: Request): boolean => r.op !== "Forget" && r.op !== "BatchForget" && r.op !== "Interrupt"

const latin1 = new TextDecoder("latin1")

class Short extends Error {}

/** A bounds-checked reader over one request's body. */
class Body {
  private at = 0
  constructor(private readonly view: DataView, private readonly bytes: Uint8Array) {}
  private need(n: number) {
    if (this.at + n > this.bytes.length) throw new Short(`needs ${this.at + n} bytes, has ${this.bytes.length}`)
  }
  u32() {
    this.need(4)
    const v = this.view.getUint32(this.at, true)
    this.at += 4
    return v
  }
  u64() {
    this.need(8)
    const v = this.view.getBigUint64(this.at, true)
    this.at += 8
    return v
  }
  /** a u64 that must fit a JS number exactly (node ids, counts, offsets we handed out) */
  u64n() {
    const v = this.u64()
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Short(`value ${v} out of range`)
    return Number(v)
  }
  skip(n: number) {
    this.need(n)
    this.at += n
  }
  /** a NUL-terminated name, as bytes read in latin1 (every name we serve is ASCII) */
  name() {
    const end = this.bytes.indexOf(0, this.at)
    if (end < 0) throw new Short("name without its NUL")
    const s = latin1.decode(this.bytes.subarray(this.at, end))
    this.at = end + 1
    return s
  }
}

/** Decodes one message as read from /dev/fuse. Never throws. */
export const decodeRequest = (msg: Uint8Array, minor = FUSE_KERNEL_MINOR_VERSION): Request => {
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength)
  if (msg.length < IN_HEADER_SIZE) {
    const unique = msg.length >= 16 ? view.getBigUint64(8, true) : 0n
    return { op: "Malformed", h: { len: msg.length, opcode: 0, unique, nodeid: 0, uid: 0, gid: 0, pid: 0 }, reason: "short header" }
  }
  const nodeid64 = view.getBigUint64(16, true)
  const h: InHeader = {
    len: view.getUint32(0, true),
    opcode: view.getUint32(4, true),
    unique: view.getBigUint64(8, true),
    nodeid: nodeid64 > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(nodeid64),
    uid: view.getUint32(24, true),
    gid: view.getUint32(28, true),
    pid: view.getUint32(32, true),
  }
  if (h.len !== msg.length) return { op: "Malformed", h, reason: `length ${h.len} but ${msg.length} bytes read` }
  if (h.nodeid < 0) return { op: "Malformed", h, reason: "node id out of range" }
  const body = new Body(
    new DataView(msg.buffer, msg.byteOffset + IN_HEADER_SIZE, msg.byteLength - IN_HEADER_SIZE),
    msg.subarray(IN_HEADER_SIZE),
  )
  try {
    switch (h.opcode) {
      case Opcode.INIT: {
        const major = body.u32()
        const minorIn = body.u32()
        const maxReadahead = body.u32()
        const flags = body.u32()
        // flags2 exists only in the extended fuse_init_in (7.36+), which INIT_EXT announces
        const flags2 = flags & InitFlag.INIT_EXT ? body.u32() : 0
        return { op: "Init", h, major, minor: minorIn, maxReadahead, flags, flags2 }
      }
      case Opcode.DESTROY:
        return { op: "Destroy", h }
      case Opcode.LOOKUP:
        return { op: "Lookup", h, name: body.name() }
      case Opcode.FORGET:
        return { op: "Forget", h, nlookup: body.u64n() }
      case Opcode.BATCH_FORGET: {
        const count = body.u32()
        body.skip(4)
        const items: Array<{ nodeid: number; nlookup: number }> = []
        for (let i = 0; i < count; i++) items.push({ nodeid: body.u64n(), nlookup: body.u64n() })
        return { op: "BatchForget", h, items }
      }
      case Opcode.GETATTR:
        return { op: "Getattr", h }
      case Opcode.READLINK:
        return { op: "Readlink", h }
      case Opcode.OPENDIR:
        return { op: "Opendir", h }
      case Opcode.READDIR:
      case Opcode.READDIRPLUS: {
        if (h.opcode === Opcode.READDIRPLUS) return { op: "Unsupported", h }
        const fh = body.u64()
        const offset = body.u64n()
        const size = body.u32()
        return { op: "Readdir", h, fh, offset, size }
      }
      case Opcode.RELEASEDIR:
        return { op: "Releasedir", h }
      case Opcode.OPEN:
        return { op: "Open", h, flags: body.u32() }
      case Opcode.READ: {
        const fh = body.u64()
        const offset = body.u64n()
        const size = body.u32()
        return { op: "Read", h, fh, offset, size }
      }
      case Opcode.RELEASE:
        return { op: "Release", h, fh: body.u64() }
      case Opcode.MKNOD: {
        const mode = body.u32()
        body.skip(minor >= 12 ? 12 : 4)
        return { op: "Mknod", h, name: body.name(), mode }
      }
      case Opcode.CREATE: {
        const flags = body.u32()
        const mode = body.u32()
        body.skip(minor >= 12 ? 8 : 0)
        return { op: "Create", h, name: body.name(), mode, flags }
      }
      case Opcode.MKDIR: {
        body.skip(8)
        return { op: "Mkdir", h, name: body.name() }
      }
      case Opcode.RMDIR:
        return { op: "Rmdir", h, name: body.name() }
      case Opcode.UNLINK:
        return { op: "Unlink", h, name: body.name() }
      case Opcode.STATFS:
        return { op: "Statfs", h }
      case Opcode.ACCESS: {
        const mask = body.u32()
        return { op: "Access", h, mask }
      }
      case Opcode.GETXATTR: {
        const size = body.u32()
        body.skip(4)
        return { op: "Getxattr", h, size, name: body.name() }
      }
      case Opcode.LISTXATTR: {
        const size = body.u32()
        return { op: "Listxattr", h, size }
      }
      case Opcode.INTERRUPT:
        return { op: "Interrupt", h, target: body.u64() }
      case Opcode.SETATTR:
      case Opcode.SYMLINK:
      case Opcode.RENAME:
      case Opcode.RENAME2:
      case Opcode.LINK:
      case Opcode.WRITE:
      case Opcode.SETXATTR:
      case Opcode.REMOVEXATTR:
        return { op: "Write", h, opcode: h.opcode }
      default:
        return { op: "Unsupported", h }
    }
  } catch (e) {
    return { op: "Malformed", h, reason: e instanceof Error ? e.message : String(e) }
  }
}
