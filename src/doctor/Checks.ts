/**
 * What `als doctor` concludes from what its probes saw. Pure: every function takes the
 * probe's observations as data and returns a verdict with the fix to apply.
 *
 * Errors are conditions under which podman cannot use the store (or the log cannot be
 * trusted): they make `als doctor` exit 1. Warnings are worth knowing but leave the store
 * usable (not listed in storage.conf — podman can still be told per command; podman not
 * installed — buildah or CRI-O may be the client; a check that needs root skipped): exit 0.
 */
import * as path from "node:path"
import { parseLayerStoreEntry, type Resolved } from "../config/StorageConf.ts"

export type Status = "ok" | "warn" | "error" | "skip"

export interface Check {
  readonly id: string
  readonly title: string
  readonly status: Status
  readonly detail: string
  /** what to do about a warning or an error */
  readonly fix?: string | undefined
  /** what the check found, for --json readers (e.g. the storage.conf podman reads and its graph root) */
  readonly facts?: Readonly<Record<string, string>> | undefined
}

const check = (id: string, title: string, status: Status, detail: string, fix?: string): Check =>
  fix === undefined ? { id, title, status, detail } : { id, title, status, detail, fix }

/** The outcome of trying something: undefined when it was not tried. */
export interface Attempt {
  readonly ok: boolean
  readonly error?: string | undefined
}

// ---- the store directory -------------------------------------------------------------

export const judgeStore = (root: string, seen: { readonly exists: boolean; readonly isDir: boolean; readonly hasAlsDir: boolean }): Check => {
  const id = "store"
  const title = "store directory"
  if (!seen.exists) return check(id, title, "error", `${root} does not exist`, `create the store: als init --root ${root}`)
  if (!seen.isDir) return check(id, title, "error", `${root} is not a directory`, "pass the store's directory with --root")
  if (/[:,]/.test(root)) {
    return check(id, title, "error", `${root} contains ':' or ','; podman splits additionallayerstore paths on them`, "move the store to a path without ':' or ','")
  }
  if (!seen.hasAlsDir) return check(id, title, "warn", `${root} exists but is not an als store yet (no .als/)`, `als init --root ${root}`)
  return check(id, title, "ok", root)
}

// ---- the filesystem ------------------------------------------------------------------

/** statfs f_type magic numbers (linux/magic.h) for filesystems a store may sit on. */
const fsMagic: Record<number, string> = {
  0xef53: "ext4",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x01021994: "tmpfs",
  0x794c7630: "overlay",
  0x6969: "nfs",
  0x2fc12fc1: "zfs",
  0x65735546: "fuse",
  0x00c36400: "ceph",
  0x73717368: "squashfs",
  0xf2f52010: "f2fs",
  0xf15f: "ecryptfs",
  0x4d44: "vfat",
  0x5346544e: "ntfs",
  0xff534d42: "cifs",
  0xfe534d42: "smb2",
  0x01161970: "gfs2",
  0x0bd00bd0: "lustre",
  0x6a656a63: "fakeowner",
}

export const fsTypeName = (magic: number): string => fsMagic[magic >>> 0] ?? `unknown (0x${(magic >>> 0).toString(16)})`

export const judgeFsType = (magic: number): Check => {
  const name = fsTypeName(magic)
  const id = "filesystem"
  const title = "store filesystem"
  switch (name) {
    case "ext4":
    case "xfs":
    case "btrfs":
    case "f2fs":
      return check(id, title, "ok", `${name}: overlay can use it as a lowerdir`)
    case "tmpfs":
      return check(id, title, "warn", "tmpfs: works, but the store is lost at reboot while podman's images still point into it", "put the store on a disk filesystem (ext4, xfs, btrfs)")
    case "overlay":
      return check(id, title, "warn", "overlay: the store sits inside an overlay mount (a container?); nesting overlays as lowerdirs is limited", "put the store on the host's own filesystem")
    case "nfs":
    case "ceph":
    case "lustre":
    case "gfs2":
    case "cifs":
    case "smb2":
      return check(id, title, "warn", `${name}: a network filesystem; overlay reads it as a lowerdir, but whiteouts and xattrs depend on the server`, "check the probes below; a shared store is better offered as a --pool to a local store")
    case "zfs":
    case "fuse":
      return check(id, title, "warn", `${name}: overlay support depends on the version; the mount test below says whether it works here`)
    default:
      return check(id, title, "warn", `${name}: not a filesystem als is tested on`, "check the probes below; ext4, xfs and btrfs are known to work")
  }
}

