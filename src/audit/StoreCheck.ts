/**
 * The store on disk against the fold of its log (`als audit`):
 *
 * - every layer the log committed and did not remove is there, complete, and its `info` says
 *   what the LayerCommitted event said (blob digest and size, DiffID, diff size, TOC digest);
 *   its blob has the recorded size (and, with `deep`, the recorded digest);
 * - nothing is there that the log does not explain: each layer directory has a LayerCommitted,
 *   each TOC alias belongs to a committed layer's TOC digest, each `:ref` view and entry to a
 *   RefIndexed, and the root holds nothing else but `.als` and `.pool`;
 * - every link resolves: a linked layer's `diff` and `blob`, TOC aliases, `:ref` entries.
 *
 * Plain synchronous fs calls (lstat, readlink, readdir): one Effect wraps the whole check.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { HashMap } from "effect"
import { type Digest, digestAlgorithm, isDigest } from "../domain/Digest.ts"
import { parseLayerInfo } from "../domain/LayerInfo.ts"
import { fileDigest } from "../verify/FileHash.ts"
import { readPoolFile } from "../verify/PoolFiles.ts"
import { decodeRef, encodeRef, LAYER_ENTRIES } from "../domain/StorePaths.ts"
import type { LayerRecord, StoreState } from "../events/Projection.ts"
import type { AuditProblem } from "./AuditProblem.ts"

/** What the log explains: its fold, and every layer each ref was ever indexed with. */
export interface Explained {
  readonly state: StoreState
  /** `als lookup --ref` indexes one layer at a time: a ref's view holds all it was ever given */
  readonly indexed: ReadonlyMap<string, ReadonlySet<string>>
}

/** The names in a store root that are not layers, aliases or ref views. */
export const KNOWN_ROOT_NAMES: ReadonlySet<string> = new Set([".als", ".pool"])

const lstat = (p: string): fs.Stats | undefined => {
  try {
    return fs.lstatSync(p)
  } catch {
    return undefined
  }
}
const stat = (p: string): fs.Stats | undefined => {
  try {
    return fs.statSync(p)
  } catch {
    return undefined
  }
}
const readlink = (p: string): string | undefined => {
  try {
    return fs.readlinkSync(p)
  } catch {
    return undefined
  }
}

/**
 * The names the layer directory `<root>/<target>` answers to, by its own `info`: its blob
 * digest and its TOC digest. Undefined when there is no readable info to ask (other checks
 * report that).
 */
const namesOf = (root: string, target: string): ReadonlySet<string> | undefined => {
  if (!isDigest(target)) return undefined
  const r = readPoolFile(path.join(root, target, "info"))
  if (r._tag !== "Read") return undefined
  try {
    const info = parseLayerInfo(r.text)
    return new Set([info.digest, info.tocDigest].filter((d): d is NonNullable<typeof d> => d !== undefined))
  } catch {
    return undefined
  }
}

export interface StoreCheckOptions {
  /** rehash every blob file */
  readonly deep?: boolean
}

export interface StoreCheckResult {
  readonly problems: ReadonlyArray<AuditProblem>
  readonly layersOnDisk: number
  readonly refViews: number
}

