// Drive podman 5.4.2 and skopeo 1.18 from a Debian 13 chroot (scripts/setup-podman5.sh): the
// TOC-digest ALS clients (containers/image >= 5.31), on a Debian 12 host.
//
// Paths: podman runs inside the chroot, so every path it is given or prints is a chroot path.
// A host path P is visible inside the chroot at the same path P only when it is bind-mounted at
// ROOT+P; this module does that for the test cache (ensureCacheInChroot) and for an ALS store
// given to pull (bindIntoChroot: bind-mounted at pull time, so mount a FUSE store *before* the
// pull; unmounted by cleanup()). Session dirs (graphroot, runroot) live inside the chroot under
// /var/tmp, and imageMount returns the *host* path of the merged dir.
//
// The chroot's / must be a mount point (the setup script binds ROOT onto itself): otherwise
// containers/storage fails to extract any layer ("remount /, flags: 0x44000: invalid argument").

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { CONTAINERS_CONF, parsePullLog, type AlsOption, type PullResult } from "./podman.ts"
import { isMountPoint, run, runOk, unmountUnder, type RunOptions, type RunResult } from "./sh.ts"

export const PODMAN5_ROOT = process.env.ALS_PODMAN5_ROOT ?? "/var/tmp/als-trixie"
const MARKER = ".als-podman5-ready"
export const SETUP_SCRIPT = resolve(dirname(new URL(import.meta.url).pathname), "../../scripts/setup-podman5.sh")

/** The debug line containers/image logs when it used a layer found by its TOC digest (ALS or partial pull). */
export const TOC_LOOKUP_LOG = "a layer was looked up by TOC"

/** Host path of a chroot path. */
export const chrootPath = (pathInChroot: string, root = PODMAN5_ROOT): string => join(root, pathInChroot)

export interface Podman5Info {
  readonly root: string
  /** e.g. "podman version 5.4.2; skopeo 1.18.0" */
  readonly version: string
  /** Time the setup script took in this call (ms): near 0 when it was already set up. */
  readonly setupMs: number
}

let ensured: Promise<Podman5Info> | undefined

/**
 * Make sure the chroot exists and its /proc /sys /dev mounts are in place (runs the idempotent
 * setup script; the first run debootstraps trixie, about a minute here). Throws when it fails.
 */
export const ensurePodman5 = (root = PODMAN5_ROOT): Promise<Podman5Info> => {
  if (root === PODMAN5_ROOT && ensured) return ensured
  const p = (async () => {
    const started = performance.now()
    await runOk(["bash", SETUP_SCRIPT, root], { timeoutMs: 20 * 60_000 })
    const version = readFileSync(join(root, MARKER), "utf8").trim()
    return { root, version, setupMs: performance.now() - started }
  })()
  if (root === PODMAN5_ROOT) {
    ensured = p
    p.catch(() => {
      ensured = undefined
    })
  }
  return p
}

/**
 * Bind-mount a host dir at the same path inside the chroot (recursively, so mounts below it
 * come along). Returns true if this call mounted it, false if it was already mounted.
 */
export const bindIntoChroot = async (hostPath: string, root = PODMAN5_ROOT): Promise<boolean> => {
  const abs = resolve(hostPath)
  if (abs === "/" || abs.startsWith(`${resolve(root)}/`) || abs === resolve(root))
    throw new Error(`cannot bind ${abs} into the chroot ${root}`)
  const target = chrootPath(abs, root)
  if (await isMountPoint(target)) return false
  mkdirSync(target, { recursive: true })
  await runOk(["mount", "--rbind", abs, target])
  // No mount made later below the target should propagate back to the host dir.
  await run(["mount", "--make-rslave", target])
  return true
}

/** Undo bindIntoChroot (and remove the mount point dir it created, if empty). */
export const unbindFromChroot = async (hostPath: string, root = PODMAN5_ROOT): Promise<void> => {
  const target = chrootPath(resolve(hostPath), root)
  await unmountUnder(target)
  try {
    rmdirSync(target)
  } catch {
    // not empty or gone: leave it
  }
}

/** The image cache (/var/tmp/als-test-cache) at the same path in the chroot; stays mounted. */
export const ensureCacheInChroot = async (cacheRoot: string, root = PODMAN5_ROOT): Promise<void> => {
  mkdirSync(cacheRoot, { recursive: true })
  await bindIntoChroot(cacheRoot, root)
}