/** d_type: overlay needs it to see whiteouts. Only xfs can lack it (formatted with ftype=0). */
export const judgeDType = (fsName: string, xfsFtype: number | undefined): Check => {
  const id = "d_type"
  const title = "d_type support"
  if (fsName !== "xfs") return check(id, title, "ok", `${fsName} reports file types in directory entries`)
  if (xfsFtype === 1) return check(id, title, "ok", "xfs formatted with ftype=1")
  if (xfsFtype === 0) {
    return check(id, title, "error", "xfs formatted with ftype=0: directory entries carry no file type, so overlay cannot see whiteouts", "move the store to a filesystem made with mkfs.xfs -n ftype=1 (or ext4)")
  }
  return check(id, title, "warn", "xfs, and xfs_info could not say whether it has ftype=1", "run xfs_info on the mount point and look for ftype=1")
}

export const judgeXattr = (name: string, a: Attempt): Check =>
  a.ok
    ? check("xattr", "overlay xattrs", "ok", `${name} can be set on the store's filesystem`)
    : check(
      "xattr",
      "overlay xattrs",
      "error",
      `cannot set ${name}: ${a.error ?? "unknown error"}; opaque directories would be lost`,
      name.startsWith("trusted.")
        ? "trusted.* xattrs need root and a filesystem with xattr support (mount without nouser_xattr; not tmpfs on old kernels)"
        : "user.* xattrs need a filesystem mounted with user_xattr",
    )

export const judgeWhiteout = (a: Attempt): Check =>
  a.ok
    ? check("whiteout", "whiteouts (0/0 devices)", "ok", "mknod of a 0/0 character device works")
    : check("whiteout", "whiteouts (0/0 devices)", "error", `mknod of a 0/0 character device failed: ${a.error ?? "unknown error"}`, "run als as root (or with CAP_MKNOD), on a filesystem mounted without nodev")

export const judgeOverlay = (a: Attempt | "not-root" | "unsafe-path"): Check => {
  const id = "overlay"
  const title = "overlay mount test"
  if (a === "not-root") return check(id, title, "skip", "needs root to mount; rerun als doctor as root to test")
  if (a === "unsafe-path") return check(id, title, "skip", "the store's path has characters overlay mount options cannot carry")
  return a.ok
    ? check(id, title, "ok", "a read-only overlay with lowerdirs on the store's filesystem shows whiteouts and opaque dirs as podman will")
    : check(id, title, "error", `the test overlay failed: ${a.error ?? "unknown error"}`, "check that the kernel has overlay (modprobe overlay) and that this filesystem can be a lowerdir")
}

// ---- the syscall layer ---------------------------------------------------------------

export const judgeSyscalls = (r: { readonly runtime?: string | undefined; readonly error?: string | undefined }): Check =>
  r.error === undefined
    ? check("syscalls", "syscalls (FFI)", "ok", `mknod, xattrs and syncfs through ${r.runtime ?? "FFI"}`)
    : check("syscalls", "syscalls (FFI)", "error", `cannot load libc through FFI: ${r.error}`, "run als on glibc Linux with Bun or Deno (--allow-ffi); musl or a missing libc.so.6 cannot work")

// ---- podman's storage.conf -----------------------------------------------------------

const storageLine = (root: string) => `additionallayerstores = ["${root}:ref"]`

/** What podman will start with, for JSON readers: the file it reads and the settings that come out. */
export const storageFacts = (r: Resolved): Record<string, string> =>
  r.ok
    ? {
      file: r.settings.file ?? "",
      source: r.settings.source,
      graphroot: r.settings.graphroot,
      runroot: r.settings.runroot,
      driver: r.settings.driver ?? "",
      additionallayerstores: r.settings.additionalLayerStores.join(","),
    }
    : { file: r.failure.file, error: r.failure.error }

/**
 * `resolved` is storage.conf as podman 4.3.1 reads it (config/StorageConf.ts); `snippet` a
 * whole file to offer when there is none; `sameDir(a, b)` compares paths as the filesystem
 * does (realpath), which the caller knows and this module does not.
 */
