// An eStargz converter for tests: a plain layer tar in, an eStargz blob out (the format
// stargz-snapshotter documents): the same tar, gzipped member by member so that each chunk of
// each regular file's data is one gzip member starting at a known offset, followed by a member
// holding the tar entry `stargz.index.json` (the TOC, listing every entry with its chunks'
// offsets and digests) and the tar's end, then a 51-byte footer member whose extra field says
// where the TOC's member starts ("%016x" + "STARGZ"). The tar's bytes are kept as they are
// (headers copied, not re-encoded), so the layer's DiffID is the digest of the tar with the
// TOC entry inserted before its end.
//
// A prefetch list (`prefetch`: paths) is written as stargz-snapshotter's converter does: those
// files (with their parent directories) moved to the front of the tar, then a one-byte root file
// `.prefetch.landmark`; an empty list puts `.no.prefetch.landmark` first instead.

import { createHash } from "node:crypto"
import { gzipSync } from "node:zlib"
import type { BuiltLayer } from "./registry.ts"

export const ESTARGZ_TOC_ANNOTATION = "containerd.io/snapshot/stargz/toc.digest"
export const ESTARGZ_UNCOMPRESSED_SIZE = "io.containers.estargz.uncompressed-size"

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`

interface TarItem {
  /** the header blocks (pax/GNU extension headers included) */
  readonly header: Uint8Array
  readonly data: Uint8Array
  readonly name: string
  readonly type: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly mtime: number
  readonly linkName: string
  readonly devMajor: number
  readonly devMinor: number
  readonly xattrs: Record<string, string>
}

const text = (b: Uint8Array, at: number, len: number) => {
  const s = b.subarray(at, at + len)
  const end = s.indexOf(0)
  return Buffer.from(end < 0 ? s : s.subarray(0, end)).toString("utf8")
}
const octal = (b: Uint8Array, at: number, len: number) => {
  const s = text(b, at, len).trim()
  return s === "" ? 0 : parseInt(s, 8)
}
const padded = (n: number) => Math.ceil(n / 512) * 512

/** Splits a tar into entries (ustar, pax `x`/`g`, GNU `L`/`K`), keeping the raw header bytes. */
const readTar = (tar: Uint8Array): TarItem[] => {
  const items: TarItem[] = []
  let at = 0
  let start = 0
  let pax: Record<string, string> = {}
  let longName: string | undefined
  let longLink: string | undefined
  while (at + 512 <= tar.length) {
    const h = tar.subarray(at, at + 512)
    if (h.every((x) => x === 0)) break
    const size = octal(h, 124, 12)
    const flag = String.fromCharCode(h[156]!) || "0"
    const data = tar.subarray(at + 512, at + 512 + size)
    at += 512 + padded(size)
    if (flag === "x" || flag === "g") {
      const body = Buffer.from(data).toString("utf8")
      let i = 0
      while (i < body.length) {
        const sp = body.indexOf(" ", i)
        const len = parseInt(body.slice(i, sp), 10)
        const rec = body.slice(sp + 1, i + len - 1)
        const eq = rec.indexOf("=")
        if (flag === "x") pax[rec.slice(0, eq)] = rec.slice(eq + 1)
        i += len
      }
      continue
    }
    if (flag === "L") {
      longName = text(data, 0, data.length)
      continue
    }
    if (flag === "K") {
      longLink = text(data, 0, data.length)
      continue
    }
    const prefix = text(h, 345, 155)
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100))
    const linkName = pax.linkpath ?? longLink ?? text(h, 157, 100)
    const type = flag === "0" || flag === "\0" || flag === "7" ? "reg"
      : flag === "5" ? "dir"
      : flag === "2" ? "symlink"
      : flag === "1" ? "hardlink"
      : flag === "3" ? "char"
      : flag === "4" ? "block"
      : flag === "6" ? "fifo"
      : "unknown"
    const xattrs: Record<string, string> = {}
    for (const [k, v] of Object.entries(pax)) {
      if (k.startsWith("SCHILY.xattr.")) xattrs[k.slice("SCHILY.xattr.".length)] = Buffer.from(v, "utf8").toString("base64")
    }
    items.push({
      header: tar.subarray(start, at - padded(size)),
      data,
      name,
      type,
      mode: octal(h, 100, 8),
      uid: octal(h, 108, 8),
      gid: octal(h, 116, 8),
      mtime: pax.mtime !== undefined ? Math.floor(Number(pax.mtime)) : octal(h, 136, 12),
      linkName,
      devMajor: octal(h, 329, 8),
      devMinor: octal(h, 337, 8),
      xattrs,
    })
    start = at
    pax = {}
    longName = undefined
    longLink = undefined
  }
  return items
}

/** A ustar header for a regular file `name` of `size` bytes (the TOC entry). */
const fileHeader = (name: string, size: number, mtime: number): Uint8Array => {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, "utf8")
  h.write("0000644\0", 100)
  h.write("0000000\0", 108)
  h.write("0000000\0", 116)
  h.write(size.toString(8).padStart(11, "0") + "\0", 124)
  h.write(mtime.toString(8).padStart(11, "0") + "\0", 136)
  h.write("        ", 148)
  h.write("0", 156)
  h.write("ustar\0", 257)
  h.write("00", 263)
  let sum = 0
  for (const x of h) sum += x
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148)
  return h
}

/** The 51-byte footer: an empty gzip member whose extra field names the TOC's offset. */
const footer = (tocOffset: number): Uint8Array => {
  const sub = Buffer.from(`${tocOffset.toString(16).padStart(16, "0")}STARGZ`, "latin1") // 22 bytes
  const extra = Buffer.concat([Buffer.from("SG", "latin1"), Buffer.from([sub.length, 0]), sub])
  const out = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff]), // FEXTRA
    Buffer.from([extra.length, 0]),
    extra,
    Buffer.from([1, 0, 0, 0xff, 0xff]), // one final stored block of 0 bytes
    Buffer.alloc(8), // crc32 and size of nothing
  ])
  if (out.length !== 51) throw new Error(`footer is ${out.length} bytes`)
  return out
}

export interface EstargzLayer extends BuiltLayer {
  readonly tocDigest: string
  readonly toc: unknown
  /** the uncompressed tar the blob holds (what als pull extracts) */
  readonly tar: Uint8Array
}

const PREFETCH_LANDMARK = ".prefetch.landmark"
const NO_PREFETCH_LANDMARK = ".no.prefetch.landmark"

/** A root file whose one byte (0x0f, as stargz-snapshotter writes it) marks the prefetch list's end. */
const landmark = (name: string): TarItem => ({
  header: fileHeader(name, 1, 0),
  data: new Uint8Array([0x0f]),
  name,
  type: "reg",
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtime: 0,
  linkName: "",
  devMajor: 0,
  devMinor: 0,
  xattrs: {},
})

const clean = (name: string) => name.replace(/^\.?\/+/, "").replace(/\/+$/, "")

/** The tar's entries with `prefetch` (and their parent dirs) first, then the landmark. */
const withPrefetch = (items: TarItem[], prefetch: ReadonlyArray<string> | undefined): TarItem[] => {
  if (prefetch === undefined) return items
  if (prefetch.length === 0) return [landmark(NO_PREFETCH_LANDMARK), ...items]
  const wanted = new Set(prefetch.map(clean))
  const parents = new Set<string>()
  for (const p of wanted) {
    const parts = p.split("/")
    for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join("/"))
  }
  const first = items.filter((it) => parents.has(clean(it.name)) || (wanted.has(clean(it.name)) && it.type !== "dir"))
  const rest = items.filter((it) => !first.includes(it))
  return [...first, landmark(PREFETCH_LANDMARK), ...rest]
}

/**
 * Converts a plain tar into eStargz with chunks of at most `chunkSize` bytes; `prefetch` names
 * the files to mark as the prefetch list (see above).
 */
export const toEstargz = (tar: Uint8Array, chunkSize = 64 * 1024, prefetch?: ReadonlyArray<string>): EstargzLayer => {
  const members: Uint8Array[] = []
  const plain: Uint8Array[] = []
  let offset = 0
  const emit = (bytes: Uint8Array) => {
    const at = offset
    const z = gzipSync(bytes)
    members.push(z)
    plain.push(bytes)
    offset += z.length
    return at
  }
  const entries: Array<Record<string, unknown>> = []
  let pending: Uint8Array = new Uint8Array(0) // the previous file's padding, sent with the next header
  for (const it of withPrefetch(readTar(tar), prefetch)) {
    const headerAt = emit(Buffer.concat([pending, it.header]))
    pending = new Uint8Array(0)
    const name = it.type === "dir" && !it.name.endsWith("/") ? `${it.name}/` : it.name
    const base: Record<string, unknown> = {
      name,
      type: it.type,
      modtime: new Date(it.mtime * 1000).toISOString().replace(/\.000Z$/, "Z"),
      mode: it.mode,
      uid: it.uid,
      gid: it.gid,
      ...(it.linkName && (it.type === "symlink" || it.type === "hardlink") ? { linkName: it.linkName } : {}),
      ...(it.type === "char" || it.type === "block" ? { devMajor: it.devMajor, devMinor: it.devMinor } : {}),
      ...(Object.keys(it.xattrs).length > 0 ? { xattrs: it.xattrs } : {}),
    }
    if (it.type !== "reg" || it.data.length === 0) {
      entries.push({ ...base, ...(it.type === "reg" ? { size: 0 } : {}), offset: headerAt })
      continue
    }
    const digest = sha256(it.data)
    for (let c = 0; c < it.data.length; c += chunkSize) {
      const piece = it.data.subarray(c, Math.min(it.data.length, c + chunkSize))
      const at = emit(piece)
      const chunk = { offset: at, chunkOffset: c, chunkSize: piece.length, chunkDigest: sha256(piece) }
      entries.push(c === 0 ? { ...base, size: it.data.length, digest, ...chunk } : { name, type: "chunk", ...chunk })
    }
    pending = new Uint8Array(padded(it.data.length) - it.data.length)
  }
  const tocJson = Buffer.from(JSON.stringify({ version: 1, entries }), "utf8")
  // the TOC's member starts with its own tar header: the last file's padding goes before it
  if (pending.length > 0) emit(pending)
  const tocOffset = emit(Buffer.concat([
    fileHeader("stargz.index.json", tocJson.length, 0),
    tocJson,
    new Uint8Array(padded(tocJson.length) - tocJson.length),
    new Uint8Array(1024),
  ]))
  members.push(footer(tocOffset))
  const blob = new Uint8Array(Buffer.concat(members))
  const fullTar = new Uint8Array(Buffer.concat(plain))
  return {
    tar: fullTar,
    blob,
    diffId: sha256(fullTar),
    digest: sha256(blob),
    size: blob.length,
    tocDigest: sha256(tocJson),
    toc: JSON.parse(tocJson.toString("utf8")),
  }
}
