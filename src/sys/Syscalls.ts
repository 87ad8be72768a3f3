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

export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly path: string,
    readonly errno: number,
    readonly code: string,
  ) {
    super(`${call}(${path}): ${code} (errno ${errno})`)
    this.name = "SysError"
  }
}

export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFIFO = 0o010000

export interface SyscallsApi {
  readonly runtime: "bun" | "deno"
  /** mknod(2): `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
  readonly mknod: (path: string, mode: number, major: number, minor: number) => void
  /** lsetxattr(2): never follows a symlink. */
  readonly lsetxattr: (path: string, name: string, value: Uint8Array) => void
  /** lgetxattr(2): undefined when the attribute is absent (ENODATA). */
  readonly lgetxattr: (path: string, name: string) => Uint8Array | undefined
  /** llistxattr(2). */
  readonly llistxattr: (path: string) => ReadonlyArray<string>
  /** syncfs(2) on the filesystem holding `path`: one call makes a whole extracted tree durable. */
  readonly syncfs: (path: string) => void
  /**
   * FUSE passthrough (kernel 6.9+): registers the open file `fd` as a backing file of the FUSE
   * connection `devFd` (its /dev/fuse) and answers the backing id an OPEN reply names. Needs
   * CAP_SYS_ADMIN and a connection that negotiated FUSE_PASSTHROUGH; throws SysError (EPERM, …).
   */
  readonly fuseBackingOpen: (devFd: number, fd: number) => number
  /** Drops a backing id; files opened with it keep their backing file. */
  readonly fuseBackingClose: (devFd: number, id: number) => void
}

export class Syscalls extends Context.Tag("als/Syscalls")<Syscalls, SyscallsApi>() {}

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

/**
 * Defers `make` (dlopen, and under Bun compiling the call stubs: ~2 ms) to the first call: a
 * lookup that finds its layer never makes one.
 */
const onFirstCall = (runtime: SyscallsApi["runtime"], make: () => SyscallsApi): SyscallsApi => {
  let api: SyscallsApi | undefined
  const get = () => (api ??= make())
  return {
    runtime,
    mknod: (p, mode, major, minor) => get().mknod(p, mode, major, minor),
    lsetxattr: (p, name, value) => get().lsetxattr(p, name, value),
    lgetxattr: (p, name) => get().lgetxattr(p, name),
    llistxattr: (p) => get().llistxattr(p),
    syncfs: (p) => get().syncfs(p),
    fuseBackingOpen: (devFd, fd) => get().fuseBackingOpen(devFd, fd),
    fuseBackingClose: (devFd, id) => get().fuseBackingClose(devFd, id),
  }
}

/** The implementation for the runtime we run on; imported lazily so that neither runtime ever
 * loads the other's FFI module. */
export const loadSyscalls = async (): Promise<SyscallsApi> =>
  isBun
    ? onFirstCall("bun", (await import("./BunSyscalls.ts")).make)
    : onFirstCall("deno", (await import("./DenoSyscalls.ts")).make)

export const SyscallsLive: Layer.Layer<Syscalls> = Layer.effect(Syscalls, Effect.promise(loadSyscalls))
