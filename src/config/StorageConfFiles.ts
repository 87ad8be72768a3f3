/**
 * The filesystem side of StorageConf.ts: reads podman's storage.conf candidates as files
 * others made — a regular file only (a FIFO or device named by CONTAINERS_STORAGE_CONF must
 * not hang or flood als), opened without blocking, at most 1 MiB.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import { type ConfReader, type Host, type Resolved, resolveStorage } from "./StorageConf.ts"

/** storage.conf files are a few KiB; anything past this is not one. */
export const MAX_STORAGE_CONF_BYTES = 1 << 20

const describe = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  return err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? e)
}

export const readConfFile: ConfReader["read"] = (file) => {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === "ENOENT" || code === "ENOTDIR") return { missing: true }
    return { error: describe(e) }
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) return { error: "not a regular file" }
    if (st.size > MAX_STORAGE_CONF_BYTES) return { error: `${st.size} bytes; a storage.conf is at most ${MAX_STORAGE_CONF_BYTES}` }
    const buf = Buffer.alloc(st.size)
    let n = 0
    while (n < st.size) {
      const got = fs.readSync(fd, buf, n, st.size - n, n)
      if (got === 0) break
      n += got
    }
    try {
      return { text: new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(0, n)) }
    } catch {
      return { error: "not UTF-8 text" }
    }
  } catch (e) {
    return { error: describe(e) }
  } finally {
    fs.closeSync(fd)
  }
}

export const hostReader: ConfReader = {
  read: readConfFile,
  realpath: (p) => {
    try {
      return fs.realpathSync(p)
    } catch {
      return undefined
    }
  },
  isOwnedDir: (p, uid) => {
    const st = fs.statSync(p, { throwIfNoEntry: false })
    return st !== undefined && st.isDirectory() && st.uid === uid
  },
}

export const thisHost = (): Host => ({ env: process.env, uid: process.getuid?.() ?? 0, home: os.homedir() })

/** podman's storage settings on this host, as podman 4.3.1 would start with them. */
export const hostStorage = (host: Host = thisHost(), reader: ConfReader = hostReader): Resolved => resolveStorage(host, reader)