const chrootEnv = (extra: Record<string, string> = {}): string[] => [
  "/usr/bin/env",
  "-i",
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  "HOME=/root",
  "PODMAN_IGNORE_CGROUPSV1_WARNING=1",
  ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
]

/** Run the chroot's skopeo (paths are chroot paths). */
export const skopeo5 = async (args: ReadonlyArray<string>, opts: RunOptions = {}, root = PODMAN5_ROOT): Promise<RunResult> =>
  runOk(["chroot", root, ...chrootEnv(), "skopeo", ...args], opts)

export interface Skopeo5CopyOptions {
  /** Recompress every layer (zstd:chunked is what podman 5 looks up by TOC). */
  readonly compress?: "gzip" | "zstd" | "zstd:chunked"
  readonly all?: boolean
  readonly creds?: { readonly user: string; readonly pass: string }
}

/**
 * `skopeo copy` with Debian 13's skopeo, e.g. `oci:/var/tmp/als-test-cache/…:tag` (see
 * ensureCacheInChroot) to `docker://127.0.0.1:PORT/repo:tag` (the chroot shares the network).
 */
export const skopeo5Copy = async (src: string, dest: string, opts: Skopeo5CopyOptions = {}): Promise<RunResult> => {
  await ensurePodman5()
  return skopeo5(
    [
      "copy",
      "--quiet",
      ...(opts.all ? ["--all"] : []),
      ...(opts.compress ? ["--dest-compress", "--dest-compress-format", opts.compress] : []),
      ...(dest.startsWith("docker://") ? ["--dest-tls-verify=false"] : []),
      ...(src.startsWith("docker://") ? ["--src-tls-verify=false"] : []),
      ...(opts.creds ? [dest.startsWith("docker://") ? "--dest-creds" : "--src-creds", `${opts.creds.user}:${opts.creds.pass}`] : []),
      src,
      dest,
    ],
    { timeoutMs: 30 * 60_000 },
  )
}

export interface Podman5PullResult extends PullResult {
  /** containers/image logged "a layer was looked up by TOC" (ALS by TOC, or a partial pull). */
  readonly lookedUpByToc: boolean
  /** A zstd:chunked partial pull happened ("Created zstd:chunked differ"): not an ALS hit. */
  readonly partialPull: boolean
}

export interface Podman5PullOptions {
  readonly als?: AlsOption
  readonly arch?: string
  readonly creds?: { readonly user: string; readonly pass: string }
  readonly timeoutMs?: number
}

export interface Podman5 {
  /** Host path of the session dir; `dirInChroot` is the same dir as podman sees it. */
  readonly dir: string
  readonly dirInChroot: string
  readonly graphRoot: string // chroot path
  readonly runRoot: string // chroot path
  podman(args: ReadonlyArray<string>, opts?: { timeoutMs?: number; allowFailure?: boolean }): Promise<RunResult>
  pull(ref: string, opts?: Podman5PullOptions): Promise<Podman5PullResult>
  /** Mount the image and return the merged dir's *host* path. */
  imageMount(ref: string): Promise<string>
  imageUnmount(ref: string): Promise<void>
  removeImage(ref: string): Promise<void>
  /** The ALS layer paths (chroot paths, i.e. the store's own paths) this session's layers use. */
  additionalLayers(): string[]
  /** Unmount the session's mounts and ALS binds, delete the session dir. Safe to call twice. */
  cleanup(): Promise<void>
}

export interface Podman5SessionOptions {
  /** Enable zstd:chunked partial pulls (storage.conf pull_options). Default false. */
  readonly partialImages?: boolean
  readonly root?: string
}