export const judgeStorageConf = (
  root: string,
  resolved: Resolved,
  sameDir: (a: string, b: string) => boolean,
  advice: { readonly target: string; readonly snippet: string },
): Check => {
  const id = "storage.conf"
  const title = "podman's storage.conf"
  const facts = storageFacts(resolved)
  const at = (c: Check): Check => ({ ...c, facts })
  const perCommand = `podman --storage-opt overlay.additionallayerstore=${root}:ref …`
  if (!resolved.ok) {
    const f = resolved.failure
    return at(check(id, title, "error", `podman cannot start with ${f.file}: ${f.error}`, `fix ${f.file} (it needs [storage] driver, runroot and graphroot), or unset CONTAINERS_STORAGE_CONF if it names the wrong file`))
  }
  const s = resolved.settings
  const graph = `graph root ${s.graphroot}`
  if (s.file === undefined) {
    const looked = s.searched.map((f) => f.path).join(", ")
    const system = s.searched.find((f) => f.exists)
    if (system !== undefined) {
      // rootless podman without a file of its own takes only a few settings from the system's
      return at(check(
        id,
        title,
        "warn",
        `podman (rootless) has no storage.conf of its own (${advice.target}); from ${system.path} it takes only the driver and rootless_storage_path, never its additional layer stores (${graph})`,
        `create ${advice.target} with:\n${advice.snippet}\nor per command: ${perCommand}`,
      ))
    }
    return at(check(
      id,
      title,
      "warn",
      `podman reads no storage.conf (looked for ${looked}), so it does not know this store; it uses its defaults (${graph})`,
      `create ${advice.target} with:\n${advice.snippet}\nor per command: ${perCommand}`,
    ))
  }
  const file = s.file
  const conf = s.conf
  if (s.driver !== undefined && s.driver !== "" && s.driver !== "overlay") {
    return at(check(id, title, "error", `${file} sets driver = "${s.driver}"; only the overlay driver reads additional layer stores`, `set driver = "overlay" in [storage] (existing images must be pulled again)`))
  }
  const entries = s.additionalLayerStores.map(parseLayerStoreEntry)
  const idx = entries.findIndex((e) => e.path !== "" && sameDir(e.path, root))
  if (idx !== -1 && !s.driver) {
    return at(check(
      id,
      title,
      "warn",
      `${file} lists this store but sets no driver: podman passes additional layer stores to the driver named in the file, so with none it reads no store`,
      `add to [storage] in ${file}: driver = "overlay"`,
    ))
  }
  if (idx === -1 && conf?.ignoredKeys.length) {
    return at(check(
      id,
      title,
      "warn",
      `${file} sets ${conf.ignoredKeys.join(", ")}, which podman 4.3 ignores ("Failed to decode the keys"); it reads additionallayerstores only in [storage.options]`,
      `move it to [storage.options] in ${file}: ${storageLine(root)}`,
    ))
  }
  if (idx === -1) {
    const others = entries.length ? ` (it lists ${s.additionalLayerStores.join(", ")})` : ""
    return at(check(id, title, "warn", `${file} does not list this store${others}; ${graph}`, `add to [storage.options] in ${file}: ${storageLine(root)}; or per command: ${perCommand}`))
  }
  const entry = entries[idx]!
  if (!entry.ref) {
    return at(check(
      id,
      title,
      "warn",
      `${file} lists ${s.additionalLayerStores[idx]} without :ref, so podman asks for layers by digest alone and never says which image it pulls; als indexes layers per image under that name`,
      `write it as "${entry.path}:ref" in additionallayerstores`,
    ))
  }
  if (idx > 0) {
    return at(check(id, title, "warn", `${file} lists this store after ${s.additionalLayerStores.slice(0, idx).join(", ")}; containers/storage before 1.55 (podman before 5.2) reads only the first one`, "list this store first"))
  }
  return at(check(id, title, "ok", `${file} lists ${s.additionalLayerStores[idx]} (driver ${s.driver}; ${graph})`))
}

/**
 * Serve mode: with an `als serve` mount up, podman must look layers up in the mount (which
 * pulls what the store lacks and counts uses), not in the store directory. Paths are compared
 * as written: resolving one inside the mount would be a request to the server.
 */
export const judgeServeMount = (root: string, mounts: ReadonlyArray<string>, resolved: Resolved): Check => {
  const id = "serve"
  const title = "als serve mount"
  const at = mounts.join(", ")
  const line = `additionallayerstores = ["${mounts[0]}:ref"]`
  if (!resolved.ok) return check(id, title, "warn", `als serve is mounted at ${at}, but podman's storage.conf cannot be read`, `fix ${resolved.failure.file}, then set ${line}`)
  const file = resolved.settings.file ?? "(no storage.conf)"
  const entries = resolved.settings.additionalLayerStores.map(parseLayerStoreEntry)
  const norm = (p: string) => path.resolve(p)
  const hit = entries.find((e) => e.path !== "" && mounts.some((m) => norm(m) === norm(e.path)))
  if (hit?.ref) return check(id, title, "ok", `${file} points podman at the als serve mount ${hit.path}:ref`)
  if (hit) return check(id, title, "warn", `${file} lists the als serve mount ${hit.path} without :ref; the mount resolves a layer only when podman names the image`, `write it as "${hit.path}:ref" in additionallayerstores`)
  const atStore = entries.some((e) => e.path !== "" && norm(e.path) === norm(root))
  return check(
    id,
    title,
    "warn",
    atStore
      ? `als serve is mounted at ${at}, but ${file} points podman at the store ${root}: podman then never asks the mount, so nothing is pulled on demand and no use is counted (gc cannot see them)`
      : `als serve is mounted at ${at}, but ${file} does not list it`,
    `set ${line} in [storage.options] of ${file}: point podman at the mount, not the store`,
  )
}