export const checkStore = (root: string, x: Explained, opts: StoreCheckOptions = {}): StoreCheckResult => {
  const problems: Array<AuditProblem> = []
  const layers = x.state.layers
  const committed = (d: string): LayerRecord | undefined => {
    const r = HashMap.get(layers, d)
    return r._tag === "Some" ? r.value : undefined
  }
  // TOC digest → blob digest, for the aliases commit makes
  const tocs = new Map<string, string>()
  for (const [d, l] of layers) if (l.tocDigest && l.tocDigest !== d) tocs.set(l.tocDigest, d)

  let layersOnDisk = 0
  let refViews = 0
  const entries = fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))
  for (const e of entries) {
    const p = path.join(root, e.name)
    if (KNOWN_ROOT_NAMES.has(e.name) && e.isDirectory()) continue
    if (isDigest(e.name) && e.isDirectory()) {
      layersOnDisk++
      if (committed(e.name)) continue // checked below, from the log's side
      const removed = HashMap.get(x.state.removed, e.name)
      if (removed._tag === "Some") {
        problems.push({
          area: "layer",
          code: "RemovedLayerPresent",
          layer: e.name,
          path: p,
          message: `the log removed it (LayerRemoved: ${removed.value.reason}) but its directory is still here`,
        })
      } else {
        problems.push({ area: "layer", code: "UnexplainedLayer", layer: e.name, path: p, message: "a layer directory no LayerCommitted event explains" })
      }
      continue
    }
    if (isDigest(e.name) && e.isSymbolicLink()) {
      const target = readlink(p)
      const blob = tocs.get(e.name)
      if (blob === undefined) {
        problems.push({
          area: "alias",
          code: "UnexplainedAlias",
          path: p,
          message: `a TOC alias (-> ${target}) that no committed layer's TOC digest explains`,
        })
      } else if (target !== blob) {
        problems.push({
          area: "alias",
          code: "AliasWrongTarget",
          layer: blob,
          path: p,
          message: `the TOC alias points at ${target}; the log says its layer is ${blob}`,
        })
      } else if (!stat(p)?.isDirectory()) {
        problems.push({ area: "alias", code: "AliasDangling", layer: blob, path: p, message: `the TOC alias points at ${target}, which is not in the store` })
      }
      // whatever the log says: the layer it points at must answer to this name
      const names = target === undefined ? undefined : namesOf(root, target)
      if (names !== undefined && !names.has(e.name)) {
        problems.push({
          area: "alias",
          code: "AliasWrongLayer",
          layer: target,
          path: p,
          message: `the alias ${e.name} points at ${target}, whose info names it ${[...names].join(" / ")}: it serves another layer's tree`,
        })
      }
      continue
    }
    const ref = e.isDirectory() ? decodeRef(e.name) : undefined
    if (ref !== undefined) {
      refViews++
      problems.push(...checkRefView(p, ref, x, committed))
      continue
    }
    problems.push({
      area: "stray",
      code: "StrayEntry",
      path: p,
      message: `not a name the store uses (layers are sha256:<hex>, ref views base64 of a reference, and .als, .pool)`,
    })
  }

  for (const [digest, rec] of layers) {
    // the log is read, not trusted: a "digest" in it that does not parse never becomes a path
    if (!isDigest(digest) || (rec.tocDigest !== undefined && !isDigest(rec.tocDigest))) {
      problems.push({
        area: "log",
        code: "LogDecode",
        message: `a LayerCommitted event names ${JSON.stringify(isDigest(digest) ? rec.tocDigest : digest).slice(0, 200)}, which is not a digest`,
      })
      continue
    }
    problems.push(...checkCommitted(root, digest, rec, opts))
  }

  // every layer the log indexed under a ref (and that is still committed) has its entry
  for (const [ref, r] of x.state.refs) {
    for (const d of r.layers) {
      if (!isDigest(d) || !committed(d)) continue
      const entry = path.join(root, encodeRef(ref), d)
      if (!lstat(entry)) {
        problems.push({
          area: "ref",
          code: "RefEntryMissing",
          layer: d,
          path: entry,
          message: `the log indexed this layer under ${ref} (RefIndexed), but the ref's view has no entry for it`,
        })
      }
    }
  }
  return { problems, layersOnDisk, refViews }
}

