/**
 * The table of contents of a seekable layer (zstd:chunked's manifest, eStargz's
 * `stargz.index.json`) parsed into one typed model: the tree `als pull` would extract, in
 * overlay format, and for every regular file the chunks its bytes live in. Pure: JSON text in,
 * a model out; anything out of bounds or inconsistent is a `TocInvalid`, never a value.
 *
 * Both formats list entries in tar order: `reg` (the file and its first chunk), `chunk`
 * (further chunks of the previous file, same name), `dir`, `symlink`, `hardlink` (linkName:
 * the earlier entry's name), `char`, `block`, `fifo`. The chunk's place in the blob:
 * - zstd:chunked: `offset` is where its zstd frame(s) start; it ends where the next chunk of
 *   the file starts, the last at the file's `endOffset`. `chunkType: "zeros"` has no data.
 * - eStargz: `offset` is where a gzip member starts whose output, from `innerOffset` on,
 *   holds the chunk; it ends at the next larger offset any entry names (or the TOC's own).
 * Names are normalised as the extractor does (EntryPath.ts); `.wh.X` becomes a 0/0 char
 * device X, `.wh..wh..opq` an opaque mark on its directory, other `.wh..wh.*` are skipped;
 * overlay's own xattrs and SELinux labels are dropped (OverlayWriter.ts does the same).
 *
 * eStargz's prefetch list: the regular files before the root entry `.prefetch.landmark` are the
 * ones the image's builder marked as needed first (its converter moves them to the front);
 * `.no.prefetch.landmark`, or no landmark, means none. The landmarks stay ordinary files of the
 * tree (a plain pull extracts them too). zstd:chunked has no prefetch list.
 */
import { createHash } from "node:crypto"
import { type Digest, isDigest } from "../domain/Digest.ts"
import { cleanComponents, PathEscape } from "../extract/EntryPath.ts"

export type TocFormat = "zstd:chunked" | "estargz"

export class TocInvalid extends Error {
  constructor(readonly format: TocFormat, readonly detail: string) {
    super(`the ${format} TOC is invalid: ${detail}`)
  }
}

/** One piece of a regular file: bytes [fileOffset, fileOffset+size) of the file. */
export interface TocChunk {
  readonly fileOffset: number
  readonly size: number
  /** where its compressed data start in the blob, and end (exclusive) */
  readonly blobOffset: number
  readonly blobEnd: number
  /** eStargz: bytes of the member's output to skip before the chunk */
  readonly innerOffset: number
  /** the digest of the chunk's uncompressed bytes */
  readonly digest: Digest
  /** a hole: zeros, nothing to fetch */
  readonly zeros: boolean
}

interface Meta {
  /** permission and special bits (0o7777) */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** seconds since the epoch */
  readonly mtime: number
  readonly xattrs: ReadonlyArray<readonly [string, Uint8Array]>
}

export type TocNode =
  | (Meta & { readonly kind: "dir"; readonly children: Map<string, TocNode>; opaque: boolean })
  | (Meta & {
    readonly kind: "file"
    readonly size: number
    readonly digest: Digest | undefined
    readonly chunks: TocChunk[]
    readonly id: number
    nlink: number
    /** bytes already held (eStargz's own TOC file, verified with the TOC) */
    readonly inline?: Uint8Array | undefined
  })
  | (Meta & { readonly kind: "symlink"; readonly target: string })
  | (Meta & { readonly kind: "char" | "block"; readonly major: number; readonly minor: number })
  | (Meta & { readonly kind: "fifo" })

export type TocFile = Extract<TocNode, { kind: "file" }>
export type TocDir = Extract<TocNode, { kind: "dir" }>

export interface TocModel {
  readonly format: TocFormat
  readonly root: TocDir
  /** every regular file (hard links share one), in TOC order */
  readonly files: ReadonlyArray<TocFile>
  /** bytes of all regular files */
  readonly totalSize: number
  /** zstd:chunked: the digest of the compressed tar-split (the tar's layout), when the TOC names one */
  readonly tarSplitDigest?: Digest | undefined
  /** the files to fetch first (eStargz's prefetch landmark), in TOC order; empty when the format or image has none */
  readonly prefetch: ReadonlyArray<TocFile>
}

export const PREFETCH_LANDMARK = ".prefetch.landmark"
export const NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"

/** Bounds: a TOC larger than this is not a layer we serve lazily. */
export const MAX_ENTRIES = 4_000_000
const MAX_NAME = 4096
const MAX_XATTR_VALUE = 64 * 1024

const dropXattr = (name: string) =>
  name.startsWith("trusted.overlay.") || name.startsWith("user.overlay.") || name === "security.selinux"

type Raw = Record<string, unknown>

