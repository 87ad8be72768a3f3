/**
 * What still needs a layer, as gc asks it: podman's layers and the store's own `:ref` views.
 *
 * containers/storage writes `<graphroot>/overlay/<id>/additionallayer` holding the path of the
 * ALS layer it uses (ALS-PROTOCOL.md §5), and the kernel keeps that layer as an overlay
 * lowerdir while the client's layer exists. Those files are podman's, read as files others
 * made: regular files only, small, parsed to a path; a graph root that cannot be read is an
 * error (gc must not conclude "unused" from a directory it could not see).
 */
import { Effect, type HashMap } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Digest, isDigest } from "../domain/Digest.ts"
import { decodeRef } from "../domain/StorePaths.ts"
import { ioError, type StoreIoError } from "./errors.ts"
import { processAlive } from "../sys/ProcessAlive.ts"

/** An `additionallayer` file holds one path; anything longer is not one. */
const MAX_ADDITIONAL_LAYER_BYTES = 4096

const missing = (e: unknown) => {
  const code = (e as NodeJS.ErrnoException).code
  return code === "ENOENT" || code === "ENOTDIR"
}

/** The text of `<layer>/additionallayer`, undefined when there is none (or it is not a regular file). */
const readAdditionalLayer = (file: string): string | undefined => {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW)
  } catch (e) {
    if (missing(e) || (e as NodeJS.ErrnoException).code === "ELOOP") return undefined
    throw e
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile() || st.size > MAX_ADDITIONAL_LAYER_BYTES) return undefined
    const buf = Buffer.alloc(st.size)
    const n = fs.readSync(fd, buf, 0, st.size, 0)
    return buf.subarray(0, n).toString("utf8")
  } finally {
    fs.closeSync(fd)
  }
}

const realOr = (p: string) => {
  try {
    return fs.realpathSync(p)
  } catch {
    return path.resolve(p)
  }
}

/**
 * The layer a key names in the store at `realRoot`: a TOC alias (`<root>/<toc>` -> the blob
 * digest's directory) is read with readlink, never followed; anything else is the key itself.
 */
const throughAlias = (key: Digest, realRoot: string): Digest => {
  let target: string
  try {
    target = fs.readlinkSync(path.join(realRoot, key))
  } catch {
    return key // a layer directory, or gone: the key is its own name (kept, to be safe)
  }
  const blob = path.basename(target)
  return isDigest(blob) ? blob : key
}

const isInside = (p: string, dir: string) => {
  const rel = path.relative(dir, p)
  return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel)
}

/**
 * Which layer of the store at `realRoot` an `additionallayer` path names, if any.
 *
 * A path inside the store is resolved on the store's disk. Any other path, e.g. one inside an
 * `als serve` mount (`/run/als/<b64ref>/<key>`), is never stat'ed or resolved: a lookup there
 * can make serve pull, or hang on a dead mount. Its last component is the key (blob digest or,
 * for podman 5, a TOC digest), mapped through the store's TOC aliases to the blob digest.
 */
export const layerNamedBy = (text: string, realRoot: string, resolve: (p: string) => string = realOr): Digest | undefined => {
  const p = text.trim()
  if (!path.isAbsolute(p) || p.includes("\0")) return undefined
  const abs = path.resolve(p)
  if (isInside(abs, realRoot)) {
    // through the :ref view or a TOC alias: resolve it to the real directory
    const real = resolve(abs)
    const base = path.basename(real)
    if (path.dirname(real) === realRoot && isDigest(base)) return base
  }
  // the seed's discovery path ends in `rootfs.<digest>`
  const named = path.basename(abs).replace(/^rootfs\./, "")
  return isDigest(named) ? throughAlias(named, realRoot) : undefined
}

