/**
 * One FUSE session over /dev/fuse, by hand: no libfuse, no native addon, so it runs in the
 * compiled binary. Opens /dev/fuse, mounts it with mount(2), answers INIT, then hands every
 * request to a handler and writes each answer exactly once.
 *
 * Reading. A read of /dev/fuse blocks until the kernel has a request, and returns exactly one.
 * The reads happen on a Worker thread (a Blob of plain JavaScript, so the compiled binary needs
 * no second entry point) that loops on readSync and posts each message to this thread. Why a
 * worker and not async `fs.read`: Bun (and libuv) run async reads on a small shared thread
 * pool; a read parked on /dev/fuse holds a pool thread until a request comes, so keeping
 * several outstanding would starve the pull's own file I/O on a 2-core machine (pool of 4),
 * and one outstanding read would serialise requests behind the pool's queue. One reader thread
 * that never waits on an answer is enough to keep "several reads outstanding" in effect: the
 * handler runs asynchronously on this thread, so a LOOKUP held for minutes by a pull never
 * delays the next request, which the worker has already read. Measured on this machine (Bun
 * 1.4, kernel 6.18): a stat through the mount of an entry answered from memory takes 0.10-0.12
 * ms median round trip (LOOKUP + GETATTR), the worker's postMessage hop included
 * (test/unit/fuse/Session.test.ts).
 *
 * Bun only: Deno's workers do not share the main thread's descriptors through `node:fs`
 * (the reader gets EBADF), so under Deno the session ends right after mounting.
 *
 * One rule follows: the serving thread must never make a synchronous call into its own mount
 * (it would wait for an answer only it can give); `als serve` touches only the store.
 *
 * Errors never leave the loop: a request the decoder cannot read is answered EINVAL, an
 * unknown opcode ENOSYS, a handler that throws or rejects EIO. A write the kernel refuses with
 * ENOENT (the requester was interrupted and gave up) is dropped; ENODEV means unmounted.
 */
import * as fs from "node:fs"
import { Errno, expectsReply, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, InitFlag, InitFlag2, type Request, decodeRequest } from "./Protocol.ts"
import { replyEmpty, replyError, replyInit } from "./Replies.ts"
import { makePassthrough, MAX_STACK_DEPTH, type PassthroughState, type PassthroughStats } from "./Passthrough.ts"
import { loadMount, MNT_DETACH, MS_NODEV, MS_NOSUID, type MountApi } from "../sys/Mount.ts"
import { loadSyscalls } from "../sys/Syscalls.ts"

export interface FuseHandler {
  /**
   * The answer to one request, or undefined for requests that take none (FORGET). Called for
   * every request but INIT and DESTROY, which the session answers itself.
   */
  readonly handle: (req: Request) => Promise<Uint8Array | undefined> | Uint8Array | undefined
}

export interface SessionOptions {
  readonly mountpoint: string
  readonly handler: FuseHandler
  /** the mount's subtype: `als` → type `fuse.als` */
  readonly name?: string
  /** the mount's source in the mount table (default: the name); als serve names its store */
  readonly source?: string
  /** called once when the session ends (unmounted by us or by someone else) */
  readonly onClose?: (why: string) => void
  /** called for a request the loop could not answer normally (logging only) */
  readonly onError?: (req: Request, error: unknown) => void
  /**
   * FUSE passthrough for OPENs a handler answers with a BackedOpen (default true; false
   * answers them with their fallback, reads through us).
   */
  readonly passthrough?: boolean
  /** something worth a line in the log, e.g. passthrough turned off (default: stderr) */
  readonly onNotice?: (message: string) => void
}

export interface Session {
  readonly mountpoint: string
  /** the protocol minor version agreed with the kernel */
  readonly minor: () => number
  /** resolves once the kernel closed the session (after unmount) */
  readonly closed: Promise<string>
  /** detaches the mount; requests still held are answered by the kernel with ENOTCONN */
  readonly unmount: () => void
  /** whether OPENs may be answered in passthrough mode now, and opens answered each way */
  readonly passthrough: () => PassthroughState & { readonly stats: PassthroughStats }
}

