import { errnoName, ENODATA, ERANGE } from "./errno.ts"
import { SysError, type SyscallsApi } from "./Syscalls.ts"

// Deno's global is only typed under Deno; keep this module free of Deno's type package.
// deno-lint-ignore no-explicit-any
declare const Deno: any

const enc = new TextEncoder()
const cstr = (s: string) => enc.encode(s + "\0")

export const make = (): SyscallsApi => {
  const lib = Deno.dlopen("libc.so.6", {
    mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
    lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
    lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
    llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
    renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    syncfs: { parameters: ["i32"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  })
  const c = lib.symbols
  const errno = (): number => new Deno.UnsafePointerView(c.__errno_location()).getInt32(0)
  const fail = (call: string, path: string): never => {
    const e = errno()
    throw new SysError(call, path, e, errnoName(e))
  }
  const AT_FDCWD = -100
  const O_RDONLY = 0
  const O_CLOEXEC = 0o2000000
  return {
    runtime: "deno",
    mknod: (path, mode, major, minor) => {
      const dev = (BigInt(major & 0xfff) << 8n) | BigInt(minor & 0xff) |
        (BigInt(major & ~0xfff) << 32n) | (BigInt(minor & ~0xff) << 12n)
      if (c.mknod(cstr(path), mode, dev) !== 0) fail("mknod", path)
    },
    lsetxattr: (path, name, value) => {
      const v = value.length === 0 ? new Uint8Array(1) : value
      if (c.lsetxattr(cstr(path), cstr(name), v, BigInt(value.length), 0) !== 0) {
        fail(`lsetxattr ${name}`, path)
      }
    },
    lgetxattr: (path, name) => {
      let size = 256
      for (;;) {
        const buf = new Uint8Array(size)
        const n = Number(c.lgetxattr(cstr(path), cstr(name), buf, BigInt(size)))
        if (n >= 0) return buf.slice(0, n)
        const e = errno()
        if (e === ENODATA) return undefined
        if (e === ERANGE && size < 1 << 20) { size *= 4; continue }
        throw new SysError(`lgetxattr ${name}`, path, e, errnoName(e))
      }
    },
    llistxattr: (path) => {
      let size = 1024
      for (;;) {
        const buf = new Uint8Array(size)
        const n = Number(c.llistxattr(cstr(path), buf, BigInt(size)))
        if (n >= 0) return new TextDecoder().decode(buf.slice(0, n)).split("\0").filter((s) => s !== "")
        const e = errno()
        if (e === ERANGE && size < 1 << 20) { size *= 4; continue }
        throw new SysError("llistxattr", path, e, errnoName(e))
      }
    },
    syncfs: (path) => {
      const fd = c.open(cstr(path), O_RDONLY | O_CLOEXEC)
      if (fd < 0) fail("open", path)
      const rc = c.syncfs(fd)
      const e = rc === 0 ? 0 : errno()
      c.close(fd)
      if (rc !== 0) throw new SysError("syncfs", path, e, errnoName(e))
    },
    renameat2: (from, to, flags) => {
      if (c.renameat2(AT_FDCWD, cstr(from), AT_FDCWD, cstr(to), flags) !== 0) {
        fail("renameat2", `${from} -> ${to}`)
      }
    },
  }
}
