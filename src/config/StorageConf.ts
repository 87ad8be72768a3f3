/**
 * podman's storage.conf, read the way podman 4.3.1 (containers/storage 1.43) reads it: which
 * file it uses, and the graph root, run root, driver and additional layer stores that file
 * gives. Pure: the caller hands in the environment and a reader for files; StorageConfFiles.ts
 * does the IO.
 *
 * The rules, from containers/storage 1.43 `types/options.go` and checked against `podman info`
 * on this project's machine (test/integration/doctor/storage-conf-podman.test.ts):
 *
 * - `$CONTAINERS_STORAGE_CONF`, when set, is the one file; if it cannot be read podman refuses
 *   to start.
 * - otherwise, for root and rootless alike, `$XDG_CONFIG_HOME/containers/storage.conf` when
 *   XDG_CONFIG_HOME is set and the file exists, else `/etc/containers/storage.conf`, else
 *   `/usr/share/containers/storage.conf`: the "system" options. Root uses them as they are
 *   (built-in defaults when none of the files exists).
 * - a rootless user's own file (`$XDG_CONFIG_HOME`, else `~/.config`, `/containers/storage.conf`)
 *   replaces the system options when it exists; what it leaves out comes from the rootless
 *   defaults (the system's `rootless_storage_path`, else `$XDG_DATA_HOME/containers/storage`,
 *   else `~/.local/share/containers/storage`).
 * - one file is read, never merged with another; podman 4.3 has no `storage.conf.d` drop-ins.
 * - a file that is read must set `runroot` and `graphroot` (podman: "runroot must be set");
 *   `$UID` and environment variables in them are expanded.
 * - `additionallayerstores` counts only in `[storage.options]`, and only with a driver: podman
 *   prefixes each entry with the driver's name (`overlay.additionallayerstore=…`), so without
 *   `driver` it is an option no driver reads. In `[storage.options.overlay]` podman ignores it
 *   ("Failed to decode the keys").
 */
import * as path from "node:path"
import { parse, TomlError } from "smol-toml"

/** What one storage.conf says, typed. Absent keys stay undefined. */
export interface StorageConf {
  readonly driver?: string | undefined
  readonly graphroot?: string | undefined
  readonly runroot?: string | undefined
  readonly rootlessStoragePath?: string | undefined
  /** `[storage.options] additionallayerstores`, as written */
  readonly additionalLayerStores: ReadonlyArray<string>
  /** keys written where podman 4.3 does not read them, e.g. `storage.options.overlay.additionallayerstores` */
  readonly ignoredKeys: ReadonlyArray<string>
}

export type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly error: string }

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date)

/** Parses a storage.conf's text; a value of the wrong type is refused as podman's decoder refuses it. */
export const parseStorageConf = (text: string): Parsed<StorageConf> => {
  let doc: Record<string, unknown>
  try {
    doc = parse(text)
  } catch (e) {
    if (e instanceof TomlError) return { ok: false, error: `TOML syntax, line ${e.line} column ${e.column}: ${e.message.split("\n")[0]}` }
    return { ok: false, error: `TOML: ${String((e as Error)?.message ?? e)}` }
  }
  const storage = doc.storage
  if (storage === undefined) return { ok: true, value: { additionalLayerStores: [], ignoredKeys: [] } }
  if (!isTable(storage)) return { ok: false, error: "storage must be a table ([storage])" }
  const problems: string[] = []
  const str = (table: Record<string, unknown>, key: string, where: string): string | undefined => {
    const v = table[key]
    if (v === undefined) return undefined
    if (typeof v !== "string") {
      problems.push(`${where}.${key} must be a string`)
      return undefined
    }
    return v
  }
  const strings = (table: Record<string, unknown>, key: string, where: string): ReadonlyArray<string> => {
    const v = table[key]
    if (v === undefined) return []
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
      problems.push(`${where}.${key} must be an array of strings`)
      return []
    }
    return v as ReadonlyArray<string>
  }
  const driver = str(storage, "driver", "storage")
  const graphroot = str(storage, "graphroot", "storage")
  const runroot = str(storage, "runroot", "storage")
  const rootlessStoragePath = str(storage, "rootless_storage_path", "storage")
  let additionalLayerStores: ReadonlyArray<string> = []
  const ignoredKeys: string[] = []
  const options = storage.options
  if (options !== undefined) {
    if (!isTable(options)) problems.push("storage.options must be a table ([storage.options])")
    else {
      additionalLayerStores = strings(options, "additionallayerstores", "storage.options")
      for (const [name, sub] of Object.entries(options)) {
        if (isTable(sub) && "additionallayerstores" in sub) ignoredKeys.push(`storage.options.${name}.additionallayerstores`)
      }
    }
  }
  if (problems.length > 0) return { ok: false, error: problems.join("; ") }
  return { ok: true, value: { driver, graphroot, runroot, rootlessStoragePath, additionalLayerStores, ignoredKeys } }
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

