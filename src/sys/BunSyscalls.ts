import { dlopen, FFIType, ptr, read } from "bun:ffi"
import { makeSyscalls, O_RDONLY_CLOEXEC } from "./Libc.ts"
import type { SyscallsApi } from "./SyscallsApi.ts"

export const make = (): SyscallsApi => {
  const { symbols: c } = dlopen("libc.so.6", {
    mknod: { args: [FFIType.ptr, FFIType.u32, FFIType.u64], returns: FFIType.i32 },
    lsetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
    lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    llistxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
    open: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    close: { args: [FFIType.i32], returns: FFIType.i32 },
    syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
    sync_file_range: { args: [FFIType.i32, FFIType.i64, FFIType.i64, FFIType.u32], returns: FFIType.i32 },
    // variadic in C; on x86-64 and arm64 a fixed third pointer argument is passed the same way
    ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  })
  return makeSyscalls({
    mknod: (p, mode, dev) => c.mknod(ptr(p), mode, dev),
    lsetxattr: (p, n, v, size) => c.lsetxattr(ptr(p), ptr(n), ptr(v), size, 0),
    lgetxattr: (p, n, b, size) => Number(c.lgetxattr(ptr(p), ptr(n), ptr(b), size)),
    llistxattr: (p, b, size) => Number(c.llistxattr(ptr(p), ptr(b), size)),
    openRead: (p) => c.open(ptr(p), O_RDONLY_CLOEXEC),
    close: (fd) => c.close(fd),
    syncfs: (fd) => c.syncfs(fd),
    syncFileRange: (fd, offset, length, flags) => c.sync_file_range(fd, offset, length, flags),
    ioctl: (fd, request, arg) => c.ioctl(fd, BigInt(request), ptr(arg)),
    errno: () => read.i32(c.__errno_location()!, 0),
  }, "bun")
}
