/**
 * syncfs(2) on a second thread, so the caller's thread keeps working while the disk flushes.
 *
 * Why: a pull commits each layer with one syncfs (durable before visible), and the call waits
 * for the disk: 0.5-3 s for a layer of many small files. Called on the main thread it stopped
 * every other layer's download and extraction for that long (about a sixth of a pull of the
 * 50,000-file image, issue 16). The semantics are the same: the promise settles only after
 * syncfs returned, so nothing becomes visible before it is synced.
 *
 * Under Bun a Worker (a Blob of plain JavaScript, no second entry point in the compiled binary)
 * calls syncfs through bun:ffi; requests run one after another on it. Elsewhere (Deno), or if
 * the worker cannot start, the synchronous call is made on the caller's thread as before.
 */
import { errnoName } from "./errno.ts"
import { SysError, type SyscallsApi } from "./SyscallsApi.ts"

const workerSource = `
const { dlopen, FFIType, read } = await import("bun:ffi")
const fs = process.getBuiltinModule("node:fs")
const { symbols: c } = dlopen("libc.so.6", {
  syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
})
self.onmessage = (m) => {
  const { id, path } = m.data
  let fd
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | 0o2000000)
  } catch (e) {
    self.postMessage({ id, call: "open", errno: (e && -e.errno) || 5 })
    return
  }
  const rc = c.syncfs(fd)
  const errno = rc === 0 ? 0 : read.i32(c.__errno_location(), 0)
  try { fs.closeSync(fd) } catch {}
  self.postMessage({ id, call: "syncfs", errno })
}
self.postMessage({ ready: true })
`

interface Pending {
  readonly sys: Pick<SyscallsApi, "syncfs">
  readonly path: string
  readonly resolve: () => void
  readonly reject: (e: unknown) => void
}

let worker: Worker | undefined
/** posted before the worker said it is ready (its onmessage is set after an await) */
let queued: Array<{ id: number; path: string }> | undefined = []
let broken = false
let nextId = 0
const pending = new Map<number, Pending>()

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

const start = (): Worker | undefined => {
  if (worker !== undefined || broken) return worker
  if (!isBun || typeof Worker === "undefined") {
    broken = true
    return undefined
  }
  try {
    const url = URL.createObjectURL(new Blob([workerSource], { type: "application/javascript" }))
    const w = new Worker(url, { type: "module" })
    w.onmessage = (m: MessageEvent) => {
      const d = m.data as { id?: number; call?: string; errno?: number; ready?: boolean }
      if (d.ready) {
        for (const q of queued ?? []) w.postMessage(q)
        queued = undefined
        return
      }
      if (d.id === undefined) return
      const p = pending.get(d.id)
      if (p === undefined) return
      pending.delete(d.id)
      if (pending.size === 0) (w as Worker & { unref?: () => void }).unref?.()
      if (d.errno === 0) p.resolve()
      else p.reject(new SysError(d.call ?? "syncfs", p.path, d.errno ?? 5, errnoName(d.errno ?? 5)))
    }
    w.onerror = (e: ErrorEvent) => {
      // the thread died (bun:ffi refused in a worker, say): what it held, and every later
      // sync, runs inline on the caller's thread as before
      e.preventDefault?.()
      broken = true
      worker = undefined
      for (const [id, p] of pending) {
        pending.delete(id)
        inline(p.sys, p.path).then(p.resolve, p.reject)
      }
    }
    ;(w as Worker & { unref?: () => void }).unref?.()
    worker = w
    return w
  } catch {
    broken = true
    return undefined
  }
}

/** Starts the thread ahead of the first sync (its start, ~10-20 ms, then overlaps the work
 * that precedes the sync); idempotent, and a no-op where syncs run inline. */
export const warmSyncfsThread = (): void => {
  start()
}

/** True once the sync thread runs (tests: proves syncs leave the caller's thread). */
export const syncfsThreadRunning = (): boolean => worker !== undefined

const inline = (sys: Pick<SyscallsApi, "syncfs">, path: string): Promise<void> => {
  try {
    sys.syncfs(path)
    return Promise.resolve()
  } catch (e) {
    return Promise.reject(e)
  }
}

/** syncfs(2) on the filesystem holding `path`, off the calling thread when the runtime allows. */
export const syncfsOffThread = (sys: Pick<SyscallsApi, "syncfs">, path: string): Promise<void> => {
  const w = start()
  if (w === undefined) return inline(sys, path)
  return new Promise<void>((resolve, reject) => {
    const id = nextId++
    pending.set(id, { sys, path, resolve, reject })
    // a pending sync keeps the process alive until it is answered
    ;(w as Worker & { ref?: () => void }).ref?.()
    if (queued !== undefined) queued.push({ id, path })
    else w.postMessage({ id, path })
  })
}