const MAX_WRITE = 128 * 1024
const READ_BUFFER = MAX_WRITE + 4096

// The reader thread: one blocking read per request, each message posted with its bytes moved.
const readerSource = `
self.onmessage = (m) => {
  const { fd, size } = m.data
  const fs = process.getBuiltinModule("node:fs")
  const buf = Buffer.allocUnsafe(size)
  for (;;) {
    let n
    try {
      n = fs.readSync(fd, buf, 0, size, null)
    } catch (e) {
      // EINTR: a signal; ENOENT: the request was interrupted before we read it
      if (e && (e.code === "EINTR" || e.code === "ENOENT" || e.code === "EAGAIN")) continue
      self.postMessage({ end: (e && e.code) || String(e) })
      return
    }
    if (n === 0) {
      self.postMessage({ end: "EOF" })
      return
    }
    const out = new Uint8Array(n)
    out.set(buf.subarray(0, n))
    self.postMessage(out, [out.buffer])
  }
}
`

let readerUrl: string | undefined

const errCode = (e: unknown) => (e as NodeJS.ErrnoException)?.code

/**
 * Clears a mount left by a killed process (its mount point answers ENOTCONN). A live mount
 * (another `als serve`) is refused: two servers on one mount point would hide each other.
 */
export const clearStaleMount = (mountpoint: string, mount: MountApi): "none" | "cleared" => {
  try {
    fs.statSync(mountpoint)
  } catch (e) {
    if (errCode(e) === "ENOTCONN" || errCode(e) === "ECONNABORTED") {
      mount.umount2(mountpoint, MNT_DETACH)
      return "cleared"
    }
    throw e
  }
  if (isFuseMount(mountpoint)) throw new Error(`${mountpoint} is already a mounted FUSE filesystem (another als serve?)`)
  return "none"
}

/** True when /proc/self/mountinfo shows a fuse mount at `mountpoint`. */
export const isFuseMount = (mountpoint: string): boolean => {
  let info: string
  try {
    info = fs.readFileSync("/proc/self/mountinfo", "utf8")
  } catch {
    return false
  }
  const target = fs.realpathSync(mountpoint)
  return info.split("\n").some((line) => {
    const f = line.split(" ")
    const dash = f.indexOf("-")
    return dash > 0 && unescapeMountinfo(f[4] ?? "") === target && /^fuse(\.|$)/.test(f[dash + 1] ?? "")
  })
}

const unescapeMountinfo = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

