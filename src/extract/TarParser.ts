/**
 * A streaming, synchronous tar reader that reads what Go's archive/tar reads (containers/storage
 * extracts layers with it): V7, USTAR, PAX (`x`), GNU long names (`L`/`K`), STAR prefixes,
 * base-256 numbers. It is push-based: `push(chunk)` parses what it can and calls the sink, data
 * arrives as subarrays of the pushed chunks (no copies), and nothing is buffered beyond one
 * header block or one PAX/long-name record.
 *
 * Why not tar-stream's `extract()`: it decodes PAX values as UTF-8 text, which corrupts binary
 * xattrs such as `security.capability`; it applies global PAX headers to every entry (Go does
 * not); it reads past the end-of-archive marker (two zero blocks) and fails on trailing bytes;
 * and it builds a stream object per entry, which costs more than the file write for small files.
 *
 * Like Go, it ignores the size field of header-only entries (links, devices, fifos, dirs), skips
 * global PAX headers, and stops at the end-of-archive marker; bytes after it are ignored here
 * (the caller still hashes them: they are part of the DiffID).
 */
import { parsePaxRecords, paxUint, tarNumber, tarOctal } from "./TarFields.ts"

export type EntryKind = "file" | "link" | "symlink" | "char" | "block" | "dir" | "fifo" | "unsupported"

export interface TarEntry {
  /** the name as written (PAX `path` / GNU long name applied), not cleaned */
  readonly name: string
  readonly linkname: string
  readonly kind: EntryKind
  /** the raw type flag character, for messages */
  readonly typeflag: string
  /** permission bits with setuid/setgid/sticky (mode & 0o7777) */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  /** content bytes that follow (always 0 for header-only kinds) */
  readonly size: number
  /** seconds since the epoch; fractional when PAX says so */
  readonly mtime: number
  readonly atime: number | undefined
  readonly devmajor: number
  readonly devminor: number
  /** `SCHILY.xattr.*` PAX records, values as raw bytes */
  readonly xattrs: ReadonlyArray<readonly [string, Uint8Array]> | undefined
  /** why `kind` is "unsupported" */
  readonly unsupported?: string
}

export interface TarSink {
  entry(e: TarEntry): void
  data(chunk: Uint8Array): void
  end(): void
}

