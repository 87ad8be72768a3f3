/**
 * The semantics of the syscalls, written once over a runtime's raw libc bindings: errno
 * handling, buffer growth for xattr reads, glibc's makedev encoding. BunSyscalls and
 * DenoSyscalls only bind the symbols.
 */
import { ENODATA, ERANGE, errnoName } from "./errno.ts"
import { SysError, type SyscallsApi } from "./SyscallsApi.ts"

/** libc calls as C sees them: NUL-terminated paths, return value, errno read right after. */
export interface RawLibc {
  readonly mknod: (path: Uint8Array, mode: number, dev: bigint) => number
  readonly lsetxattr: (path: Uint8Array, name: Uint8Array, value: Uint8Array, size: number) => number
  readonly lgetxattr: (path: Uint8Array, name: Uint8Array, buf: Uint8Array, size: number) => number
  readonly llistxattr: (path: Uint8Array, buf: Uint8Array, size: number) => number
  readonly openRead: (path: Uint8Array) => number
  readonly close: (fd: number) => number
  readonly syncfs: (fd: number) => number
  /** sync_file_range(2) */
  readonly syncFileRange: (fd: number, offset: number, length: number, flags: number) => number
  /** ioctl(2) with a pointer argument */
  readonly ioctl: (fd: number, request: number, arg: Uint8Array) => number
  readonly errno: () => number
}

const enc = new TextEncoder()
const dec = new TextDecoder()
export const cstr = (s: string): Uint8Array => enc.encode(s + "\0")

/** glibc's makedev: the 12/20-bit split of major and minor. */
export const makedev = (major: number, minor: number): bigint =>
  (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) |
  (BigInt(major & ~0xfff) << 32n) | (BigInt(minor & ~0xff) << 12n)

export const makeSyscalls = (c: RawLibc, runtime: SyscallsApi["runtime"]): SyscallsApi => {
  const fail = (call: string, path: string, e = c.errno()): never => {
    throw new SysError(call, path, e, errnoName(e))
  }
  /** Calls `f` with a buffer, growing it while the kernel answers ERANGE. */
  const growing = (start: number, call: string, path: string, f: (buf: Uint8Array) => number) => {
    for (let size = start;; size *= 4) {
      const buf = new Uint8Array(size)
      const n = f(buf)
      if (n >= 0) return buf.subarray(0, n)
      const e = c.errno()
      if (e === ENODATA) return undefined
      if (e !== ERANGE || size >= 1 << 20) fail(call, path, e)
    }
  }
  return {
    runtime,
    mknod: (path, mode, major, minor) => {
      if (c.mknod(cstr(path), mode, makedev(major, minor)) !== 0) fail("mknod", path)
    },
    lsetxattr: (path, name, value) => {
      // an empty value still needs a valid pointer
      const v = value.length === 0 ? new Uint8Array(1) : value
      if (c.lsetxattr(cstr(path), cstr(name), v, value.length) !== 0) fail(`lsetxattr ${name}`, path)
    },
    lgetxattr: (path, name) => {
      const out = growing(256, `lgetxattr ${name}`, path, (b) => c.lgetxattr(cstr(path), cstr(name), b, b.length))
      return out === undefined ? undefined : out.slice()
    },
    llistxattr: (path) => {
      const out = growing(1024, "llistxattr", path, (b) => c.llistxattr(cstr(path), b, b.length))
      return out === undefined ? [] : dec.decode(out).split("\0").filter((s) => s !== "")
    },
    fuseBackingOpen: (devFd, fd) => {
      // struct fuse_backing_map { int32 fd; uint32 flags; uint64 padding }: flags and padding must be 0
      const map = new Uint8Array(16)
      new DataView(map.buffer).setInt32(0, fd, true)
      const id = c.ioctl(devFd, FUSE_DEV_IOC_BACKING_OPEN, map)
      if (id < 0) fail("ioctl FUSE_DEV_IOC_BACKING_OPEN", `fd ${fd}`)
      return id
    },
    fuseBackingClose: (devFd, id) => {
      const arg = new Uint8Array(4)
      new DataView(arg.buffer).setUint32(0, id, true)
      if (c.ioctl(devFd, FUSE_DEV_IOC_BACKING_CLOSE, arg) !== 0) fail("ioctl FUSE_DEV_IOC_BACKING_CLOSE", `backing id ${id}`)
    },
    syncfs: (path) => {
      const fd = c.openRead(cstr(path))
      if (fd < 0) fail("open", path)
      const rc = c.syncfs(fd)
      const e = rc === 0 ? 0 : c.errno()
      c.close(fd)
      if (rc !== 0) fail("syncfs", path, e)
    },
    // a hint: an fd that cannot take it (a pipe, a filesystem without it) only loses the head start
    startWriteback: (fd, offset, length) => c.syncFileRange(fd, offset, length, SYNC_FILE_RANGE_WRITE) === 0,
  }
}

const SYNC_FILE_RANGE_WRITE = 2

export const O_RDONLY_CLOEXEC = 0o2000000

// _IOW(229, nr, size) of include/uapi/linux/fuse.h: direction write (1 << 30), the argument's size, magic, number
const iow = (nr: number, size: number) => ((1 << 30) | (size << 16) | (229 << 8) | nr) >>> 0
/** register a backing file: argument struct fuse_backing_map (16 bytes), answers the backing id */
export const FUSE_DEV_IOC_BACKING_OPEN = iow(1, 16)
/** drop a backing id: argument a uint32 */
export const FUSE_DEV_IOC_BACKING_CLOSE = iow(2, 4)
