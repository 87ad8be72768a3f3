/**
 * Where things live in a store (DESIGN.md "Store layout"). Pure: paths only, no IO.
 *
 *   <root>/sha256:<hex>/{diff/,info,blob}      the one real copy of a layer
 *   <root>/sha256:<toc> -> sha256:<hex>        TOC-digest alias (podman >= 5.1 looks up by TOC)
 *   <root>/<base64(ref)>/<key> -> ../sha256:<hex>   the `:ref` view podman reads
 *   <root>/.pool/                              the seed's pool mount point (read-only to us)
 *   <root>/.als/                               ours: log, staging, locks (never read by clients)
 */
import * as path from "node:path"
import { type Digest, parseDigest } from "./Digest.ts"

export interface StorePaths {
  readonly root: string
  readonly alsDir: string
  readonly log: string
  readonly staging: string
  readonly locks: string
  readonly pool: string
  readonly layer: (key: Digest) => string
  readonly refDir: (ref: string) => string
  readonly refEntry: (ref: string, key: Digest) => string
}

/** containers/storage names the ref view with standard base64 (padding kept). */
export const encodeRef = (ref: string): string => Buffer.from(ref, "utf8").toString("base64")

export const decodeRef = (name: string): string | undefined => {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(name) || name.length % 4 !== 0) return undefined
  const ref = Buffer.from(name, "base64").toString("utf8")
  return encodeRef(ref) === name ? ref : undefined
}

/**
 * The view's directory name for a ref. A parsed reference never encodes to a name holding `/`
 * (only a byte such as `?` or DEL can give base64's 63rd letter), so one that does was never
 * parsed: refused rather than made into nested directories.
 */
export const refName = (ref: string): string => {
  const name = encodeRef(ref)
  if (ref === "" || name.includes("/")) throw new Error(`not a reference, refused as a :ref view name: ${JSON.stringify(ref).slice(0, 200)}`)
  return name
}

/** A digest-named path only from a digest that parses (a cast elsewhere cannot slip through). */
const digestName = (key: Digest): string => parseDigest(key)

export const storePaths = (root: string): StorePaths => {
  const r = path.resolve(root)
  const als = path.join(r, ".als")
  return {
    root: r,
    alsDir: als,
    log: path.join(als, "log"),
    staging: path.join(als, "staging"),
    locks: path.join(als, "locks"),
    pool: path.join(r, ".pool"),
    layer: (key) => path.join(r, digestName(key)),
    refDir: (ref) => path.join(r, refName(ref)),
    refEntry: (ref, key) => path.join(r, refName(ref), digestName(key)),
  }
}

/** The three names containers/storage stats before it trusts a layer directory. */
export const LAYER_ENTRIES = ["diff", "info", "blob"] as const

/** The default root: --root, else $ALS_ROOT, else /var/lib/als for root, $XDG_DATA_HOME/als otherwise. */
export const defaultRoot = (env: Readonly<Record<string, string | undefined>>, uid: number, home: string): string => {
  if (env.ALS_ROOT) return env.ALS_ROOT
  if (uid === 0) return "/var/lib/als"
  return path.join(env.XDG_DATA_HOME || path.join(home, ".local", "share"), "als")
}
