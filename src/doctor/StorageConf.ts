/**
 * The parts of containers-storage.conf(5) that decide whether podman reads an als store:
 * which file podman reads, its driver, and its `additionallayerstores` entries. Pure: the
 * caller reads the files.
 */
import * as path from "node:path"

export interface StorageConf {
  /** `[storage] driver`, when set */
  readonly driver?: string | undefined
  readonly graphroot?: string | undefined
  readonly runroot?: string | undefined
  /** `[storage.options] additionallayerstores`, as written */
  readonly additionalLayerStores: ReadonlyArray<string>
}

export interface LayerStoreEntry {
  readonly path: string
  readonly ref: boolean
  /** options other than `ref` (containers/storage ignores them) */
  readonly unknown: ReadonlyArray<string>
}

/** `path[:ref]`: containers/storage splits an entry on ':' and reads `ref` as the only option. */
export const parseLayerStoreEntry = (entry: string): LayerStoreEntry => {
  const [p, ...opts] = entry.split(":")
  return { path: p ?? "", ref: opts.includes("ref"), unknown: opts.filter((o) => o !== "ref") }
}

/** A whole storage.conf podman 4.3.1 accepts (it refuses one without driver, runroot and graphroot). */
export const storageConfTemplate = (root: string, uid: number, home: string): string =>
  [
    "[storage]",
    'driver = "overlay"',
    `runroot = "${uid === 0 ? "/run/containers/storage" : `/run/user/${uid}/containers`}"`,
    `graphroot = "${uid === 0 ? "/var/lib/containers/storage" : path.join(home, ".local/share/containers/storage")}"`,
    "",
    "[storage.options]",
    `additionallayerstores = ["${root}:ref"]`,
  ].join("\n")

/**
 * The files podman would read, best first; the first that exists is the one (no merging,
 * as containers/storage does): $CONTAINERS_STORAGE_CONF alone when set; for rootless users
 * their own file, then the system's; /etc before /usr/share.
 */
export const storageConfCandidates = (
  env: Readonly<Record<string, string | undefined>>,
  uid: number,
  home: string,
): ReadonlyArray<string> => {
  if (env.CONTAINERS_STORAGE_CONF) return [env.CONTAINERS_STORAGE_CONF]
  const system = ["/etc/containers/storage.conf", "/usr/share/containers/storage.conf"]
  if (uid === 0) return system
  const config = env.XDG_CONFIG_HOME || path.join(home, ".config")
  return [path.join(config, "containers", "storage.conf"), ...system]
}

// ---- a small TOML reader: tables, strings, arrays of strings, comments ------------------

const unquote = (s: string): string | undefined => {
  const t = s.trim()
  if (t.length >= 2 && t[0] === "'" && t.endsWith("'")) return t.slice(1, -1)
  if (t.length >= 2 && t[0] === '"' && t.endsWith('"')) {
    try {
      return JSON.parse(t) as string
    } catch {
      return t.slice(1, -1)
    }
  }
  return undefined
}

/** Drops a `#` comment that is not inside a string. */
const stripComment = (line: string): string => {
  let quote: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote) {
      if (c === "\\" && quote === '"') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === "#") return line.slice(0, i)
  }
  return line
}

const arrayItems = (body: string): Array<string> => {
  const out: Array<string> = []
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'/g
  for (let m = re.exec(body); m !== null; m = re.exec(body)) out.push(m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : m[2]!)
  return out
}

export const parseStorageConf = (text: string): StorageConf => {
  let table = ""
  let driver: string | undefined
  let graphroot: string | undefined
  let runroot: string | undefined
  let stores: Array<string> = []
  const lines = text.split("\n")
  for (let i = 0; i < lines.length; i++) {
    const line = stripComment(lines[i]!).trim()
    if (line === "") continue
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line)
    if (header) {
      table = header[1]!.replace(/\s+/g, "")
      continue
    }
    const eq = line.indexOf("=")
    if (eq === -1) continue
    const key = line.slice(0, eq).trim().replace(/^"|"$/g, "")
    let value = line.slice(eq + 1).trim()
    if (value.startsWith("[")) {
      // arrays may span lines
      while (!value.includes("]") && i + 1 < lines.length) value += ` ${stripComment(lines[++i]!).trim()}`
    }
    if (table === "storage" && key === "driver") driver = unquote(value)
    if (table === "storage" && key === "graphroot") graphroot = unquote(value)
    if (table === "storage" && key === "runroot") runroot = unquote(value)
    if (table === "storage.options" && key === "additionallayerstores") stores = arrayItems(value)
  }
  return { driver, graphroot, runroot, additionalLayerStores: stores }
}
