import { makeSyscalls, O_RDONLY_CLOEXEC } from "./Libc.ts"
import type { SyscallsApi } from "./SyscallsApi.ts"

// Deno's global is only typed under Deno; keep this module free of Deno's type package.
// deno-lint-ignore no-explicit-any
declare const Deno: any

export const make = (): SyscallsApi => {
  const { symbols: c } = Deno.dlopen("libc.so.6", {
    mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
    lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
    lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
    llistxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    syncfs: { parameters: ["i32"], result: "i32" },
    sync_file_range: { parameters: ["i32", "i64", "i64", "u32"], result: "i32" },
    // variadic in C; on x86-64 and arm64 a fixed third pointer argument is passed the same way
    ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  })
  return makeSyscalls({
    mknod: (p, mode, dev) => c.mknod(p, mode, dev),
    lsetxattr: (p, n, v, size) => c.lsetxattr(p, n, v, BigInt(size), 0),
    lgetxattr: (p, n, b, size) => Number(c.lgetxattr(p, n, b, BigInt(size))),
    llistxattr: (p, b, size) => Number(c.llistxattr(p, b, BigInt(size))),
    openRead: (p) => c.open(p, O_RDONLY_CLOEXEC),
    close: (fd) => c.close(fd),
    syncfs: (fd) => c.syncfs(fd),
    syncFileRange: (fd, offset, length, flags) => c.sync_file_range(fd, BigInt(offset), BigInt(length), flags),
    ioctl: (fd, request, arg) => c.ioctl(fd, BigInt(request), arg),
    errno: () => new Deno.UnsafePointerView(c.__errno_location()).getInt32(0),
  }, "deno")
}
