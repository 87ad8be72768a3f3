/**
 * Read access to the files of a local image, whether they lie in a directory (an OCI layout)
 * or inside a tar (oci-archive, docker-archive): small files read whole with a size limit,
 * blobs streamed or hashed in 1 MiB chunks. Nothing is extracted, nothing held whole.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { sourceError } from "./SourceError.ts"
import { cleanPath, indexTar, resolveMember, type TarMember } from "./TarIndex.ts"

export interface FileTree {
  /** what the user named (directory or archive), for messages */
  readonly location: string
  /** the size of a regular file, undefined when there is none */
  readonly size: (name: string) => number | undefined
  /** a whole small file; throws when it is missing or larger than `limit` */
  readonly read: (name: string, limit: number) => Uint8Array
  /** the first bytes of a file (for sniffing compression) */
  readonly head: (name: string, n: number) => Uint8Array
  /** streams a file from `offset` */
  readonly stream: (name: string, offset?: number) => AsyncIterable<Uint8Array>
  /** hashes a file with positional reads */
  readonly hash: (name: string, algorithm: "sha256" | "sha512") => string
}

export class TreeFileMissing extends Error {
  override readonly name = "TreeFileMissing"
  constructor(readonly file: string) {
    super(`${file} is missing`)
  }
}

export class TreeFileTooLarge extends Error {
  override readonly name = "TreeFileTooLarge"
  constructor(readonly file: string, readonly size: number, readonly limit: number) {
    super(`${file} is ${size} bytes, more than the ${limit} allowed`)
  }
}

const CHUNK = 1 << 20

/** A byte range of a file on disk: the file itself, or a member of an archive. */
interface Extent {
  readonly file: string
  readonly start: number
  readonly size: number
}

const readRange = (e: Extent, from: number, length: number): Uint8Array => {
  const fd = fs.openSync(e.file, "r")
  try {
    const buf = new Uint8Array(length)
    let got = 0
    while (got < length) {
      const n = fs.readSync(fd, buf, got, length - got, e.start + from + got)
      if (n === 0) break
      got += n
    }
    return got === length ? buf : buf.subarray(0, got)
  } finally {
    fs.closeSync(fd)
  }
}

/** Streams a range; failures are SourceErrors, so the pull reports them as the source's, not as a crash. */
async function* streamRange(e: Extent, offset: number): AsyncGenerator<Uint8Array, void, undefined> {
  let handle: fs.promises.FileHandle
  try {
    handle = await fs.promises.open(e.file, "r")
  } catch (err) {
    throw sourceError("Io", e.file, `cannot open: ${(err as Error).message}`)
  }
  try {
    let at = Math.max(0, offset)
    while (at < e.size) {
      const buf = new Uint8Array(Math.min(CHUNK, e.size - at))
      let bytesRead: number
      try {
        bytesRead = (await handle.read(buf, 0, buf.length, e.start + at)).bytesRead
      } catch (err) {
        throw sourceError("Io", e.file, `cannot read at byte ${e.start + at}: ${(err as Error).message}`)
      }
      if (bytesRead === 0) throw sourceError("Io", e.file, `unexpected end of file at byte ${e.start + at} (did it change while being read?)`)
      at += bytesRead
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
    }
  } finally {
    await handle.close()
  }
}

const hashRange = (e: Extent, algorithm: "sha256" | "sha512"): string => {
  const h = createHash(algorithm)
  const fd = fs.openSync(e.file, "r")
  try {
    const buf = new Uint8Array(Math.min(CHUNK, Math.max(1, e.size)))
    let at = 0
    while (at < e.size) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, e.size - at), e.start + at)
      if (n === 0) throw new Error(`${e.file}: unexpected end of file at byte ${e.start + at}`)
      h.update(buf.subarray(0, n))
      at += n
    }
  } finally {
    fs.closeSync(fd)
  }
  return h.digest("hex")
}

const makeTree = (location: string, extent: (name: string) => Extent | undefined): FileTree => {
  const need = (name: string): Extent => {
    const e = extent(name)
    if (e === undefined) throw new TreeFileMissing(`${location}/${cleanPath(name)}`)
    return e
  }
  return {
    location,
    size: (name) => extent(name)?.size,
    read: (name, limit) => {
      const e = need(name)
      if (e.size > limit) throw new TreeFileTooLarge(`${location}/${cleanPath(name)}`, e.size, limit)
      return readRange(e, 0, e.size)
    },
    head: (name, n) => {
      const e = need(name)
      return readRange(e, 0, Math.min(n, e.size))
    },
    stream: (name, offset = 0) => streamRange(need(name), offset),
    hash: (name, algorithm) => hashRange(need(name), algorithm),
  }
}

/** The files below a directory. Names are relative and cleaned: `..` cannot leave it. */
export const directoryTree = (dir: string): FileTree =>
  makeTree(dir, (name) => {
    const file = path.join(dir, cleanPath(name))
    try {
      const st = fs.statSync(file)
      return st.isFile() ? { file, start: 0, size: st.size } : undefined
    } catch {
      return undefined
    }
  })

/** The regular files of a tar archive, indexed once; links are followed inside the archive. */
export const archiveTree = (file: string): FileTree & { readonly members: ReadonlyMap<string, TarMember> } => {
  const members = indexTar(file)
  const tree = makeTree(file, (name) => {
    const m = resolveMember(members, name)
    return m === undefined ? undefined : { file, start: m.offset, size: m.size }
  })
  return { ...tree, members }
}