const checkCommitted = (root: string, digest: Digest, rec: LayerRecord, opts: StoreCheckOptions): Array<AuditProblem> => {
  const dir = path.join(root, digest)
  const out: Array<AuditProblem> = []
  const at = (code: AuditProblem["code"], message: string, p = dir): AuditProblem => ({ area: "layer", code, layer: digest, path: p, message })
  const st = lstat(dir)
  if (!st?.isDirectory()) {
    out.push(at("LayerMissing", `committed by the log (LayerCommitted, ${rec.source}${rec.pool ? ` from ${rec.pool}` : ""}) and never removed, but ${st ? "not a directory" : "not in the store"}`))
    return out
  }
  let complete = true
  for (const name of LAYER_ENTRIES) {
    const p = path.join(dir, name)
    const l = lstat(p)
    if (!l) {
      out.push(at("LayerIncomplete", `no ${name}: clients will not use this layer`, p))
      complete = false
    } else if (l.isSymbolicLink() && !stat(p)) {
      out.push(at("LinkBroken", `${name} -> ${readlink(p)}, which does not exist${rec.pool ? ` (the layer is linked from pool ${rec.pool})` : ""}`, p))
      complete = false
    }
  }
  // a linked layer's diff and blob stay inside the pool it was linked from
  if (rec.pool !== undefined) {
    let pool: string | undefined
    try {
      pool = fs.realpathSync(rec.pool)
    } catch {
      pool = undefined // a pool that is gone: LinkBroken says so
    }
    for (const name of ["diff", "blob"] as const) {
      const p = path.join(dir, name)
      if (pool === undefined || !lstat(p)?.isSymbolicLink()) continue
      let real: string
      try {
        real = fs.realpathSync(p)
      } catch {
        continue
      }
      if (real !== pool && !real.startsWith(pool.endsWith("/") ? pool : pool + "/")) {
        out.push(at("LinkOutsidePool", `${name} resolves to ${real}, outside the pool ${rec.pool} it was linked from`, p))
      }
    }
  }
  const infoFile = path.join(dir, "info")
  if (stat(infoFile)) {
    let info: ReturnType<typeof parseLayerInfo> | undefined
    try {
      const r = readPoolFile(infoFile)
      if (r._tag !== "Read") throw new Error(r._tag === "Refused" ? r.reason.replace("the pool's", "the") : "it vanished")
      info = parseLayerInfo(r.text)
    } catch (e) {
      out.push(at("InfoUnreadable", `info is not readable JSON: ${(e as Error).message}`, infoFile))
    }
    if (info) {
      const field = (name: string, onDisk: unknown, inLog: unknown) => {
        if ((onDisk ?? null) !== (inLog ?? null)) {
          out.push(at("InfoMismatch", `info ${name} is ${onDisk ?? "absent"}, the LayerCommitted event says ${inLog ?? "none"}`, infoFile))
        }
      }
      field("compressed-diff-digest", info.digest, digest)
      field("diff-digest", info.diffId, rec.diffId)
      field("toc-digest", info.tocDigest, rec.tocDigest)
      field("compressed-size", info.size, rec.blobSize)
      field("diff-size", info.diffSize, rec.diffSize)
    }
  }
  const blob = path.join(dir, "blob")
  const b = complete ? stat(blob) : undefined
  if (b) {
    if (b.size !== rec.blobSize) out.push(at("BlobSizeMismatch", `blob is ${b.size} bytes, the log says ${rec.blobSize}`, blob))
    else if (opts.deep) {
      const got = fileDigest(blob, digestAlgorithm(digest))
      if (got !== digest) out.push(at("BlobDigestMismatch", `blob hashes to ${got}: its bytes were changed`, blob))
    }
  }
  if (rec.tocDigest && rec.tocDigest !== digest && !lstat(path.join(root, rec.tocDigest))) {
    out.push({
      area: "alias",
      code: "AliasMissing",
      layer: digest,
      path: path.join(root, rec.tocDigest),
      message: `no TOC alias ${rec.tocDigest} -> ${digest}: podman 5 looks the layer up by its TOC digest`,
    })
  }
  return out
}

const checkRefView = (
  dir: string,
  ref: string,
  x: Explained,
  committed: (d: string) => LayerRecord | undefined,
): Array<AuditProblem> => {
  const indexed = x.indexed.get(ref)
  if (!indexed) {
    return [{ area: "ref", code: "UnexplainedRef", path: dir, message: `a view for ${ref}, which no RefIndexed event names` }]
  }
  const out: Array<AuditProblem> = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name)
    if (!isDigest(e.name) || !e.isSymbolicLink()) {
      out.push({ area: "stray", code: "StrayEntry", path: p, message: `not an entry of ${ref}'s view (entries are sha256:<hex> symlinks to ../sha256:<hex>)` })
      continue
    }
    const target = readlink(p) ?? ""
    const m = /^\.\.\/(sha(?:256|512):[a-f0-9]+)$/.exec(target)
    const blob = m?.[1]
    if (!blob || !isDigest(blob)) {
      out.push({ area: "ref", code: "RefEntryWrongTarget", path: p, message: `points at ${target}; entries point at ../<layer digest>` })
      continue
    }
    // the layer the log indexed under this name: the name itself, or the layer whose TOC it is
    const expected = indexed.has(e.name)
      ? e.name
      : [...indexed].find((d) => committed(d)?.tocDigest === e.name)
    if (expected === undefined) {
      out.push({
        area: "ref",
        code: "UnexplainedRefEntry",
        layer: blob,
        path: p,
        message: `${ref}'s view names ${e.name} -> ${target}, which no RefIndexed event for ${ref} explains`,
      })
    } else if (blob !== expected) {
      out.push({
        area: "ref",
        code: "RefEntryWrongTarget",
        layer: expected,
        path: p,
        message: `${ref}'s view points ${e.name} at ${target}; the log indexed it as ../${expected}`,
      })
    } else if (!stat(p)) {
      out.push({ area: "ref", code: "RefEntryDangling", layer: blob, path: p, message: `${ref}'s view points at ${target}, which is not in the store` })
    }
    const names = namesOf(path.dirname(dir), blob)
    if (names !== undefined && !names.has(e.name)) {
      out.push({
        area: "ref",
        code: "RefEntryWrongLayer",
        layer: blob,
        path: p,
        message: `${ref}'s view names ${e.name} -> ${target}, whose info names it ${[...names].join(" / ")}: podman would get another layer's tree`,
      })
    }
  }
  return out
}
