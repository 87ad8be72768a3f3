/**
 * What `als doctor` looks at, one probe per question, each returning observations as data
 * (Checks.ts judges them). Probes that write do it in a scratch directory inside the store
 * (so they test the store's own filesystem) and remove it; the overlay test mounts in a temp
 * directory and unmounts before returning.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { S_IFCHR, type SyscallsApi } from "../sys/Syscalls.ts"
import type { Attempt } from "./Checks.ts"

const message = (e: unknown) => (e instanceof Error ? e.message : String(e))

export const seeStore = (root: string) => {
  try {
    const st = fs.statSync(root)
    return { exists: true, isDir: st.isDirectory(), hasAlsDir: fs.existsSync(path.join(root, ".als")) }
  } catch {
    return { exists: false, isDir: false, hasAlsDir: false }
  }
}

/** statfs(2) f_type of the filesystem holding `p`. */
export const fsMagicOf = (p: string): number => Number(fs.statfsSync(p).type)

/** The mount point holding `p`: the longest mount point that is a prefix of its real path. */
export const mountPointOf = (p: string): string | undefined => {
  try {
    const real = fs.realpathSync(p)
    const mounts = fs.readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[4])
      .filter((m): m is string => m !== undefined && m !== "")
      .map((m) => m.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    return mounts
      .filter((m) => m === "/" || real === m || real.startsWith(`${m}/`))
      .sort((a, b) => b.length - a.length)[0]
  } catch {
    return undefined
  }
}

export interface ServeMount {
  readonly mountpoint: string
  /** the mount's source: the store it serves (`als` for a server that did not name it) */
  readonly source: string
}

const unescapeOctal = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

/**
 * `als serve` filesystems (type fuse.als) in a mountinfo text. Read from the table alone: a
 * stat of the mount would be a request to the server.
 */
export const alsServeMounts = (mountinfo: string): ReadonlyArray<ServeMount> =>
  mountinfo.split("\n").flatMap((line) => {
    const f = line.split(" ")
    const sep = f.indexOf("-", 6)
    if (sep === -1 || f[sep + 1] !== "fuse.als" || f[4] === undefined) return []
    return [{ mountpoint: unescapeOctal(f[4]), source: unescapeOctal(f[sep + 2] ?? "") }]
  })

/** The `als serve` mounts this process sees; none when the table cannot be read. */
export const alsServeMountsHere = (): ReadonlyArray<ServeMount> => {
  try {
    return alsServeMounts(fs.readFileSync("/proc/self/mountinfo", "utf8"))
  } catch {
    return []
  }
}

/**
 * The mounts that serve `root`: a server names its store as the mount's source; one that does
 * not (source `als`) may serve any store, so it counts.
 */
export const serveMountsOf = (root: string, mounts: ReadonlyArray<ServeMount>, same: (a: string, b: string) => boolean): ReadonlyArray<string> =>
  mounts.filter((m) => m.source === "als" || (m.source.startsWith("/") && same(m.source, root))).map((m) => m.mountpoint)

/** xfs's ftype flag from xfs_info, undefined when it cannot be read. */
export const xfsFtype = (p: string): number | undefined => {
  const mnt = mountPointOf(p)
  if (mnt === undefined) return undefined
  const r = spawnSync("xfs_info", [mnt], { encoding: "utf8", timeout: 10_000 })
  const m = /ftype=(\d)/.exec(r.stdout ?? "")
  return m ? Number(m[1]) : undefined
}

export type SyscallsProbe = { readonly api: SyscallsApi; readonly runtime: string } | { readonly error: string }

/** Loads the runtime's FFI syscalls the way SyscallsLive does, but reports a failure instead of dying. */
export const loadSyscalls = async (): Promise<SyscallsProbe> => {
  try {
    const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
    const api = isBun ? (await import("../sys/BunSyscalls.ts")).make() : (await import("../sys/DenoSyscalls.ts")).make()
    return { api, runtime: isBun ? "bun:ffi" : "Deno.dlopen" }
  } catch (e) {
    return { error: message(e) }
  }
}

const attempt = (f: () => void): Attempt => {
  try {
    f()
    return { ok: true }
  } catch (e) {
    return { ok: false, error: message(e) }
  }
}

export interface ScratchProbes {
  readonly xattr: Attempt
  readonly whiteout: Attempt
  readonly overlay: Attempt | "not-root" | "unsafe-path"
}

