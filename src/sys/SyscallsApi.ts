/**
 * What the extractor, the FUSE server and the probes call (Syscalls.ts says why these calls):
 * the interface and its error, without the Effect service around them, so that code running on
 * a worker thread (extract/IngestWorker.ts) loads no Effect runtime.
 */
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
   * sync_file_range(2) with SYNC_FILE_RANGE_WRITE: asks the kernel to start writing `length`
   * bytes of the open file `fd` from `offset` to disk, without waiting for them and without
   * making anything durable (syncfs still does that). A hint: answers whether the kernel took
   * it, never throws.
   */
  readonly startWriteback: (fd: number, offset: number, length: number) => boolean
  /**
   * FUSE passthrough (kernel 6.9+): registers the open file `fd` as a backing file of the FUSE
   * connection `devFd` (its /dev/fuse) and answers the backing id an OPEN reply names. Needs
   * CAP_SYS_ADMIN and a connection that negotiated FUSE_PASSTHROUGH; throws SysError (EPERM, …).
   */
  readonly fuseBackingOpen: (devFd: number, fd: number) => number
  /** Drops a backing id; files opened with it keep their backing file. */
  readonly fuseBackingClose: (devFd: number, id: number) => void
}

/**
 * Defers `make` (dlopen, and under Bun compiling the call stubs: ~2 ms) to the first call: a
 * lookup that finds its layer never makes one.
 */
export const deferredSyscalls = (runtime: SyscallsApi["runtime"], make: () => SyscallsApi): SyscallsApi => {
  let api: SyscallsApi | undefined
  const get = () => (api ??= make())
  return {
    runtime,
    mknod: (p, mode, major, minor) => get().mknod(p, mode, major, minor),
    lsetxattr: (p, name, value) => get().lsetxattr(p, name, value),
    lgetxattr: (p, name) => get().lgetxattr(p, name),
    llistxattr: (p) => get().llistxattr(p),
    syncfs: (p) => get().syncfs(p),
    startWriteback: (fd, offset, length) => get().startWriteback(fd, offset, length),
    fuseBackingOpen: (devFd, fd) => get().fuseBackingOpen(devFd, fd),
    fuseBackingClose: (devFd, id) => get().fuseBackingClose(devFd, id),
  }
}
