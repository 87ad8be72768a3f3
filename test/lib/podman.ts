// Drive the host's podman (Debian 12: 4.3.1, a compressed-digest ALS client) in isolation: every
// session has its own graphroot, runroot and config files under one temp dir, so tests never see
// the machine's images nor each other's, and cleanup() leaves no mount behind.
//
//   const p = await createPodman()
//   const r = await p.pull(ref, { als: { root: store } })   // r.skipped: layers served by the ALS
//   const merged = await p.imageMount(ref)
//   …
//   await p.cleanup()

import { createHash } from "node:crypto"
import { closeSync, lstatSync, mkdtempSync, openSync, readdirSync, readlinkSync, readSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { requireCommand, run, runOk, unmountUnder, type RunResult } from "./sh.ts"

export const RUNC = "/usr/sbin/runc"

/** containers.conf for this sandbox: RLIMIT_NOFILE cannot be raised, no systemd, no journald. */
export const CONTAINERS_CONF = `[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
`

export interface AlsOption {
  /** The store's root directory: passed as `overlay.additionallayerstore=ROOT:ref`. */
  readonly root: string
}

export interface PullOptions {
  readonly als?: AlsOption
  /** e.g. "arm64": pull another platform of a multi-arch image. */
  readonly arch?: string
  readonly creds?: { readonly user: string; readonly pass: string }
  /** More global podman options (before `pull`). */
  readonly globalArgs?: ReadonlyArray<string>
  readonly timeoutMs?: number
}

export interface PullResult {
  readonly stdout: string
  /** The --log-level=debug output. */
  readonly stderr: string
  /** Image ID printed by podman. */
  readonly imageId: string
  /** Layer digests podman reused without fetching: "Skipping blob sha256:… (already present)". */
  readonly skipped: ReadonlyArray<string>
  /** Blob digests fetched from the registry (layers; the config blob is excluded). */
  readonly copied: ReadonlyArray<string>
  /** Warnings podman logged about the additional layer store (e.g. "GC doesn't seem to be supported"). */
  readonly alsWarnings: ReadonlyArray<string>
  readonly durationMs: number
}

/** Parse the digests podman's --log-level=debug output reports as reused / downloaded. */
export const parsePullLog = (log: string): { skipped: string[]; copied: string[]; alsWarnings: string[] } => {
  const uniq = (xs: Iterable<string>) => [...new Set(xs)]
  const skipped = uniq([...log.matchAll(/Skipping blob (sha256:[0-9a-f]{64}) \(already present\)/g)].map((m) => m[1]!))
  const downloaded = uniq([...log.matchAll(/Downloading \/v2\/\S+\/blobs\/(sha256:[0-9a-f]{64})/g)].map((m) => m[1]!))
  // "Copying blob X" is printed for layers only (the config is "Copying config X").
  const layers = new Set([...log.matchAll(/Copying blob (?:sha256:)?([0-9a-f]{12,64})/g)].map((m) => m[1]!))
  const isLayer = (d: string) => [...layers].some((l) => d.slice(7).startsWith(l))
  const copied = downloaded.filter(isLayer)
  const alsWarnings = uniq(
    log
      .split("\n")
      .filter((l) => /level=warning/.test(l) && /[Aa]dditional [Ll]ayer [Ss]tore/.test(l))
      .map((l) => l.match(/msg="(.*)"/)?.[1] ?? l),
  )
  return { skipped, copied, alsWarnings }
}

export interface Podman {
  /** The session's temp dir (graphroot, runroot, configs are inside). */
  readonly dir: string
  readonly graphRoot: string
  readonly runRoot: string
  /** Environment every podman call of this session gets. */
  readonly env: Record<string, string>
  /** Run podman with this session's isolation flags; throws on failure unless allowFailure. */
  podman(args: ReadonlyArray<string>, opts?: { timeoutMs?: number; allowFailure?: boolean }): Promise<RunResult>
  pull(ref: string, opts?: PullOptions): Promise<PullResult>
  /** Mount the image read-only and return the merged dir (host path). */
  imageMount(ref: string): Promise<string>
  imageUnmount(ref: string): Promise<void>
  /** `podman run --rm REF CMD…` with runc (crun fails on hybrid cgroups here). */
  run(ref: string, cmd: ReadonlyArray<string>, opts?: { als?: AlsOption }): Promise<RunResult>
  removeImage(ref: string): Promise<void>
  /** Image IDs and names in this session's store. */
  images(): Promise<Array<{ id: string; names: string[] }>>
  /** The ALS layer paths this session's layers use (`<graphroot>/overlay/<id>/additionallayer`). */
  additionalLayers(): string[]
  /** Unmount everything under the session dir and delete it. Safe to call twice. */
  cleanup(): Promise<void>
}

export interface PodmanSessionOptions {
  /** Parent of the session dir (default: os.tmpdir()). */
  readonly baseDir?: string
  /** Extra lines for storage.conf's [storage.options] table. */
  readonly storageOptions?: string
}

const storageConf = (graphRoot: string, runRoot: string, extra = "") => `[storage]
driver = "overlay"
graphroot = "${graphRoot}"
runroot = "${runRoot}"

[storage.options]
${extra}
`

/** Start an isolated podman 4.3.1 session. Throws (not skips) when podman is missing. */
export const createPodman = async (opts: PodmanSessionOptions = {}): Promise<Podman> => {
  requireCommand("podman", "apt-get install podman")
  const dir = mkdtempSync(join(opts.baseDir ?? tmpdir(), "als-podman-"))
  const graphRoot = join(dir, "root")
  const runRoot = join(dir, "run")
  writeFileSync(join(dir, "containers.conf"), CONTAINERS_CONF)
  writeFileSync(join(dir, "storage.conf"), storageConf(graphRoot, runRoot, opts.storageOptions))
  // Only fully qualified refs are used: no search registries, no short-name prompts.
  writeFileSync(join(dir, "registries.conf"), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
  writeFileSync(join(dir, "auth.json"), '{"auths":{}}\n')
  const env = {
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
    REGISTRY_AUTH_FILE: join(dir, "auth.json"),
    TMPDIR: dir,
  }
  // --tmpdir: libpod's own state (default /run/libpod) must not be shared with other sessions.
  const base = ["podman", "--root", graphRoot, "--runroot", runRoot, "--tmpdir", join(dir, "libpod-tmp"), "--storage-driver", "overlay", "--runtime", RUNC]
  let cleaned = false

  const podman: Podman["podman"] = async (args, o = {}) => {
    const cmd = [...base, ...args]
    return o.allowFailure ? run(cmd, { env, timeoutMs: o.timeoutMs ?? 300_000 }) : runOk(cmd, { env, timeoutMs: o.timeoutMs ?? 300_000 })
  }
  const alsArgs = (als?: AlsOption) => (als ? ["--storage-opt", `overlay.additionallayerstore=${als.root}:ref`] : [])

  return {
    dir,
    graphRoot,
    runRoot,
    env,
    podman,
    async pull(ref, o = {}) {
      const r = await podman(
        [
          ...alsArgs(o.als),
          ...(o.globalArgs ?? []),
          "--log-level=debug",
          "pull",
          "--tls-verify=false",
          ...(o.arch ? ["--arch", o.arch] : []),
          ...(o.creds ? ["--creds", `${o.creds.user}:${o.creds.pass}`] : []),
          ref,
        ],
        { timeoutMs: o.timeoutMs ?? 600_000 },
      )
      const parsed = parsePullLog(`${r.stdout}\n${r.stderr}`)
      const imageId = r.stdout.trim().split("\n").pop() ?? ""
      return { stdout: r.stdout, stderr: r.stderr, imageId, ...parsed, durationMs: r.durationMs }
    },
    async imageMount(ref) {
      const r = await podman(["image", "mount", ref])
      return r.stdout.trim()
    },
    async imageUnmount(ref) {
      await podman(["image", "unmount", ref])
    },
    async run(ref, cmd, o = {}) {
      return podman([...alsArgs(o.als), "run", "--rm", "--network", "none", ref, ...cmd])
    },
    async removeImage(ref) {
      await podman(["rmi", "--force", ref])
    },
    async images() {
      const r = await podman(["images", "--format", "json"])
      const list = JSON.parse(r.stdout || "[]") as Array<{ Id: string; Names?: string[] }>
      return list.map((i) => ({ id: i.Id, names: i.Names ?? [] }))
    },
    additionalLayers() {
      const overlay = join(graphRoot, "overlay")
      const out: string[] = []
      let ids: string[] = []
      try {
        ids = readdirSync(overlay)
      } catch {
        return out
      }
      for (const id of ids) {
        try {
          const fd = openSync(join(overlay, id, "additionallayer"), "r")
          const buf = Buffer.alloc(4096)
          const n = readSync(fd, buf, 0, buf.length, 0)
          closeSync(fd)
          out.push(buf.subarray(0, n).toString("utf8").trim())
        } catch {
          // not an ALS-backed layer
        }
      }
      return out
    },
    async cleanup() {
      if (cleaned) return
      cleaned = true
      // Let podman release what it knows about (containers, image mounts, its overlay bind
      // mount), then unmount whatever is left so that rm -rf cannot trip over a mount.
      await run([...base, "rm", "--all", "--force"], { env, timeoutMs: 60_000 }).catch(() => undefined)
      await run([...base, "image", "unmount", "--all", "--force"], { env, timeoutMs: 60_000 }).catch(() => undefined)
      await unmountUnder(dir)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Pull with a throwaway session and return the result (the session is cleaned up). */
export const podmanPull = async (ref: string, opts: PullOptions = {}): Promise<PullResult> => {
  const p = await createPodman()
  try {
    return await p.pull(ref, opts)
  } finally {
    await p.cleanup()
  }
}

// ---- tree comparison -------------------------------------------------------------------------

export interface TreeEntry {
  readonly type: "file" | "dir" | "symlink" | "fifo" | "char" | "block" | "socket"
  readonly mode: number // mode & 0o7777
  readonly uid: number
  readonly gid: number
  readonly size?: number
  readonly sha256?: string
  readonly target?: string
  readonly rdev?: number
  readonly mtime?: number // seconds (files only)
  readonly nlink: number
  readonly ino: number
  readonly xattrs?: Record<string, string>
}

const typeOf = (st: import("node:fs").Stats): TreeEntry["type"] =>
  st.isFile() ? "file" : st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFIFO() ? "fifo" : st.isCharacterDevice() ? "char" : st.isBlockDevice() ? "block" : "socket"

const hashFile = (path: string): string => {
  const h = createHash("sha256")
  const fd = openSync(path, "r")
  const buf = Buffer.allocUnsafe(1 << 20)
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n))
  } finally {
    closeSync(fd)
  }
  return h.digest("hex")
}

/** All xattrs below root, as { relPath: { name: value } } (one getfattr call for the tree). */
const readXattrs = async (root: string): Promise<Map<string, Record<string, string>>> => {
  const r = await run(["getfattr", "-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root])
  const out = new Map<string, Record<string, string>>()
  let current: Record<string, string> | undefined
  for (const line of r.stdout.split("\n")) {
    if (line.startsWith("# file: ")) {
      const p = line.slice(8)
      const rel = p === root ? "" : p.slice(root.length + 1)
      current = {}
      out.set(rel, current)
    } else if (current && line.includes("=")) {
      const i = line.indexOf("=")
      const name = line.slice(0, i)
      const v = line.slice(i + 1)
      current[name] = v.startsWith("0x") ? Buffer.from(v.slice(2), "hex").toString("utf8") : v.replace(/^"|"$/g, "")
    }
  }
  return out
}

export interface WalkOptions {
  /** Read xattrs too (default true; security.* and *.overlay.* are ignored). */
  readonly xattrs?: boolean
  /** Hash file contents (default true). */
  readonly hash?: boolean
}

/** Walk a tree into { relPath: entry } (the root itself is not included). */
export const walkTree = async (root: string, opts: WalkOptions = {}): Promise<Map<string, TreeEntry>> => {
  const entries = new Map<string, TreeEntry>()
  const xattrs = opts.xattrs === false ? new Map<string, Record<string, string>>() : await readXattrs(root)
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name
      const p = join(root, r)
      const st = lstatSync(p)
      const type = typeOf(st)
      const x = Object.fromEntries(Object.entries(xattrs.get(r) ?? {}).filter(([k]) => !/^security\.|\.overlay\./.test(k)))
      entries.set(r, {
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        nlink: st.nlink,
        ino: st.ino,
        ...(type === "file" ? { size: st.size, mtime: Math.floor(st.mtimeMs / 1000), ...(opts.hash === false ? {} : { sha256: hashFile(p) }) } : {}),
        ...(type === "symlink" ? { target: readlinkSync(p) } : {}),
        ...(type === "char" || type === "block" ? { rdev: st.rdev } : {}),
        ...(Object.keys(x).length > 0 ? { xattrs: x } : {}),
      })
      if (type === "dir") walk(r)
    }
  }
  walk("")
  return entries
}

export interface CompareOptions extends WalkOptions {
  /** Compare file mtimes (default true). */
  readonly mtime?: boolean
  /** Paths to leave out (with everything below them). */
  readonly ignore?: (relPath: string) => boolean
}

/** Hardlink groups of a tree: for each path, the sorted other paths sharing its inode. */
const linkGroups = (t: Map<string, TreeEntry>): Map<string, string> => {
  const byIno = new Map<number, string[]>()
  for (const [p, e] of t) if (e.type !== "dir" && e.nlink > 1) byIno.set(e.ino, [...(byIno.get(e.ino) ?? []), p])
  const out = new Map<string, string>()
  for (const paths of byIno.values()) if (paths.length > 1) for (const p of paths) out.set(p, paths.sort().join(" = "))
  return out
}

/**
 * Compare two trees entry by entry: presence, type, mode (setuid etc.), uid/gid, content hash,
 * size, symlink target, device numbers, xattrs, file mtimes and hardlink groups. Returns the
 * differences as readable lines; [] means equal. Whiteouts are "resolved" when the deleted
 * paths are absent (reported as "only in …") and no `.wh.*` entry or 0/0 char device is left.
 */
export const compareTrees = async (a: string, b: string, opts: CompareOptions = {}): Promise<string[]> => {
  const [ta, tb] = await Promise.all([walkTree(a, opts), walkTree(b, opts)])
  const ignored = (p: string) => opts.ignore !== undefined && p.split("/").some((_, i, parts) => opts.ignore!(parts.slice(0, i + 1).join("/")))
  const diffs: string[] = []
  const la = linkGroups(ta)
  const lb = linkGroups(tb)
  for (const [p, ea] of ta) {
    if (ignored(p)) continue
    const eb = tb.get(p)
    if (!eb) {
      diffs.push(`only in ${a}: ${p} (${ea.type})`)
      continue
    }
    const fields: Array<keyof TreeEntry> = ["type", "mode", "uid", "gid", "size", "sha256", "target", "rdev"]
    if (opts.mtime !== false) fields.push("mtime")
    for (const f of fields) if (ea[f] !== eb[f]) diffs.push(`${p}: ${f} ${fmt(f, ea[f])} != ${fmt(f, eb[f])}`)
    if (JSON.stringify(ea.xattrs ?? {}) !== JSON.stringify(eb.xattrs ?? {}))
      diffs.push(`${p}: xattrs ${JSON.stringify(ea.xattrs ?? {})} != ${JSON.stringify(eb.xattrs ?? {})}`)
    if ((la.get(p) ?? "") !== (lb.get(p) ?? "")) diffs.push(`${p}: hardlinks [${la.get(p) ?? ""}] != [${lb.get(p) ?? ""}]`)
  }
  for (const [p, eb] of tb) if (!ta.has(p) && !ignored(p)) diffs.push(`only in ${b}: ${p} (${eb.type})`)
  for (const [t, root] of [
    [ta, a],
    [tb, b],
  ] as const)
    for (const [p, e] of t) {
      const base = p.split("/").pop()!
      if (base.startsWith(".wh.")) diffs.push(`unresolved whiteout in ${root}: ${p}`)
      else if (e.type === "char" && e.rdev === 0) diffs.push(`overlay whiteout (0/0 char device) in merged tree ${root}: ${p}`)
    }
  return diffs
}

const fmt = (f: keyof TreeEntry, v: unknown): string => (f === "mode" && typeof v === "number" ? `0${v.toString(8)}` : String(v))