export const startSession = async (opts: SessionOptions): Promise<Session> => {
  const name = opts.name ?? "als"
  const mountApi = await loadMount()
  clearStaleMount(opts.mountpoint, mountApi)
  const fd = fs.openSync("/dev/fuse", fs.constants.O_RDWR)
  const st = fs.statSync(opts.mountpoint)
  try {
    mountApi.mount(
      opts.source ?? name,
      opts.mountpoint,
      `fuse.${name}`,
      MS_NOSUID | MS_NODEV,
      `fd=${fd},rootmode=${(st.mode & 0o170000).toString(8)},user_id=0,group_id=0,allow_other,default_permissions`,
    )
  } catch (e) {
    fs.closeSync(fd)
    throw e
  }

  let minor = FUSE_KERNEL_MINOR_VERSION
  let open = true
  let resolveClosed!: (why: string) => void
  const closed = new Promise<string>((r) => (resolveClosed = r))
  // the kernel sends INIT as the mount is made; the session is returned once it is answered
  let initDone!: () => void
  const initialized = new Promise<void>((r) => (initDone = r))
  let worker: Worker | undefined
  const sys = await loadSyscalls() // binds nothing until passthrough registers its first backing file
  const notice = opts.onNotice ?? ((m: string) => process.stderr.write(`als: ${m}\n`))
  const passthrough = makePassthrough(fd, () => sys, notice)

  const close = (why: string) => {
    if (!open) return
    open = false
    worker?.terminate()
    try {
      fs.closeSync(fd)
    } catch {
      // already closed
    }
    opts.onClose?.(why)
    resolveClosed(why)
    initDone()
  }

  /** true once the kernel took the answer */
  const write = (buf: Uint8Array): boolean => {
    if (!open) return false
    try {
      fs.writeSync(fd, buf)
      return true
    } catch (e) {
      const code = errCode(e)
      if (code === "ENOENT") return false // the requester gave up (interrupted) before our answer
      if (code === "ENODEV") return (close("unmounted"), false)
      throw e
    }
  }

  const answer = (req: Request, reply: Uint8Array | undefined) => {
    if (reply === undefined || !expectsReply(req)) return
    if (req.op !== "Open") return void write(reply)
    // an open the kernel never sees ends without a RELEASE: forget what it held
    const { bytes, undo } = passthrough.open(req, reply)
    if (!write(bytes)) undo()
  }

  const dispatch = (req: Request) => {
    switch (req.op) {
      case "Init": {
        if (req.major !== FUSE_KERNEL_VERSION) return write(replyError(req.h.unique, Errno.EPROTO))
        minor = Math.min(req.minor, FUSE_KERNEL_MINOR_VERSION)
        const wanted = InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.PARALLEL_DIROPS | InitFlag.MAX_PAGES |
          InitFlag.CACHE_SYMLINKS | InitFlag.NO_OPENDIR_SUPPORT | InitFlag.INIT_EXT
        const offered = (req.flags & InitFlag.INIT_EXT) !== 0 && (req.flags2 & InitFlag2.PASSTHROUGH) !== 0 && minor >= 40
        const ask = offered && opts.passthrough !== false
        passthrough.negotiated(ask, offered ? "turned off for this session" : "not offered by this kernel (needs 6.9+)", opts.passthrough === false)
        initDone()
        return void write(replyInit(req.h.unique, {
          minor,
          maxReadahead: req.maxReadahead,
          flags: req.flags & wanted,
          maxBackground: 64,
          maxWrite: MAX_WRITE,
          maxPages: MAX_WRITE / 4096,
          flags2: ask ? InitFlag2.PASSTHROUGH : 0,
          maxStackDepth: ask ? MAX_STACK_DEPTH : 0,
        }))
      }
      case "Destroy":
        write(replyEmpty(req.h.unique))
        return close("destroyed")
      case "Malformed":
        opts.onError?.(req, new Error(req.reason))
        return void write(replyError(req.h.unique, Errno.EINVAL))
      case "Unsupported":
        return void write(replyError(req.h.unique, Errno.ENOSYS))
      default: {
        if (req.op === "Release") passthrough.release(req)
        let out: Promise<Uint8Array | undefined> | Uint8Array | undefined
        try {
          out = opts.handler.handle(req)
        } catch (e) {
          opts.onError?.(req, e)
          return answer(req, replyError(req.h.unique, Errno.EIO))
        }
        if (out instanceof Promise) {
          out.then(
            (r) => answer(req, r),
            (e) => {
              opts.onError?.(req, e)
              answer(req, replyError(req.h.unique, Errno.EIO))
            },
          ).catch((e) => opts.onError?.(req, e))
        } else answer(req, out)
      }
    }
  }

  readerUrl ??= URL.createObjectURL(new Blob([readerSource], { type: "application/javascript" }))
  worker = new Worker(readerUrl, { type: "module" })
  worker.onmessage = (m: MessageEvent) => {
    const data = m.data as Uint8Array | { end: string }
    if (data instanceof Uint8Array) {
      try {
        dispatch(decodeRequest(data, minor))
      } catch (e) {
        // a write that failed for another reason than the two above: the session is unusable
        close(`write failed: ${(e as Error).message}`)
      }
    } else close(data.end === "ENODEV" ? "unmounted" : `read failed: ${data.end}`)
  }
  worker.postMessage({ fd, size: READ_BUFFER })
  await initialized

  return {
    mountpoint: opts.mountpoint,
    minor: () => minor,
    closed,
    passthrough: () => ({ ...passthrough.state(), stats: { ...passthrough.stats } }),
    unmount: () => {
      try {
        mountApi.umount2(opts.mountpoint, MNT_DETACH)
      } catch (e) {
        // EINVAL: not mounted any more (someone else unmounted it)
        if ((e as { code?: string }).code !== "EINVAL") throw e
      }
      close("unmounted")
    },
  }
}
