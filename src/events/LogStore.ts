/**
 * The bytes under an event log: a file, or a growable buffer for the in-memory log. Both speak
 * the same positional-read / append / truncate interface, so framing, chaining, reading and
 * repair are one piece of code (LogFrames.ts and its readers) whichever holds the bytes.
 *
 * Methods are synchronous and throw LogIoError: they run inside one Effect at the boundary.
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import { logIoError } from "./LogErrors.ts"

export interface ByteStore {
  /** for messages */
  readonly path: string
  size(): number
  /** Reads up to `len` bytes at file position `position` into `into[at…]`; 0 at the end. */
  read(into: Buffer, at: number, len: number, position: number): number
  /** Appends all of `data` at the end. */
  append(data: Buffer): void
  truncate(len: number): void
  sync(): void
  /**
   * `sync` on another thread: `done` gets undefined or the LogIoError. The log's appends sync
   * this way so that the thread extracting layers is not held while the journal commits (on
   * ext4 a log's fdatasync waits for every layer's data written so far).
   */
  syncAsync(done: (error?: unknown) => void): void
  /** Keeps bytes cut off a torn tail somewhere a person can look at them. */
  keepCut(from: number, bytes: Buffer): void
}

export const readAt = (store: ByteStore, position: number, len: number): Buffer => {
  const out = Buffer.allocUnsafe(len)
  let got = 0
  while (got < len) {
    const n = store.read(out, got, len - got, position + got)
    if (n === 0) break
    got += n
  }
  return got === len ? out : out.subarray(0, got)
}

/**
 * An open log file. O_APPEND: every write lands at the current end, whatever others did. A log we
 * may not write (another store's, on a read-only mount) is opened for reading only; appending
 * to it then fails with the original reason.
 */
export class FileStore implements ByteStore {
  private constructor(readonly path: string, private readonly fd: number, private readonly readOnly?: unknown) {}

  static open(path: string): FileStore {
    // The log is ours: never follow a symlink put in its place, never block on a FIFO, and
    // never read a device or socket as if it were events (a refusal here is a LogIoError: exit 6).
    const refuse = (st: fs.Stats | undefined) => {
      if (st === undefined || st.isFile()) return
      const what = st.isSymbolicLink() ? "a symlink" : st.isFIFO() ? "a FIFO" : st.isDirectory() ? "a directory" : st.isSocket() ? "a socket" : "a device"
      throw logIoError("open", path, {
        code: "ENOTREG",
        message: `it is ${what}, not a regular file; als refuses to use it as its log (put the log file itself at this path, or move it away to start a new log)`,
      })
    }
    let before: fs.Stats | undefined
    try {
      before = fs.lstatSync(path)
    } catch {
      before = undefined
    }
    refuse(before)
    const safe = fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK
    const openChecked = (flags: number, readOnly?: unknown) => {
      const fd = fs.openSync(path, flags | safe, 0o600)
      try {
        refuse(fs.fstatSync(fd))
        // made now: owner-only whatever the umask (docs/security.md)
        if (before === undefined && readOnly === undefined) fs.fchmodSync(fd, 0o600)
      } catch (e) {
        fs.closeSync(fd)
        throw e
      }
      return new FileStore(path, fd, readOnly)
    }
    const { O_RDWR, O_APPEND, O_CREAT, O_RDONLY } = fs.constants
    try {
      return openChecked(O_RDWR | O_APPEND | O_CREAT)
    } catch (e) {
      if ((e as { _tag?: string })._tag === "LogIoError") throw e
      const code = (e as NodeJS.ErrnoException)?.code
      if (code === "ELOOP") refuse({ isFile: () => false, isSymbolicLink: () => true } as fs.Stats)
      if (code === "EROFS" || code === "EACCES" || code === "EPERM") {
        try {
          return openChecked(O_RDONLY, e)
        } catch (e2) {
          if ((e2 as { _tag?: string })._tag === "LogIoError") throw e2
          // report the first failure
        }
      }
      throw logIoError("open", path, e)
    }
  }

  close(): void {
    try {
      fs.closeSync(this.fd)
    } catch {
      // closing a descriptor we opened only fails if it is already gone
    }
  }

  size(): number {
    try {
      return fs.fstatSync(this.fd).size
    } catch (e) {
      throw logIoError("stat", this.path, e)
    }
  }

  read(into: Buffer, at: number, len: number, position: number): number {
    try {
      return fs.readSync(this.fd, into, at, len, position)
    } catch (e) {
      throw logIoError("read", this.path, e)
    }
  }

  append(data: Buffer): void {
    if (this.readOnly !== undefined) throw logIoError("append to", this.path, this.readOnly)
    try {
      let done = 0
      while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done)
    } catch (e) {
      throw logIoError("write", this.path, e)
    }
  }

  truncate(len: number): void {
    try {
      fs.ftruncateSync(this.fd, len)
    } catch (e) {
      throw logIoError("truncate", this.path, e)
    }
  }

  sync(): void {
    try {
      fs.fdatasyncSync(this.fd)
    } catch (e) {
      throw logIoError("sync", this.path, e)
    }
  }

  syncAsync(done: (error?: unknown) => void): void {
    fs.fdatasync(this.fd, (e) => done(e ? logIoError("sync", this.path, e) : undefined))
  }

  keepCut(from: number, bytes: Buffer): void {
    const p = `${this.path}.cut-${from}`
    try {
      fs.writeFileSync(p, bytes)
    } catch (e) {
      throw logIoError("keep the cut tail in", p, e)
    }
  }
}

export class MemoryStore implements ByteStore {
  readonly path = "<memory>"
  private buf = Buffer.alloc(64 * 1024)
  private len = 0
  /** Tails cut by repairs, for tests. */
  readonly cuts: Array<{ from: number; bytes: Buffer }> = []

  size(): number {
    return this.len
  }

  read(into: Buffer, at: number, len: number, position: number): number {
    if (position >= this.len) return 0
    const n = Math.min(len, this.len - position)
    this.buf.copy(into, at, position, position + n)
    return n
  }

  append(data: Buffer): void {
    if (this.len + data.length > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + data.length))
      this.buf.copy(next, 0, 0, this.len)
      this.buf = next
    }
    data.copy(this.buf, this.len)
    this.len += data.length
  }

  truncate(len: number): void {
    if (len < this.len) {
      this.buf.fill(0, len, this.len)
      this.len = len
    }
  }

  sync(): void {}

  syncAsync(done: (error?: unknown) => void): void {
    done()
  }

  keepCut(from: number, bytes: Buffer): void {
    this.cuts.push({ from, bytes: Buffer.from(bytes) })
  }

  /** The raw bytes, for tests that damage a log. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len)
  }
}