// ---- podman --------------------------------------------------------------------------

export const parsePodmanVersion = (out: string): [number, number, number] | undefined => {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(out)
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined
}

const atLeast = (v: readonly [number, number, number], major: number, minor: number) => v[0] > major || (v[0] === major && v[1] >= minor)

/** What the podman version means for which layers it takes from the store (ALS-PROTOCOL.md §2). */
export const judgePodman = (
  found: { readonly output?: string | undefined; readonly error?: string | undefined; readonly missing?: boolean | undefined },
): Check => {
  const id = "podman"
  const title = "podman version"
  if (found.missing) {
    return check(id, title, "warn", "podman is not on PATH; buildah and CRI-O read the store by the same rules as the containers/image they are built with", "install podman to use the store with it (apt-get install podman)")
  }
  if (found.output === undefined) {
    return check(id, title, "error", `podman does not start: ${found.error ?? "unknown error"}`, "fix what podman complains about (often the storage.conf it reads: it needs graphroot and runroot)")
  }
  const v = parsePodmanVersion(found.output)
  if (v === undefined) return check(id, title, "warn", `cannot read a version in ${JSON.stringify(found.output.trim())}`)
  const s = v.join(".")
  if (!atLeast(v, 5, 1)) {
    return check(
      id,
      title,
      "ok",
      `podman ${s} looks layers up by compressed blob digest: every layer of a registry pull can come from the store; it reads only the first additional layer store listed`,
    )
  }
  const diffId = atLeast(v, 5, 4) ? ", and only when the image config lists the layer's DiffID" : ""
  const first = atLeast(v, 5, 2) ? "" : "; it reads only the first additional layer store listed"
  return check(
    id,
    title,
    "ok",
    `podman ${s} looks layers up by TOC digest, for zstd:chunked and eStargz layers only${diffId}: plain gzip layers never come from the store${first}`,
  )
}

// ---- the log -------------------------------------------------------------------------

export interface LogSeen {
  readonly exists: boolean
  readonly error?: string | undefined
  readonly report?: {
    readonly ok: boolean
    readonly frames: number
    readonly size: number
    readonly problems: ReadonlyArray<{ readonly offset: number; readonly index: number; readonly kind: string; readonly problem: string; readonly tail: boolean }>
    readonly problemsOmitted: number
  } | undefined
}

export const judgeLog = (logPath: string, seen: LogSeen): Check => {
  const id = "log"
  const title = "event log"
  if (!seen.exists) return check(id, title, "ok", "no log yet: nothing has been done to this store")
  if (seen.error !== undefined || seen.report === undefined) {
    return check(id, title, "error", `cannot read ${logPath}: ${seen.error ?? "unknown error"}`, "check the file's permissions; the log was not changed")
  }
  const r = seen.report
  if (r.ok) return check(id, title, "ok", `${r.frames} frames, ${r.size} bytes, every checksum and link intact`)
  const damage = r.problems.filter((p) => !p.tail)
  if (damage.length === 0) {
    const t = r.problems[0]!
    return check(id, title, "warn", `the last frame (frame ${t.index}, byte ${t.offset}) is cut short: a process died while writing it`, "nothing to do: the next append cuts it and logs LogRepaired")
  }
  const first = damage[0]!
  const more = damage.length - 1 + r.problemsOmitted
  return check(
    id,
    title,
    "error",
    `${logPath} is damaged at frame ${first.index} (byte ${first.offset}): ${first.problem} [${first.kind}]${more > 0 ? `; ${more} more problem${more > 1 ? "s" : ""}` : ""}`,
    "the log was not changed; keep a copy of it, and run als audit to see every damaged frame",
  )
}

// ---- summary -------------------------------------------------------------------------

export interface Summary {
  readonly ok: boolean
  readonly errors: number
  readonly warnings: number
  /** 0 when no check failed (warnings allowed), 1 otherwise */
  readonly exitCode: 0 | 1
}

export const summarize = (checks: ReadonlyArray<Check>): Summary => {
  const errors = checks.filter((c) => c.status === "error").length
  const warnings = checks.filter((c) => c.status === "warn").length
  return { ok: errors === 0, errors, warnings, exitCode: errors === 0 ? 0 : 1 }
}

/** Resolved paths compare equal when they name the same directory string after normalizing. */
export const samePathString = (a: string, b: string): boolean => path.resolve(a) === path.resolve(b)