// ---- which file, and what podman ends up with ----------------------------------------

export interface Host {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly uid: number
  readonly home: string
}

/** What the resolver may ask of the filesystem. */
export interface ConfReader {
  /** undefined when there is no such file; an error when it is there but cannot be read */
  readonly read: (file: string) => { readonly text: string } | { readonly missing: true } | { readonly error: string }
  /** `filepath.EvalSymlinks`, or undefined when the path does not resolve */
  readonly realpath: (p: string) => string | undefined
  /** a directory owned by `uid` (podman takes /run/user/UID only then) */
  readonly isOwnedDir: (p: string, uid: number) => boolean
}

export type ConfSource = "CONTAINERS_STORAGE_CONF" | "XDG_CONFIG_HOME" | "system" | "rootless" | "defaults"

export interface StorageSettings {
  /** the file podman reads; undefined when it reads none and uses built-in defaults */
  readonly file: string | undefined
  readonly source: ConfSource
  /** the files looked at, in podman's order, each with whether it exists */
  readonly searched: ReadonlyArray<{ readonly path: string; readonly exists: boolean }>
  readonly driver: string | undefined
  readonly graphroot: string
  readonly runroot: string
  readonly additionalLayerStores: ReadonlyArray<string>
  /** the file's own content, when a file was read */
  readonly conf: StorageConf | undefined
}

export interface StorageConfFailure {
  readonly file: string
  readonly error: string
  readonly searched: ReadonlyArray<{ readonly path: string; readonly exists: boolean }>
}

export type Resolved = { readonly ok: true; readonly settings: StorageSettings } | { readonly ok: false; readonly failure: StorageConfFailure }

export const SYSTEM_FILES = ["/etc/containers/storage.conf", "/usr/share/containers/storage.conf"] as const

/** Go's os.ExpandEnv after containers/storage's `$UID` substitution; unset variables become "". */
export const expandEnvPath = (p: string, uid: number, env: Host["env"]): string =>
  p.replaceAll("$UID", String(uid)).replace(/\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g, (_, braced: string | undefined, bare: string | undefined) => env[(braced ?? bare)!] ?? "")

/** The rootless run root: $XDG_RUNTIME_DIR, else /run/user/UID when it is the user's, else a temp dir (podman's order). */
const rootlessRunRoot = (host: Host, reader: ConfReader): string => {
  const xdg = host.env.XDG_RUNTIME_DIR
  if (xdg) return path.join(xdg, "containers")
  const run = `/run/user/${host.uid}`
  if (reader.isOwnedDir(run, host.uid)) return path.join(run, "containers")
  return path.join(host.env.TMPDIR || "/tmp", `podman-run-${host.uid}`, "containers")
}

const rootlessDataHome = (host: Host): string => host.env.XDG_DATA_HOME || path.join(host.home, ".local", "share")

/** The user's own file for rootless podman (DefaultConfigFile(rootless=true)). */
export const rootlessUserFile = (host: Host): string =>
  path.join(host.env.XDG_CONFIG_HOME || path.join(host.home, ".config"), "containers", "storage.conf")

/**
 * The settings podman 4.3.1 starts with on this host, or why it would refuse to start (then
 * no one can say which graph root it uses).
 */
