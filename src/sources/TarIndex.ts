/**
 * The members of a tar file, found by walking its headers once with positional reads: an
 * archive of gigabytes is indexed by reading a few kilobytes, and a member is later read as
 * a byte range of the archive, never extracted. ustar, pax (path, linkpath, size) and GNU
 * long names are understood; anything else is skipped by its size.
 */
import * as fs from "node:fs"
import { parsePaxRecords, paxUint, tarNumber, tarOctal } from "../extract/TarFields.ts"

export interface TarMember {
  readonly name: string
  readonly type: "file" | "dir" | "symlink" | "hardlink" | "other"
  /** where the member's data starts in the archive */
  readonly offset: number
  readonly size: number
  readonly linkname?: string | undefined
}

export class TarIndexError extends Error {
  override readonly name = "TarIndexError"
  constructor(readonly offset: number, readonly problem: string) {
    super(`at byte ${offset}: ${problem}`)
  }
}

const BLOCK = 512
const decoder = new TextDecoder()

const cString = (b: Uint8Array, start: number, len: number): string => {
  let end = start
  while (end < start + len && b[end] !== 0) end++
  return decoder.decode(b.subarray(start, end))
}

const checksumOk = (h: Uint8Array): boolean => {
  const stored = tarOctal(h, 148, 8)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!
  return sum === stored
}

/** Types with no data, whatever their size field says (Go reads none for them either). */
const headerOnly = new Set(["1", "2", "3", "4", "5", "6"])

/** `./a//b/` → `a/b`: members are looked up by the clean path. */
export const cleanPath = (p: string): string => {
  const out: Array<string> = []
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") out.pop()
    else out.push(part)
  }
  return out.join("/")
}

/** A PAX header's records (TarFields.ts) as text; malformed ones are refused, as Go refuses them. */
const parsePax = (pos: number, b: Uint8Array): Record<string, string> => {
  const records = new Map<string, Uint8Array>()
  const problem = parsePaxRecords(b, records, (key) => decoder.decode(key))
  if (problem !== undefined) throw new TarIndexError(pos, `${problem}: damaged archive`)
  const out: Record<string, string> = {}
  for (const [k, v] of records) out[k] = decoder.decode(v)
  return out
}

const readExactly = (fd: number, length: number, position: number): Uint8Array => {
  const buf = new Uint8Array(length)
  let got = 0
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got)
    if (n === 0) break
    got += n
  }
  return got === length ? buf : buf.subarray(0, got)
}

/** Indexes every member of the tar at `file` (its last entry wins for a repeated name). */
export const indexTar = (file: string): Map<string, TarMember> => {
  const fd = fs.openSync(file, "r")
  try {
    const size = fs.fstatSync(fd).size
    const members = new Map<string, TarMember>()
    let pos = 0
    let longName: string | undefined
    let longLink: string | undefined
    let pax: Record<string, string> = {}
    while (pos + BLOCK <= size) {
      const h = readExactly(fd, BLOCK, pos)
      if (h.every((x) => x === 0)) return members
      if (!checksumOk(h)) throw new TarIndexError(pos, "bad header checksum: not a tar file, or damaged")
      const typeflag = String.fromCharCode(h[156]!)
      // octal or base-256 only, as Go reads it: parseInt would read "-1" or "1e5" as a number
      const sizeField = tarNumber(h, 124, 12)
      if (typeof sizeField !== "number") throw new TarIndexError(pos, "invalid size field in a tar header: damaged archive")
      let dataSize = headerOnly.has(typeflag) ? 0 : sizeField
      const dataAt = pos + BLOCK
      const next = () => dataAt + Math.ceil(dataSize / BLOCK) * BLOCK
      if (typeflag === "x" || typeflag === "L" || typeflag === "K") {
        if (dataSize > 1 << 20) throw new TarIndexError(pos, `a ${dataSize}-byte extended header`)
        const data = readExactly(fd, dataSize, dataAt)
        if (typeflag === "x") pax = parsePax(pos, data)
        else if (typeflag === "L") longName = cString(data, 0, data.length)
        else longLink = cString(data, 0, data.length)
        pos = next()
        continue
      }
      if (typeflag === "g") {
        pos = next()
        continue
      }
      const ustar = cString(h, 257, 6).startsWith("ustar")
      const prefix = ustar ? cString(h, 345, 155) : ""
      const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${cString(h, 0, 100)}` : cString(h, 0, 100))
      const linkname = pax.linkpath ?? longLink ?? cString(h, 157, 100)
      if (pax.size !== undefined) {
        const paxSize = paxUint(pax.size)
        if (paxSize === undefined) {
          throw new TarIndexError(pos, `invalid PAX size ${JSON.stringify(pax.size.slice(0, 40))}: damaged archive`)
        }
        if (!headerOnly.has(typeflag)) dataSize = paxSize
      }
      const type: TarMember["type"] = typeflag === "0" || typeflag === "\0" || typeflag === "7"
        ? "file"
        : typeflag === "5"
        ? "dir"
        : typeflag === "2"
        ? "symlink"
        : typeflag === "1"
        ? "hardlink"
        : "other"
      if (dataAt + (type === "file" ? dataSize : 0) > size) {
        throw new TarIndexError(pos, `member ${JSON.stringify(rawName)} runs past the end of the file (truncated archive?)`)
      }
      const name = cleanPath(rawName)
      if (name !== "") {
        members.set(name, {
          name,
          type,
          offset: dataAt,
          size: type === "file" ? dataSize : 0,
          ...(type === "symlink" || type === "hardlink" ? { linkname } : {}),
        })
      }
      longName = undefined
      longLink = undefined
      pax = {}
      pos = next()
    }
    if (members.size === 0 && size > 0) throw new TarIndexError(0, "no tar header found: not a tar archive")
    // no end-of-archive blocks: accepted if every member was whole (some writers omit them)
    return members
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * The regular file a name leads to, following symlinks (relative to the link's directory, as
 * `podman save` writes `ID/layer.tar -> ../DIGEST.tar`) and hardlinks (archive paths).
 */
export const resolveMember = (members: ReadonlyMap<string, TarMember>, name: string): TarMember | undefined => {
  let current = cleanPath(name)
  for (let hops = 0; hops < 16; hops++) {
    const m = members.get(current)
    if (m === undefined) return undefined
    if (m.type === "file") return m
    if (m.type === "symlink" && m.linkname !== undefined) {
      const dir = current.includes("/") ? current.slice(0, current.lastIndexOf("/")) : ""
      current = cleanPath(m.linkname.startsWith("/") ? m.linkname : `${dir}/${m.linkname}`)
    } else if (m.type === "hardlink" && m.linkname !== undefined) {
      current = cleanPath(m.linkname)
    } else {
      return undefined
    }
  }
  return undefined
}