/** Start an isolated podman 5 session inside the chroot (sets the chroot up when needed). */
export const createPodman5 = async (opts: Podman5SessionOptions = {}): Promise<Podman5> => {
  const root = opts.root ?? PODMAN5_ROOT
  await ensurePodman5(root)
  mkdirSync(chrootPath("/var/tmp", root), { recursive: true })
  const dir = mkdtempSync(chrootPath("/var/tmp/als-podman5-", root))
  const dirInChroot = dir.slice(root.length)
  const graphRoot = `${dirInChroot}/root`
  const runRoot = `${dirInChroot}/run`
  writeFileSync(join(dir, "containers.conf"), `${CONTAINERS_CONF}runtime = "runc"\n`)
  writeFileSync(
    join(dir, "storage.conf"),
    `[storage]\ndriver = "overlay"\ngraphroot = "${graphRoot}"\nrunroot = "${runRoot}"\n\n[storage.options]\npull_options = {enable_partial_images = "${opts.partialImages ? "true" : "false"}"}\n`,
  )
  writeFileSync(join(dir, "registries.conf"), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
  writeFileSync(join(dir, "auth.json"), '{"auths":{}}\n')
  const env = chrootEnv({
    CONTAINERS_CONF: `${dirInChroot}/containers.conf`,
    CONTAINERS_STORAGE_CONF: `${dirInChroot}/storage.conf`,
    CONTAINERS_REGISTRIES_CONF: `${dirInChroot}/registries.conf`,
    REGISTRY_AUTH_FILE: `${dirInChroot}/auth.json`,
    TMPDIR: dirInChroot,
  })
  const base = ["chroot", root, ...env, "podman", "--root", graphRoot, "--runroot", runRoot, "--tmpdir", `${dirInChroot}/libpod-tmp`, "--storage-driver", "overlay"]
  const binds = new Set<string>()
  let cleaned = false

  const podman: Podman5["podman"] = async (args, o = {}) => {
    const cmd = [...base, ...args]
    return o.allowFailure ? run(cmd, { timeoutMs: o.timeoutMs ?? 300_000 }) : runOk(cmd, { timeoutMs: o.timeoutMs ?? 300_000 })
  }

  return {
    dir,
    dirInChroot,
    graphRoot,
    runRoot,
    podman,
    async pull(ref, o = {}) {
      if (o.als) {
        const abs = resolve(o.als.root)
        if (await bindIntoChroot(abs, root)) binds.add(abs)
      }
      const r = await podman(
        [
          ...(o.als ? ["--storage-opt", `overlay.additionallayerstore=${resolve(o.als.root)}:ref`] : []),
          "--log-level=debug",
          "pull",
          "--tls-verify=false",
          ...(o.arch ? ["--arch", o.arch] : []),
          ...(o.creds ? ["--creds", `${o.creds.user}:${o.creds.pass}`] : []),
          ref,
        ],
        { timeoutMs: o.timeoutMs ?? 600_000 },
      )
      const log = `${r.stdout}\n${r.stderr}`
      return {
        stdout: r.stdout,
        stderr: r.stderr,
        imageId: r.stdout.trim().split("\n").pop() ?? "",
        ...parsePullLog(log),
        lookedUpByToc: log.includes(TOC_LOOKUP_LOG),
        partialPull: log.includes("Created zstd:chunked differ"),
        durationMs: r.durationMs,
      }
    },
    async imageMount(ref) {
      const r = await podman(["image", "mount", ref])
      // The last line is the path (podman 5 may print warnings before it).
      const inChroot = r.stdout.trim().split("\n").pop() ?? ""
      return chrootPath(inChroot, root)
    },
    async imageUnmount(ref) {
      await podman(["image", "unmount", ref])
    },
    async removeImage(ref) {
      await podman(["rmi", "--force", ref])
    },
    additionalLayers() {
      const overlay = join(dir, "root", "overlay")
      if (!existsSync(overlay)) return []
      const out: string[] = []
      for (const id of readdirSync(overlay)) {
        const f = join(overlay, id, "additionallayer")
        if (existsSync(f)) out.push(readFileSync(f, "utf8").trim())
      }
      return out
    },
    async cleanup() {
      if (cleaned) return
      cleaned = true
      await run([...base, "image", "unmount", "--all", "--force"], { timeoutMs: 60_000 }).catch(() => undefined)
      await unmountUnder(dir)
      rmSync(dir, { recursive: true, force: true })
      for (const b of binds) await unbindFromChroot(b, root)
      binds.clear()
    },
  }
}

/** Pull with a throwaway podman 5 session (cleaned up afterwards). */
export const podman5Pull = async (ref: string, opts: Podman5PullOptions = {}): Promise<Podman5PullResult> => {
  const p = await createPodman5()
  try {
    return await p.pull(ref, opts)
  } finally {
    await p.cleanup()
  }
}
