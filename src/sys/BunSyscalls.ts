import { dlopen, FFIType, ptr, read } from "bun:ffi"
import { errnoName, ENODATA, ERANGE } from "./errno.ts"
import { SysError, type SyscallsApi } from "./Syscalls.ts"

const cstr = (s: string) => Buffer.from(s + "\0", "utf8")

export const make = (): SyscallsApi => {
  const { symbols: c } = dlopen("libc.so.6", {
    mknod: { args: [FFIType.ptr, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
    lsetxattr: {
      args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32],
      returns: FFIType.i32,
    },
    lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    llistxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    renameat2: {
      args: [FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.u32],
      returns: FFIType.i32,
    },
    open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  })
  const errno = () => read.i32(c.__errno_location()!, 0)
  const fail = (call: string, path: string): never => {
    const e = errno()
    throw new SysError(call, path, e, errnoName(e))
  }
  const AT_FDCWD = -100
  const O_RDONLY = 0
  const O_CLOEXEC = 0o2000000
  return {
    runtime: "bun",
    mknod: (path, mode, major, minor) => {
      // glibc's makedev encoding
      const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) |
        (BigInt(major & ~0xfff) << 32n) | (BigInt(minor & ~0xff) << 12n)
      if (c.mknod(ptr(cstr(path)), mode, dev) !== 0) fail("mknod", path)
    },
    lsetxattr: (path, name, value) => {
      const v = value.length === 0 ? Buffer.alloc(1) : value
      if (c.lsetxattr(ptr(cstr(path)), ptr(cstr(name)), ptr(v), value.length, 0) !== 0) {
        fail(`lsetxattr ${name}`, path)
      }
    },
    lgetxattr: (path, name) => {
      let size = 256
      for (;;) {
        const buf = Buffer.alloc(size)
        const n = Number(c.lgetxattr(ptr(cstr(path)), ptr(cstr(name)), ptr(buf), size))
        if (n >= 0) return new Uint8Array(buf.subarray(0, n))
        const e = errno()
        if (e === ENODATA) return undefined
        if (e === ERANGE && size < 1 << 20) { size *= 4; continue }
        throw new SysError(`lgetxattr ${name}`, path, e, errnoName(e))
      }
    },
    llistxattr: (path) => {
      let size = 1024
      for (;;) {
        const buf = Buffer.alloc(size)
        const n = Number(c.llistxattr(ptr(cstr(path)), ptr(buf), size))
        if (n >= 0) return buf.subarray(0, n).toString("utf8").split("\0").filter((s) => s !== "")
        const e = errno()
        if (e === ERANGE && size < 1 << 20) { size *= 4; continue }
        throw new SysError("llistxattr", path, e, errnoName(e))
      }
    },
    syncfs: (path) => {
      const fd = c.open(ptr(cstr(path)), O_RDONLY | O_CLOEXEC)
      if (fd < 0) fail("open", path)
      const rc = c.syncfs(fd)
      const e = rc === 0 ? 0 : errno()
      c.close(fd)
      if (rc !== 0) throw new SysError("syncfs", path, e, errnoName(e))
    },
    renameat2: (from, to, flags) => {
      if (c.renameat2(AT_FDCWD, ptr(cstr(from)), AT_FDCWD, ptr(cstr(to)), flags) !== 0) {
        fail("renameat2", `${from} -> ${to}`)
      }
    },
  }
}
