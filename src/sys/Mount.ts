/**
 * mount(2) and umount2(2), which no JavaScript runtime exposes: `als serve` mounts its FUSE
 * filesystem with them. Same split as Syscalls.ts: the semantics (errno, flags) here once,
 * the symbols bound per runtime (BunMount.ts, DenoMount.ts), loaded lazily so neither runtime
 * loads the other's FFI module.
 */
import { errnoName } from "./errno.ts"
import { cstr } from "./Libc.ts"
import { SysError } from "./Syscalls.ts"

export const MS_NOSUID = 2
export const MS_NODEV = 4
export const MNT_DETACH = 2

/** libc as C sees it: NUL-terminated strings, return value, errno read right after. */
export interface RawMount {
  readonly mount: (source: Uint8Array, target: Uint8Array, fstype: Uint8Array, flags: number, data: Uint8Array) => number
  readonly umount2: (target: Uint8Array, flags: number) => number
  readonly errno: () => number
}

export interface MountApi {
  /** mount(2); throws SysError */
  readonly mount: (source: string, target: string, fstype: string, flags: number, data: string) => void
  /** umount2(2); throws SysError */
  readonly umount2: (target: string, flags: number) => void
}

export const makeMount = (c: RawMount): MountApi => ({
  mount: (source, target, fstype, flags, data) => {
    if (c.mount(cstr(source), cstr(target), cstr(fstype), flags, cstr(data)) !== 0) {
      const e = c.errno()
      throw new SysError("mount", target, e, errnoName(e))
    }
  },
  umount2: (target, flags) => {
    if (c.umount2(cstr(target), flags) !== 0) {
      const e = c.errno()
      throw new SysError("umount2", target, e, errnoName(e))
    }
  },
})

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

export const loadMount = async (): Promise<MountApi> =>
  isBun ? (await import("./BunMount.ts")).make() : (await import("./DenoMount.ts")).make()
