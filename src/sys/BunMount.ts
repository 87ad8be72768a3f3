import { dlopen, FFIType, ptr, read } from "bun:ffi"
import { makeMount, type MountApi } from "./Mount.ts"

export const make = (): MountApi => {
  const { symbols: c } = dlopen("libc.so.6", {
    mount: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
    umount2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  })
  return makeMount({
    mount: (s, t, f, flags, d) => c.mount(ptr(s), ptr(t), ptr(f), BigInt(flags), ptr(d)),
    umount2: (t, flags) => c.umount2(ptr(t), flags),
    errno: () => read.i32(c.__errno_location()!, 0),
  })
}