const zerosDigest = (size: number): Digest => {
  const h = createHash("sha256")
  const block = new Uint8Array(Math.min(size, 1 << 20))
  for (let left = size; left > 0; left -= block.length) h.update(left >= block.length ? block : block.subarray(0, left))
  return `sha256:${h.digest("hex")}` as Digest
}

/** Builds the model from the TOC's JSON text. `blobSize` bounds every offset; `tocOffset` is
 * where the TOC's own data start (eStargz chunks end there at the latest). */
export const parseToc = (format: TocFormat, json: string, blobSize: number, tocOffset: number): TocModel => {
  const bad = (detail: string): never => {
    throw new TocInvalid(format, detail)
  }
  let doc: unknown
  try {
    doc = JSON.parse(json)
  } catch (e) {
    return bad(`not JSON (${(e as Error).message})`)
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return bad("not a JSON object")
  const version = (doc as Raw).version
  if (version !== 1) return bad(`version ${JSON.stringify(version)}, expected 1`)
  const raw = (doc as Raw).entries
  if (!Array.isArray(raw)) return bad("no entries list")
  if (raw.length > MAX_ENTRIES) return bad(`${raw.length} entries, more than ${MAX_ENTRIES}`)

  const int = (e: Raw, key: string, where: string, max = Number.MAX_SAFE_INTEGER): number => {
    const v = e[key]
    if (v === undefined || v === null) return 0
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) return bad(`${where}: ${key} ${JSON.stringify(v)} is not an integer in 0..${max}`)
    return v
  }
  const str = (e: Raw, key: string, where: string, max = MAX_NAME): string => {
    const v = e[key]
    if (v === undefined || v === null) return ""
    if (typeof v !== "string" || v.length > max || v.includes("\0")) return bad(`${where}: ${key} is not a string of at most ${max} characters without NUL`)
    return v
  }
  const digestOf = (e: Raw, key: string, where: string): Digest | undefined => {
    const v = e[key]
    if (v === undefined || v === null || v === "") return undefined
    if (typeof v !== "string" || !isDigest(v)) return bad(`${where}: ${key} ${JSON.stringify(v)} is not a digest`)
    return v
  }
  const timeOf = (e: Raw, where: string): number => {
    const v = e.modtime
    if (v === undefined || v === null) return 0
    const t = typeof v === "string" ? Date.parse(v) : NaN
    if (!Number.isFinite(t)) return bad(`${where}: modtime ${JSON.stringify(v)} is not a time`)
    return Math.floor(t / 1000)
  }
  const xattrsOf = (e: Raw, where: string): Array<readonly [string, Uint8Array]> => {
    const v = e.xattrs
    if (v === undefined || v === null) return []
    if (typeof v !== "object" || Array.isArray(v)) return bad(`${where}: xattrs is not an object`)
    const out: Array<readonly [string, Uint8Array]> = []
    for (const [name, value] of Object.entries(v as Raw)) {
      if (name.length === 0 || name.length > 255 || name.includes("\0")) return bad(`${where}: xattr name ${JSON.stringify(name)}`)
      if (typeof value !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return bad(`${where}: xattr ${name} is not base64`)
      const bytes = new Uint8Array(Buffer.from(value, "base64"))
      if (bytes.length > MAX_XATTR_VALUE) return bad(`${where}: xattr ${name} is larger than ${MAX_XATTR_VALUE} bytes`)
      if (!dropXattr(name)) out.push([name, bytes])
    }
    return out
  }
  const pathOf = (name: string, where: string): string[] => {
    try {
      return cleanComponents(name)
    } catch (e) {
      if (e instanceof PathEscape) return bad(`${where}: the name climbs out of the layer root`)
      throw e
    }
  }

  // eStargz: a chunk ends where the next piece of data begins; collect every start first
  const starts: number[] = []
  if (format === "estargz") {
    for (const e of raw) {
      if (typeof e === "object" && e !== null) {
        const o = (e as Raw).offset
        if (typeof o === "number" && Number.isSafeInteger(o) && o > 0) starts.push(o)
      }
    }
    starts.push(tocOffset)
    starts.sort((a, b) => a - b)
  }
  const nextStart = (offset: number): number => {
    let lo = 0
    let hi = starts.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (starts[mid]! <= offset) lo = mid + 1
      else hi = mid
    }
    return lo < starts.length ? starts[lo]! : tocOffset
  }

  const root: TocDir = { kind: "dir", children: new Map(), opaque: false, mode: 0o755, uid: 0, gid: 0, mtime: 0, xattrs: [] }
  const files: TocFile[] = []
  let fileIds = 0
  /** the directory at `comps`, made 0755 root:root where missing (as the extractor does) */
  const dirAt = (comps: ReadonlyArray<string>, where: string): TocDir => {
    let d = root
    for (const c of comps) {
      const next = d.children.get(c)
      if (next === undefined) {
        const made: TocDir = { kind: "dir", children: new Map(), opaque: false, mode: 0o755, uid: 0, gid: 0, mtime: 0, xattrs: [] }
        d.children.set(c, made)
        d = made
      } else if (next.kind === "dir") d = next
      else return bad(`${where}: its parent ${JSON.stringify(c)} is not a directory`)
    }
    return d
  }
  const lookupPath = (comps: ReadonlyArray<string>): TocNode | undefined => {
    let n: TocNode = root
    for (const c of comps) {
      if (n.kind !== "dir") return undefined
      const next: TocNode | undefined = n.children.get(c)
      if (next === undefined) return undefined
      n = next
    }
    return n
  }

  /** the file the following `chunk` entries continue, and where its next chunk must start */
  let open: { file: TocFile; name: string; endOffset: number; next: number; pendingEnd: ((end: number) => void) | undefined } | undefined
  const closeFile = (where: string) => {
    if (!open) return
    if (open.pendingEnd) open.pendingEnd(format === "zstd:chunked" ? open.endOffset : 0)
    if (open.next !== open.file.size) bad(`${where}: the chunks of ${JSON.stringify(open.name)} cover ${open.next} of its ${open.file.size} bytes`)
    open = undefined
  }
  let totalSize = 0
  /** how many of `files` precede the prefetch landmark (eStargz), once it is seen */
  let prefetchCount: number | undefined

  const addChunk = (e: Raw, where: string, first: boolean) => {
    const o = open!
    const fileOffset = first ? 0 : int(e, "chunkOffset", where)
    if (fileOffset !== o.next) bad(`${where}: chunk at ${fileOffset} of ${JSON.stringify(o.name)}, expected ${o.next}`)
    let size = int(e, "chunkSize", where)
    if (size === 0) size = o.file.size - fileOffset // one chunk for the rest (single-chunk files)
    if (fileOffset + size > o.file.size) bad(`${where}: chunk ends past the file's size`)
    const zeros = format === "zstd:chunked" && e.chunkType === "zeros"
    if (e.chunkType !== undefined && e.chunkType !== "zeros" && e.chunkType !== "data" && e.chunkType !== "") bad(`${where}: chunkType ${JSON.stringify(e.chunkType)}`)
    // a hole needs no digest: its bytes are known (its digest is computed, for the cache's key)
    const digest = digestOf(e, "chunkDigest", where) ?? (fileOffset === 0 && size === o.file.size ? o.file.digest : undefined) ??
      (zeros ? zerosDigest(size) : undefined)
    if (digest === undefined) bad(`${where}: a chunk of ${JSON.stringify(o.name)} has no digest to check it against`)
    const blobOffset = int(e, "offset", where, blobSize)
    if (!zeros && blobOffset === 0) bad(`${where}: a chunk of ${JSON.stringify(o.name)} has no offset`)
    const innerOffset = format === "estargz" ? int(e, "innerOffset", where) : 0
    // the previous chunk (zstd:chunked) ends where this one's frame starts, a hole's included
    if (o.pendingEnd && blobOffset > 0) o.pendingEnd(blobOffset)
    const chunk: { -readonly [K in keyof TocChunk]: TocChunk[K] } = {
      fileOffset,
      size,
      blobOffset: zeros ? 0 : blobOffset,
      blobEnd: zeros ? 0 : format === "estargz" ? nextStart(blobOffset) : 0,
      innerOffset,
      digest: digest!,
      zeros,
    }
    if (!zeros && chunk.blobEnd > blobSize) bad(`${where}: a chunk ends past the blob`)
    o.pendingEnd = undefined
    if (format === "zstd:chunked" && !zeros) {
      o.pendingEnd = (end: number) => {
        if (end <= chunk.blobOffset || end > blobSize) bad(`${where}: a chunk of ${JSON.stringify(o.name)} has no data (${chunk.blobOffset}..${end})`)
        chunk.blobEnd = end
      }
    }
    o.file.chunks.push(chunk)
    o.next = fileOffset + size
  }

  for (let i = 0; i < raw.length; i++) {
    const e = raw[i] as Raw
    const where = `entry ${i}`
    if (typeof e !== "object" || e === null || Array.isArray(e)) return bad(`${where} is not an object`)
    const type = e.type
    const name = str(e, "name", where)
    if (type === "chunk") {
      if (!open || pathOf(name, where).join("/") !== open.name) return bad(`${where}: a chunk of ${JSON.stringify(name)} that does not follow its file`)
      addChunk(e, where, false)
      continue
    }
    closeFile(where)
    const comps = pathOf(name, where)
    if (format === "estargz" && comps.length === 1 && comps[0] === "stargz.index.json") continue
    const meta: Meta = {
      mode: int(e, "mode", where) & 0o7777,
      uid: int(e, "uid", where, 0xffffffff),
      gid: int(e, "gid", where, 0xffffffff),
      mtime: timeOf(e, where),
      xattrs: xattrsOf(e, where),
    }
    if (comps.length === 0) {
      if (type !== "dir") return bad(`${where}: the root is a ${String(type)}`)
      Object.assign(root, { ...meta, children: root.children, opaque: root.opaque })
      continue
    }
    for (let c = 0; c < comps.length - 1; c++) {
      if (comps[c]!.startsWith(".wh.")) {
        if (comps[c]!.startsWith(".wh..wh.")) break // inside aufs metadata: skipped below
        return bad(`${where}: the whiteout name ${JSON.stringify(comps[c])} is used as a directory`)
      }
    }
    if (comps.slice(0, -1).some((c) => c.startsWith(".wh..wh."))) continue
    const base = comps[comps.length - 1]!
    const parentComps = comps.slice(0, -1)
    if (base.startsWith(".wh.")) {
      if (base === ".wh..wh..opq") {
        const d = lookupPath(parentComps)
        if (d === undefined || d.kind === "dir") dirAt(parentComps, where).opaque = true
        continue
      }
      if (base.startsWith(".wh..wh.")) continue
      const hidden = base.slice(4)
      if (hidden.length === 0) return bad(`${where}: an empty whiteout name`)
      const parent = lookupPath(parentComps)
      if (parent !== undefined && parent.kind !== "dir") continue // its directory was whited out
      dirAt(parentComps, where).children.set(hidden, { kind: "char", major: 0, minor: 0, ...meta, mode: 0 })
      continue
    }
    if (format === "estargz" && comps.length === 1 && type === "reg" && prefetchCount === undefined) {
      if (base === PREFETCH_LANDMARK) prefetchCount = files.length
      if (base === NO_PREFETCH_LANDMARK) prefetchCount = 0
    }
    const parent = dirAt(parentComps, where)
    const existing = parent.children.get(base)
    const put = (n: TocNode) => {
      if (existing?.kind === "file") existing.nlink--
      parent.children.set(base, n)
    }
    switch (type) {
      case "dir":
        if (existing?.kind === "dir") Object.assign(existing, meta)
        else put({ kind: "dir", children: new Map(), opaque: false, ...meta })
        break
      case "reg": {
        const size = int(e, "size", where)
        const file: TocFile = { kind: "file", size, digest: digestOf(e, "digest", where), chunks: [], id: fileIds++, nlink: 1, ...meta }
        if (size > 0 && file.digest === undefined && digestOf(e, "chunkDigest", where) === undefined) {
          return bad(`${where}: ${JSON.stringify(name)} has no digest`)
        }
        put(file)
        files.push(file)
        totalSize += size
        open = { file, name: comps.join("/"), endOffset: int(e, "endOffset", where, blobSize), next: 0, pendingEnd: undefined }
        if (size > 0) addChunk(e, where, true)
        break
      }
      case "symlink": {
        const target = str(e, "linkName", where)
        if (target.length === 0) return bad(`${where}: a symlink without a target`)
        put({ kind: "symlink", target, ...meta })
        break
      }
      case "hardlink": {
        const targetComps = pathOf(str(e, "linkName", where), where)
        const target = lookupPath(targetComps)
        if (target === undefined || target.kind === "dir") return bad(`${where}: a hard link to ${JSON.stringify(e.linkName)}, which is not an earlier file`)
        if (target === existing) break
        put(target)
        if (target.kind === "file") target.nlink++
        break
      }
      case "char":
      case "block":
        put({ kind: type, major: int(e, "devMajor", where, 0xfff), minor: int(e, "devMinor", where, 0xfffff), ...meta })
        break
      case "fifo":
        put({ kind: "fifo", ...meta })
        break
      default:
        return bad(`${where}: unknown entry type ${JSON.stringify(type)}`)
    }
  }
  closeFile("end")
  const tarSplitDigest = format === "zstd:chunked" ? digestOf(doc as Raw, "tarSplitDigest", "the TOC") : undefined
  // a file the list names but a later entry replaced (or hard-linked over) is still fetched: harmless
  const prefetch = files.slice(0, prefetchCount ?? 0).filter((f) => f.size > 0 && f.chunks.length > 0)
  return { format, root, files, totalSize, tarSplitDigest, prefetch }
}

/** The node at a slash-separated path below the root ("" is the root); undefined if none. */
export const nodeAt = (model: TocModel, p: string): TocNode | undefined => {
  let n: TocNode = model.root
  for (const c of p.split("/")) {
    if (c === "") continue
    if (n.kind !== "dir") return undefined
    const next: TocNode | undefined = n.children.get(c)
    if (next === undefined) return undefined
    n = next
  }
  return n
}
