/**
 * The few syscalls Node's fs API lacks but an overlay-format layer needs:
 * mknod (whiteouts are 0/0 character devices, layers may carry devices and fifos),
 * xattrs (opaque directories, file capabilities) and syncfs (one flush for a whole tree);
 * and the /dev/fuse ioctls of FUSE passthrough (`als serve`: complete files read by the kernel).
 *
 * The functions are synchronous and throw `SysError`: the extractor calls them once per
 * tar entry, where wrapping each call in an Effect would cost more than the call itself.
 * One implementation per runtime (bun:ffi, Deno.dlopen), chosen once at the edge (bin/).
 */
import { Context, Effect, Layer } from "effect"

export { S_IFBLK, S_IFCHR, S_IFIFO, SysError, type SyscallsApi } from "./SyscallsApi.ts"
import { deferredSyscalls, type SyscallsApi } from "./SyscallsApi.ts"

export class Syscalls extends Context.Tag("als/Syscalls")<Syscalls, SyscallsApi>() {}

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

/** The implementation for the runtime we run on; imported lazily so that neither runtime ever
 * loads the other's FFI module. */
export const loadSyscalls = async (): Promise<SyscallsApi> =>
  isBun
    ? deferredSyscalls("bun", (await import("./BunSyscalls.ts")).make)
    : deferredSyscalls("deno", (await import("./DenoSyscalls.ts")).make)

export const SyscallsLive: Layer.Layer<Syscalls> = Layer.effect(Syscalls, Effect.promise(loadSyscalls))
