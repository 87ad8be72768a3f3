/**
 * The filesystem side of StorageConf.ts: reads podman's storage.conf candidates as files
 * others made — a regular file only (a FIFO or device named by CONTAINERS_STORAGE_CONF must
 * not hang or flood als), opened without blocking, at most 1 MiB.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import { type ConfReader, type Host, type Resolved, resolveStorage } from "./StorageConf.ts"
import { readRegularFile, refusalText } from "../sys/RegularFile.ts"

/** storage.conf files are a few KiB; anything past this is not one. */
export const MAX_STORAGE_CONF_BYTES = 1 << 20

export const readConfFile: ConfReader["read"] = (file) => {
  const r = readRegularFile(file, MAX_STORAGE_CONF_BYTES)
  if (r.kind === "missing") return { missing: true }
  if (r.kind !== "ok") return { error: refusalText(r) ?? "cannot read it" }
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(r.value) }
  } catch {
    return { error: "not UTF-8 text" }
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
