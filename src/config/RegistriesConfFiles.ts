/**
 * Which registries.conf files podman 4.3.1 reads, read in its order: the main file
 * (`CONTAINERS_REGISTRIES_CONF`, else `~/.config/containers/registries.conf` when it exists,
 * else /etc/containers/registries.conf), then every `*.conf` drop-in of the registries.conf.d
 * directories in name order, and the short-name aliases podman recorded after a prompt
 * (short-name-aliases.conf), which win over the files' aliases.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { readRegularTextOr } from "../sys/RegularFile.ts"
import {
  emptyPartial,
  finishConf,
  mergeConf,
  type PartialConf,
  parseRegistriesConf,
  type RegistriesConf,
  RegistriesConfError,
} from "./RegistriesConf.ts"

export interface ConfEnv {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly uid: number
  readonly home: string
  /** "/" normally; tests point it at a fake root */
  readonly etc?: string | undefined
}

export interface ConfPaths {
  readonly configPath: string
  /** true when the user named the file: then it must exist */
  readonly explicit: boolean
  readonly dropInDirs: ReadonlyArray<string>
  readonly aliasCache: string
}

export const registriesConfPaths = (e: ConfEnv, exists: (p: string) => boolean = fs.existsSync): ConfPaths => {
  const etc = e.etc ?? "/etc"
  const userFile = path.join(e.home, ".config/containers/registries.conf")
  const userDir = path.join(e.home, ".config/containers/registries.conf.d")
  const systemDir = path.join(etc, "containers/registries.conf.d")
  const cacheHome = e.env.XDG_CACHE_HOME || path.join(e.home, ".cache")
  const aliasCache = e.uid === 0
    ? "/var/cache/containers/short-name-aliases.conf"
    : path.join(cacheHome, "containers/short-name-aliases.conf")
  const named = e.env.CONTAINERS_REGISTRIES_CONF || e.env.REGISTRIES_CONFIG_PATH
  if (named) return { configPath: named, explicit: true, dropInDirs: [systemDir, userDir], aliasCache }
  // a per-user registries.conf replaces the system's, drop-ins included
  if (exists(userFile)) return { configPath: userFile, explicit: false, dropInDirs: [userDir], aliasCache }
  return { configPath: path.join(etc, "containers/registries.conf"), explicit: false, dropInDirs: [systemDir, userDir], aliasCache }
}

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException)?.code === "ENOENT" || (e as NodeJS.ErrnoException)?.code === "ENOTDIR"

/** registries.conf files are a few KiB; anything past this is not one. */
const MAX_REGISTRIES_CONF_BYTES = 1 << 20

/** A regular file only (a FIFO or /dev/zero named by CONTAINERS_REGISTRIES_CONF must not hang als). */
const readText = (file: string): string | undefined =>
  readRegularTextOr(file, MAX_REGISTRIES_CONF_BYTES, (reason) => new RegistriesConfError({ file, reason: `cannot read it: ${reason}` }))

const dropIns = (dir: string): string[] => {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      // only regular files (or symlinks, checked when read) are drop-ins
      .filter((d) => (d.isFile() || d.isSymbolicLink()) && d.name.endsWith(".conf"))
      .map((d) => path.join(dir, d.name))
      .sort()
  } catch (e) {
    if (isMissing(e)) return []
    throw new RegistriesConfError({ file: dir, reason: `reading registries.conf.d: ${(e as Error).message}` })
  }
}

/** Reads and merges the files; throws RegistriesConfError. */
export const readRegistriesConf = (paths: ConfPaths): RegistriesConf => {
  const main = readText(paths.configPath)
  if (main === undefined && paths.explicit) {
    throw new RegistriesConfError({ file: paths.configPath, reason: "no such file (set by CONTAINERS_REGISTRIES_CONF)" })
  }
  let conf: PartialConf = main === undefined ? emptyPartial : parseRegistriesConf(main, paths.configPath, false)
  let found = main !== undefined
  for (const file of paths.dropInDirs.flatMap(dropIns)) {
    const text = readText(file)
    if (text === undefined) continue
    conf = mergeConf(conf, parseRegistriesConf(text, file, true))
    found = true
  }
  const cached = readText(paths.aliasCache)
  if (cached !== undefined) {
    const recorded = parseRegistriesConf(cached, paths.aliasCache, true).aliases
    conf = { ...conf, aliases: new Map([...conf.aliases, ...recorded]) }
  }
  const description = [paths.configPath, ...paths.dropInDirs].join(", ")
  return finishConf(conf, description, found)
}

export const hostConfEnv = (): ConfEnv => ({
  env: process.env,
  uid: process.getuid?.() ?? 0,
  home: process.env.HOME || os.homedir(),
})

/** This host's registries configuration, as podman would read it now. */
export const loadRegistriesConf = (e: ConfEnv = hostConfEnv()): Effect.Effect<RegistriesConf, RegistriesConfError> =>
  Effect.try({
    try: () => readRegistriesConf(registriesConfPaths(e)),
    catch: (err) =>
      err instanceof RegistriesConfError ? err : new RegistriesConfError({ file: "registries.conf", reason: String(err) }),
  })