/**
 * In a scratch dir on the store's filesystem: set the opaque xattr, make a whiteout, and (as
 * root) mount a read-only overlay of two lowerdirs there to see the kernel honour both.
 */
export const probeScratch = (root: string, sys: SyscallsApi | undefined, opaqueXattr: string, uid: number): ScratchProbes => {
  const parent = fs.existsSync(path.join(root, ".als")) ? path.join(root, ".als") : root
  const scratch = fs.mkdtempSync(path.join(parent, "doctor-"))
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), "als-doctor-mnt-"))
  try {
    const upper = path.join(scratch, "l1")
    const lower = path.join(scratch, "l2")
    for (const d of [upper, lower, path.join(upper, "opq"), path.join(lower, "opq")]) fs.mkdirSync(d, { recursive: true })
    fs.writeFileSync(path.join(lower, "keep"), "keep")
    fs.writeFileSync(path.join(lower, "gone"), "gone")
    fs.writeFileSync(path.join(lower, "opq", "old"), "old")
    fs.writeFileSync(path.join(upper, "opq", "new"), "new")
    const noSys = { ok: false, error: "the FFI syscalls did not load" }
    const xattr = sys
      ? attempt(() => {
        sys.lsetxattr(path.join(upper, "opq"), opaqueXattr, new TextEncoder().encode("y"))
        const back = sys.lgetxattr(path.join(upper, "opq"), opaqueXattr)
        if (back === undefined || new TextDecoder().decode(back) !== "y") throw new Error("the value read back differs")
      })
      : noSys
    const whiteout = sys
      ? attempt(() => {
        const wh = path.join(upper, "gone")
        sys.mknod(wh, S_IFCHR | 0o600, 0, 0)
        const st = fs.lstatSync(wh)
        if (!st.isCharacterDevice() || st.rdev !== 0) throw new Error("the node made is not a 0/0 character device")
      })
      : noSys
    let overlay: ScratchProbes["overlay"]
    if (uid !== 0) overlay = "not-root"
    else if (/[:,\\\s]/.test(scratch)) overlay = "unsafe-path"
    else {
      overlay = attempt(() => {
        const r = spawnSync("mount", ["-t", "overlay", "overlay", "-o", `ro,lowerdir=${upper}:${lower}`, mnt], { encoding: "utf8", timeout: 20_000 })
        if (r.error) throw r.error
        if (r.status !== 0) throw new Error((r.stderr || r.stdout || `mount exited ${r.status}`).trim())
        try {
          const seen = {
            keep: fs.existsSync(path.join(mnt, "keep")),
            gone: fs.existsSync(path.join(mnt, "gone")),
            old: fs.existsSync(path.join(mnt, "opq", "old")),
            new: fs.existsSync(path.join(mnt, "opq", "new")),
          }
          const wrong = [
            !seen.keep && "a lower file is missing",
            whiteout.ok && seen.gone && "the whiteout did not hide the lower file",
            xattr.ok && seen.old && "the opaque directory did not hide the lower directory's content",
            !seen.new && "the upper lowerdir's file is missing",
          ].filter((x): x is string => typeof x === "string")
          if (wrong.length > 0) throw new Error(wrong.join("; "))
        } finally {
          spawnSync("umount", [mnt], { timeout: 20_000 })
        }
      })
    }
    return { xattr, whiteout, overlay }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true })
    // empty once unmounted; an overlay a failed umount left is never walked by a recursive removal
    try {
      fs.rmdirSync(mnt)
    } catch {
      // still mounted: left in place rather than emptied through the mount
    }
  }
}

/** Same directory, as the filesystem sees it (symlinks resolved), else as written. */
export const sameDir = (a: string, b: string): boolean => {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p)
    } catch {
      return path.resolve(p)
    }
  }
  return real(a) === real(b)
}

export const podmanVersion = (): { readonly output?: string; readonly error?: string; readonly missing?: boolean } => {
  const r = spawnSync("podman", ["--version"], { encoding: "utf8", timeout: 20_000 })
  if (r.error) return (r.error as NodeJS.ErrnoException).code === "ENOENT" ? { missing: true } : { error: message(r.error) }
  if (r.status !== 0) return { error: (r.stderr || `exit ${r.status}`).trim() }
  return { output: r.stdout }
}