/** The archive is malformed (bad checksum, bad number, truncated...). */
export class TarFormatError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} (at byte ${offset} of the uncompressed tar)`)
  }
}

/** A name that is not UTF-8: JS strings cannot carry it to the filesystem byte for byte. */
export class TarNameError extends Error {
  constructor(readonly raw: Uint8Array, readonly offset: number) {
    super(`an entry name is not valid UTF-8 (at byte ${offset} of the uncompressed tar)`)
  }
}

const BLOCK = 512
/** Go's limit for PAX and GNU long-name records. */
const MAX_SPECIAL = 1 << 20
/** The largest uid/gid chown(2) sets: 0xffffffff is (uid_t)-1, "leave unchanged". */
const MAX_ID = 0xfffffffe
/** mknod(2) takes 32-bit major and minor numbers. */
const MAX_DEV = 0xffffffff
/** Go parses a PAX time's seconds as an int64 and refuses the archive beyond it. */
const MAX_PAX_SECONDS = 2 ** 63

const enum State { Header, Data, Pad, Special, Skip, Ended }
const enum Special { None, Pax, LongName, LongLink }

const utf8 = new TextDecoder("utf-8", { fatal: true })

const isZeroBlock = (b: Uint8Array, o: number): boolean => {
  for (let i = o; i < o + BLOCK; i++) if (b[i] !== 0) return false
  return true
}

/** Go's checksum: unsigned or signed sum with the checksum field read as spaces. One pass with
 * no per-byte branch (it runs once per entry): the signed sum is the unsigned one minus 256 for
 * every byte ≥ 128. */
const checksumOk = (b: Uint8Array, o: number, stored: number): boolean => {
  let u = 0
  let high = 0
  for (let i = o; i < o + BLOCK; i++) {
    const c = b[i]
    u += c
    high += c >> 7
  }
  // the checksum field itself counts as 8 spaces
  for (let i = o + 148; i < o + 156; i++) {
    const c = b[i]
    u -= c
    high -= c >> 7
  }
  u += 8 * 32
  return stored === u || stored === u - 256 * high
}

const fieldEnd = (b: Uint8Array, o: number, len: number): number => {
  const end = o + len
  for (let i = o; i < end; i++) if (b[i] === 0) return i
  return end
}

export class TarParser {
  private state = State.Header
  private readonly hdr = new Uint8Array(BLOCK)
  private hdrFill = 0
  private remaining = 0
  private pad = 0
  /** bytes of the uncompressed tar consumed so far, for error messages */
  private offset = 0
  private sawZero = false
  private special = Special.None
  private specialBuf: Uint8Array = new Uint8Array(0)
  private specialFill = 0
  private pax: Map<string, Uint8Array> | undefined
  private longName: Uint8Array | undefined
  private longLink: Uint8Array | undefined

  constructor(private readonly sink: TarSink) {}

  /** True once the end-of-archive marker was read; later bytes are ignored. */
  get ended(): boolean {
    return this.state === State.Ended
  }

  push(chunk: Uint8Array): void {
    let i = 0
    const n = chunk.length
    while (i < n) {
      switch (this.state) {
        case State.Ended:
          this.offset += n - i
          return
        case State.Header: {
          if (this.hdrFill === 0 && n - i >= BLOCK) {
            this.header(chunk, i, this.offset)
            i += BLOCK
            this.offset += BLOCK
          } else {
            const take = Math.min(BLOCK - this.hdrFill, n - i)
            this.hdr.set(chunk.subarray(i, i + take), this.hdrFill)
            this.hdrFill += take
            i += take
            this.offset += take
            if (this.hdrFill === BLOCK) {
              this.hdrFill = 0
              // errors name the header's first byte, however the chunks fell
              this.header(this.hdr, 0, this.offset - BLOCK)
            }
          }
          break
        }
        case State.Data: {
          const take = Math.min(this.remaining, n - i)
          const piece = chunk.subarray(i, i + take)
          i += take
          this.offset += take
          this.remaining -= take
          this.sink.data(piece)
          if (this.remaining === 0) {
            this.state = State.Pad
            this.sink.end()
          }
          break
        }
        case State.Special: {
          const take = Math.min(this.remaining, n - i)
          this.specialBuf.set(chunk.subarray(i, i + take), this.specialFill)
          this.specialFill += take
          i += take
          this.offset += take
          this.remaining -= take
          if (this.remaining === 0) {
            this.state = State.Pad
            this.finishSpecial()
          }
          break
        }
        case State.Skip: {
          const take = Math.min(this.remaining, n - i)
          i += take
          this.offset += take
          this.remaining -= take
          if (this.remaining === 0) this.state = State.Pad
          break
        }
        case State.Pad: {
          const take = Math.min(this.pad, n - i)
          i += take
          this.offset += take
          this.pad -= take
          if (this.pad === 0) this.state = State.Header
          break
        }
      }
      if (this.state === State.Pad && this.pad === 0) this.state = State.Header
    }
  }

  /** Call at the end of the stream: throws if the archive stops inside a header or an entry. */
  finish(): void {
    if (this.state === State.Ended) return
    const clean = this.state === State.Header && this.hdrFill === 0
    if (!clean || this.pax !== undefined || this.longName !== undefined || this.longLink !== undefined) {
      throw new TarFormatError("the tar archive is truncated", this.offset)
    }
    // no end-of-archive marker, or only one zero block: Go accepts both, so do we
  }

  private fail(message: string, at = this.offset): never {
    throw new TarFormatError(message, at)
  }

  private header(b: Uint8Array, o: number, at: number): void {
    if (isZeroBlock(b, o)) {
      if (this.sawZero) {
        this.state = State.Ended
        return
      }
      this.sawZero = true
      return
    }
    if (this.sawZero) this.fail("a zero block followed by a non-zero block: not a valid end of archive", at)

    const stored = this.octal(b, o + 148, 8, at, "checksum")
    if (!checksumOk(b, o, stored)) {
      this.fail("invalid tar header checksum: this is not a tar archive, or it is corrupted", at)
    }
    const isUstar = b[o + 257] === 0x75 && b[o + 258] === 0x73 && b[o + 259] === 0x74 && b[o + 260] === 0x61 &&
      b[o + 261] === 0x72
    const ustar = isUstar && b[o + 262] === 0 && b[o + 263] === 0x30 && b[o + 264] === 0x30
    const star = ustar && b[o + 508] === 0x74 && b[o + 509] === 0x61 && b[o + 510] === 0x72 && b[o + 511] === 0
    let flag = b[o + 156]
    const size = this.numeric(b, o + 124, 12, at, "size")

    // special headers carry data for the next real entry
    switch (flag) {
      case 0x78 /* x */:
        return this.beginSpecial(Special.Pax, size, at)
      case 0x4c /* L */:
        return this.beginSpecial(Special.LongName, size, at)
      case 0x4b /* K */:
        return this.beginSpecial(Special.LongLink, size, at)
      case 0x67 /* g */:
        // Go hands global headers to the caller, and containers/storage ignores them
        return this.beginSkip(size)
    }

    const pax = this.pax
    const rawName = this.longName ?? b.subarray(o, fieldEnd(b, o, 100))
    let name = this.text(rawName, at)
    if (this.longName === undefined && ustar) {
      const prefixLen = star ? 131 : 155
      const prefixEnd = fieldEnd(b, o + 345, prefixLen)
      if (prefixEnd > o + 345) name = `${this.text(b.subarray(o + 345, prefixEnd), at)}/${name}`
    }
    let linkname = this.text(this.longLink ?? b.subarray(o + 157, fieldEnd(b, o + 157, 100)), at)
    let uid = this.numeric(b, o + 108, 8, at, "uid")
    let gid = this.numeric(b, o + 116, 8, at, "gid")
    let mtime = this.numeric(b, o + 136, 12, at, "mtime")
    let atime: number | undefined
    let dataSize = size
    let xattrs: Array<readonly [string, Uint8Array]> | undefined
    let unsupported: string | undefined
    if (pax !== undefined) {
      for (const [k, v] of pax) {
        switch (k) {
          case "path":
            name = this.text(v, at)
            break
          case "linkpath":
            linkname = this.text(v, at)
            break
          case "size":
            dataSize = this.paxInt(v, at, k)
            break
          case "uid":
            uid = this.paxInt(v, at, k)
            break
          case "gid":
            gid = this.paxInt(v, at, k)
            break
          case "mtime":
            mtime = this.paxTime(v, at, k)
            break
          case "atime":
            atime = this.paxTime(v, at, k)
            break
          default:
            if (k.startsWith("SCHILY.xattr.")) {
              ;(xattrs ??= []).push([k.slice(13), v])
            } else if (k.startsWith("GNU.sparse.")) {
              unsupported = "GNU sparse files are not supported"
            }
        }
      }
    }
    this.pax = undefined
    this.longName = undefined
    this.longLink = undefined

    // old archives mark directories with a trailing slash on a '\0' type
    if (flag === 0 && name.endsWith("/")) flag = 0x35
    let kind: EntryKind
    switch (flag) {
      case 0:
      case 0x30:
        kind = "file"
        break
      case 0x31:
        kind = "link"
        break
      case 0x32:
        kind = "symlink"
        break
      case 0x33:
        kind = "char"
        break
      case 0x34:
        kind = "block"
        break
      case 0x35:
        kind = "dir"
        break
      case 0x36:
        kind = "fifo"
        break
      default:
        kind = "unsupported"
        unsupported ??= flag === 0x53
          ? "GNU sparse files are not supported"
          : `tar entry type ${JSON.stringify(String.fromCharCode(flag))} is not supported`
    }
    const isDevice = kind === "char" || kind === "block"
    const devmajor = isDevice ? this.numeric(b, o + 329, 8, at, "devmajor") : 0
    const devminor = isDevice ? this.numeric(b, o + 337, 8, at, "devminor") : 0
    // chown(2) takes 32-bit ids, (uid_t)-1 meaning "leave as is", and mknod(2) 32-bit device
    // numbers: a larger value would be cut to another id or device, never refused by the kernel
    if (uid > MAX_ID || gid > MAX_ID) unsupported ??= `its owner ${uid}:${gid} is out of range (ids go up to ${MAX_ID})`
    if (devmajor > MAX_DEV || devminor > MAX_DEV) {
      unsupported ??= `its device number ${devmajor}:${devminor} is out of range (up to ${MAX_DEV} each)`
    }
    if (unsupported !== undefined) kind = "unsupported"
    // Go reads no data for header-only types, whatever their size field says
    if (kind !== "file" && kind !== "unsupported") dataSize = 0

    const entry: TarEntry = {
      name,
      linkname,
      kind,
      typeflag: flag === 0 ? "\\0" : String.fromCharCode(flag),
      mode: this.numeric(b, o + 100, 8, at, "mode") & 0o7777,
      uid,
      gid,
      size: dataSize,
      mtime,
      atime,
      devmajor,
      devminor,
      xattrs,
    }
    // set after the literal: a spread in it makes every entry take the slow object path
    if (unsupported !== undefined) (entry as { unsupported?: string }).unsupported = unsupported
    this.sink.entry(entry)
    if (dataSize > 0) {
      this.state = State.Data
      this.remaining = dataSize
      this.pad = (BLOCK - (dataSize % BLOCK)) % BLOCK
    } else {
      this.sink.end()
    }
  }

  private beginSpecial(kind: Special, size: number, at: number): void {
    if (size > MAX_SPECIAL) this.fail(`a PAX or long-name header of ${size} bytes exceeds ${MAX_SPECIAL}`, at)
    this.special = kind
    this.specialBuf = new Uint8Array(size)
    this.specialFill = 0
    this.remaining = size
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK
    this.state = size > 0 ? State.Special : State.Pad
    if (size === 0) this.finishSpecial()
  }

  private beginSkip(size: number): void {
    this.remaining = size
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK
    this.state = size > 0 ? State.Skip : State.Pad
  }

  private finishSpecial(): void {
    const buf = this.specialBuf
    this.specialBuf = new Uint8Array(0)
    switch (this.special) {
      case Special.Pax:
        this.pax = this.parsePax(buf)
        break
      case Special.LongName:
        this.longName = buf.subarray(0, fieldEnd(buf, 0, buf.length))
        break
      case Special.LongLink:
        this.longLink = buf.subarray(0, fieldEnd(buf, 0, buf.length))
        break
    }
    this.special = Special.None
  }

  /**
   * PAX records (TarFields.ts). A second `x` header before the entry replaces the first, as in
   * Go's archive/tar: merging them would let a layer pile up any number of 1 MiB headers in
   * memory before its entry comes (a gzip-compressed header of 1 MiB is ~1 KiB).
   */
  private parsePax(buf: Uint8Array): Map<string, Uint8Array> {
    const at = this.offset
    const out = new Map<string, Uint8Array>()
    const problem = parsePaxRecords(buf, out, (key) => this.text(key, at))
    if (problem !== undefined) this.fail(problem, at)
    return out
  }

  private text(b: Uint8Array, at: number): string {
    // ASCII fast path: most names are ASCII
    let ascii = true
    for (let i = 0; i < b.length; i++) {
      if (b[i] >= 0x80) {
        ascii = false
        break
      }
    }
    if (ascii) return b.length < 64 ? String.fromCharCode.apply(null, b as unknown as Array<number>) : utf8.decode(b)
    try {
      return utf8.decode(b)
    } catch {
      throw new TarNameError(b.slice(), at)
    }
  }

  private octal(b: Uint8Array, o: number, len: number, at: number, what: string): number {
    const v = tarOctal(b, o, len)
    return typeof v === "number" ? v : this.fail(`${v} in the tar header's ${what} field`, at)
  }

  /** Octal, or base-256 (TarFields.ts). */
  private numeric(b: Uint8Array, o: number, len: number, at: number, what: string): number {
    const v = tarNumber(b, o, len)
    return typeof v === "number" ? v : this.fail(`${v} in the tar header's ${what} field`, at)
  }

  private paxInt(v: Uint8Array, at: number, key: string): number {
    const s = this.text(v, at)
    return paxUint(s) ?? this.fail(`invalid PAX ${key} ${JSON.stringify(s)}`, at)
  }

  private paxTime(v: Uint8Array, at: number, key: string): number {
    const s = this.text(v, at)
    const t = Number(s)
    if (!/^-?[0-9]+(\.[0-9]*)?$/.test(s) || !(Math.abs(t) < MAX_PAX_SECONDS)) this.fail(`invalid PAX ${key} ${JSON.stringify(s)}`, at)
    return t
  }
}