/** Layer digests of the store at `root` named by some graph root's `additionallayer` file. */
export const layersInUse = (root: string, graphroots: ReadonlyArray<string>): Effect.Effect<ReadonlySet<Digest>, StoreIoError> =>
  Effect.try({
    try: () => {
      const inUse = new Set<Digest>()
      const realRoot = realOr(root)
      for (const g of graphroots) {
        const overlay = path.join(g, "overlay")
        let ids: string[]
        try {
          ids = fs.readdirSync(overlay)
        } catch (e) {
          // no overlay dir yet: podman has no layer there. Anything else (not a directory, no
          // permission) leaves gc unable to say, which is an error.
          if ((e as NodeJS.ErrnoException).code === "ENOENT") continue
          throw e
        }
        for (const id of ids) {
          const text = readAdditionalLayer(path.join(overlay, id, "additionallayer"))
          if (text === undefined) continue
          const d = layerNamedBy(text, realRoot)
          if (d !== undefined) inUse.add(d)
        }
      }
      return inUse
    },
    catch: ioError("read podman's layers in", graphroots.join(", ")),
  })

/** The refs whose `:ref` view names `digest` now, read from disk (gc asks this under the layer's lock). */
export const refsNaming = (root: string, digest: Digest): Effect.Effect<ReadonlyArray<string>, StoreIoError> =>
  Effect.try({
    try: () => {
      const refs: string[] = []
      for (const d of fs.readdirSync(root, { withFileTypes: true })) {
        if (!d.isDirectory()) continue
        const ref = decodeRef(d.name)
        if (ref === undefined) continue
        const dir = path.join(root, d.name)
        let entries: string[]
        try {
          entries = fs.readdirSync(dir)
        } catch (e) {
          if (missing(e)) continue
          throw e
        }
        // under its blob digest, or a TOC key pointing at it
        const names = entries.some((e) => {
          if (e === digest) return true
          try {
            return path.basename(fs.readlinkSync(path.join(dir, e))) === digest
          } catch {
            return false
          }
        })
        if (names) refs.push(ref)
      }
      return refs
    },
    catch: ioError("read refs in", root),
  })

// ---- use counts of `als serve` processes that are gone -------------------------------------------

/** Uses one serving process counted and never released: its host and pid, per layer. */
export interface ServerUses {
  readonly host: string
  readonly pid: number
  readonly layer: string
  readonly uses: number
}

/** `host pid` (Projection.serverKey) back to its parts; undefined for a key without a pid. */
const parseServerKey = (key: string): { host: string; pid: number } | undefined => {
  const at = key.lastIndexOf(" ")
  const pid = Number(key.slice(at + 1))
  return at > 0 && Number.isInteger(pid) && pid > 0 ? { host: key.slice(0, at), pid } : undefined
}

/**
 * The uses counted by serving processes on this host that no longer exist: a server killed
 * (SIGKILL, a crash) never sees the releases that follow, which go to its dead mount, so its
 * counts would keep layers "in use" forever. Only this host's processes can be checked; a pid
 * that exists (or was reused) keeps its counts, the safe side. `self` is never stale.
 */
export const staleUses = (
  usesByServer: HashMap.HashMap<string, HashMap.HashMap<string, number>>,
  here: { readonly host: string; readonly pid: number },
  alive: (pid: number) => boolean,
): ReadonlyArray<ServerUses> => {
  const out: ServerUses[] = []
  for (const [key, layers] of usesByServer) {
    const s = parseServerKey(key)
    if (!s || s.host !== here.host || s.pid === here.pid || alive(s.pid)) continue
    for (const [layer, uses] of layers) if (uses > 0) out.push({ host: s.host, pid: s.pid, layer, uses })
  }
  return out
}

/** Holders per layer as a live server's word: the log's counts less those of servers gone from this host. */
export const liveUses = (
  state: { readonly uses: HashMap.HashMap<string, number>; readonly usesByServer: HashMap.HashMap<string, HashMap.HashMap<string, number>> },
  here: { readonly host: string; readonly pid: number } = { host: os.hostname(), pid: process.pid },
  alive: (pid: number) => boolean = processAlive,
): ReadonlyMap<string, number> => {
  const out = new Map<string, number>()
  for (const [layer, n] of state.uses) if (n > 0) out.set(layer, n)
  for (const s of staleUses(state.usesByServer, here, alive)) {
    const n = (out.get(s.layer) ?? 0) - s.uses
    if (n > 0) out.set(s.layer, n)
    else out.delete(s.layer)
  }
  return out
}