export const resolveStorage = (host: Host, reader: ConfReader): Resolved => {
  const searched: Array<{ path: string; exists: boolean }> = []
  const load = (file: string): { conf: StorageConf } | { missing: true } | { failure: StorageConfFailure } => {
    const r = reader.read(file)
    if (!searched.some((s) => s.path === file)) searched.push({ path: file, exists: !("missing" in r) })
    if ("missing" in r) return { missing: true }
    if ("error" in r) return { failure: { file, error: r.error, searched } }
    const parsed = parseStorageConf(r.text)
    return parsed.ok ? { conf: parsed.value } : { failure: { file, error: parsed.error, searched } }
  }
  const fail = (failure: StorageConfFailure): Resolved => ({ ok: false, failure })
  const expand = (p: string) => {
    const e = expandEnvPath(p, host.uid, host.env)
    return reader.realpath(e) ?? path.normalize(e)
  }
  const finish = (file: string | undefined, source: ConfSource, conf: StorageConf | undefined, v: { driver: string | undefined; graphroot: string; runroot: string; stores: ReadonlyArray<string> }): Resolved => {
    if (file !== undefined && v.runroot === "") return fail({ file, error: "runroot must be set (podman refuses to start)", searched })
    if (file !== undefined && v.graphroot === "") return fail({ file, error: "graphroot must be set (podman refuses to start)", searched })
    const driver = host.env.STORAGE_DRIVER || v.driver
    return {
      ok: true,
      settings: {
        file,
        source,
        searched,
        driver: driver === "overlay2" ? "overlay" : driver,
        graphroot: expand(v.graphroot),
        runroot: expand(v.runroot),
        additionalLayerStores: v.stores,
        conf,
      },
    }
  }
  const fromConf = (c: StorageConf) => ({ driver: c.driver, graphroot: c.graphroot ?? "", runroot: c.runroot ?? "", stores: c.additionalLayerStores })

  // the system options (containers/storage's loadDefaultStoreOptions)
  let system: { file: string; source: ConfSource; conf: StorageConf } | undefined
  const envFile = host.env.CONTAINERS_STORAGE_CONF
  if (envFile !== undefined) {
    const r = load(envFile)
    if ("failure" in r) return fail(r.failure)
    if ("missing" in r) return fail({ file: envFile, error: "CONTAINERS_STORAGE_CONF names a file that does not exist (podman refuses to start)", searched })
    system = { file: envFile, source: "CONTAINERS_STORAGE_CONF", conf: r.conf }
  } else {
    const candidates: Array<[string, ConfSource]> = [
      ...(host.env.XDG_CONFIG_HOME !== undefined ? [[path.join(host.env.XDG_CONFIG_HOME, "containers", "storage.conf"), "XDG_CONFIG_HOME"] as [string, ConfSource]] : []),
      ...SYSTEM_FILES.map((f): [string, ConfSource] => [f, "system"]),
    ]
    for (const [file, source] of candidates) {
      const r = load(file)
      if ("failure" in r) return fail(r.failure)
      if ("conf" in r) {
        system = { file, source, conf: r.conf }
        break
      }
    }
  }

  if (host.uid === 0) {
    if (system === undefined) {
      return finish(undefined, "defaults", undefined, { driver: undefined, graphroot: "/var/lib/containers/storage", runroot: "/run/containers/storage", stores: [] })
    }
    return finish(system.file, system.source, system.conf, fromConf(system.conf))
  }

  // rootless: defaults built from the system options, replaced by the user's own file when it exists
  const sys = system?.conf
  const rootlessGraph = sys?.rootlessStoragePath ? sys.rootlessStoragePath : path.join(rootlessDataHome(host), "containers", "storage")
  const sysDriver = sys?.driver === "overlay2" ? "overlay" : sys?.driver
  const rootlessDriver = sysDriver && ["btrfs", "overlay", "vfs"].includes(sysDriver) ? sysDriver : "vfs"
  const defaults = { driver: rootlessDriver, graphroot: rootlessGraph, runroot: rootlessRunRoot(host, reader), stores: [] as ReadonlyArray<string> }
  const fromUserFile = (file: string, source: ConfSource, c: StorageConf) =>
    finish(file, source, c, {
      driver: c.driver,
      graphroot: c.graphroot || c.rootlessStoragePath || defaults.graphroot,
      runroot: c.runroot || defaults.runroot,
      stores: c.additionalLayerStores,
    })
  // CONTAINERS_STORAGE_CONF is then the user's file too, with the rootless defaults beneath
  if (envFile !== undefined && system !== undefined) return fromUserFile(envFile, "CONTAINERS_STORAGE_CONF", system.conf)
  const userFile = rootlessUserFile(host)
  const r = load(userFile)
  if ("failure" in r) return fail(r.failure)
  if ("missing" in r) return finish(undefined, "defaults", undefined, defaults)
  return fromUserFile(userFile, "rootless", r.conf)
}

// ---- what als init prints ------------------------------------------------------------

/** Where to write storage.conf for this user: the system file for root, the user's own otherwise. */
export const storageConfTarget = (host: Host): string => (host.uid === 0 ? SYSTEM_FILES[0] : rootlessUserFile(host))

const tomlString = (s: string) => JSON.stringify(s)

/**
 * A whole storage.conf podman 4.3.1 accepts (it refuses one without runroot and graphroot, and
 * reads additional layer stores only with a driver), keeping what podman uses now (`current`)
 * and adding the store in front of any stores already listed.
 */
export const storageConfSnippet = (root: string, current: StorageSettings | undefined, host: Host): string => {
  const graphroot = current?.graphroot ?? (host.uid === 0 ? "/var/lib/containers/storage" : path.join(rootlessDataHome(host), "containers", "storage"))
  const runroot = current?.runroot ?? (host.uid === 0 ? "/run/containers/storage" : `/run/user/${host.uid}/containers`)
  const entry = `${root}:ref`
  const others = (current?.additionalLayerStores ?? []).filter((s) => parseLayerStoreEntry(s).path !== root)
  return [
    "[storage]",
    'driver = "overlay"',
    `runroot = ${tomlString(runroot)}`,
    `graphroot = ${tomlString(graphroot)}`,
    "",
    "[storage.options]",
    `additionallayerstores = [${[entry, ...others].map(tomlString).join(", ")}]`,
  ].join("\n")
}
