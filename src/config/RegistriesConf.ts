/**
 * registries.conf (containers-registries.conf(5)) as podman 4.3.1 reads it: one file parsed
 * into typed values (v2, or v1 converted to v2), drop-ins merged over it, and the lookups the
 * pull needs (the `[[registry]]` whose prefix matches a name best). Pure: the files are read
 * in RegistriesConfFiles.ts.
 */
import { Schema } from "effect"
import { parse, TomlError } from "smol-toml"
import { parseReference, type Reference } from "../domain/Reference.ts"

export class RegistriesConfError extends Schema.TaggedError<RegistriesConfError>()("RegistriesConfError", {
  /** the file at fault, or a description of where the configuration comes from */
  file: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `registries configuration ${this.file}: ${this.reason}`
  }
}

export type PullFromMirror = "all" | "digest-only" | "tag-only"
export type ShortNameMode = "disabled" | "permissive" | "enforcing"

export interface Endpoint {
  /** host[:port][/namespace…], no scheme; "" only for a `*.example.com` prefix */
  readonly location: string
  readonly insecure: boolean
  /** mirrors only: which references may be pulled from this mirror (unset: all) */
  readonly pullFromMirror?: PullFromMirror | undefined
}

export interface RegistryEntry extends Endpoint {
  /** what names it applies to: `example.com/ns`, or `*.example.com` for every subdomain */
  readonly prefix: string
  readonly mirrors: ReadonlyArray<Endpoint>
  readonly blocked: boolean
  readonly mirrorByDigestOnly: boolean
}

export interface Alias {
  /** the normalized repository the short name stands for; undefined: reset by a later file */
  readonly name: string | undefined
  /** the file that set it (podman names it in messages) */
  readonly origin: string
}

/** One file, or several merged: a field a file leaves out is undefined. */
export interface PartialConf {
  readonly registries: ReadonlyArray<RegistryEntry>
  readonly unqualifiedSearchRegistries?: ReadonlyArray<string> | undefined
  readonly searchOrigin?: string | undefined
  readonly shortNameMode?: ShortNameMode | undefined
  readonly aliases: ReadonlyMap<string, Alias>
}

export interface RegistriesConf {
  /** sorted by prefix, one entry per prefix */
  readonly registries: ReadonlyArray<RegistryEntry>
  readonly unqualifiedSearchRegistries: ReadonlyArray<string>
  /** the file that set unqualified-search-registries ("" when none did) */
  readonly searchOrigin: string
  readonly shortNameMode: ShortNameMode
  readonly aliases: ReadonlyMap<string, Alias>
  /** where the configuration was read from, for messages */
  readonly description: string
  /** false when no registries.conf exists at all (podman says so for short names) */
  readonly found: boolean
}

const fail = (file: string, reason: string): never => {
  throw new RegistriesConfError({ file, reason })
}

type Table = Record<string, unknown>
const isTable = (v: unknown): v is Table => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date)

const optString = (file: string, t: Table, key: string, where: string): string | undefined => {
  const v = t[key]
  if (v === undefined) return undefined
  if (typeof v !== "string") return fail(file, `${where}${key} must be a string, not ${JSON.stringify(v)}`)
  return v
}
const optBool = (file: string, t: Table, key: string, where: string): boolean => {
  const v = t[key]
  if (v === undefined) return false
  if (typeof v !== "boolean") return fail(file, `${where}${key} must be true or false, not ${JSON.stringify(v)}`)
  return v
}
const optStrings = (file: string, t: Table, key: string, where: string): ReadonlyArray<string> | undefined => {
  const v = t[key]
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) return fail(file, `${where}${key} must be an array of strings`)
  return v as string[]
}
const optTables = (file: string, t: Table, key: string, where: string): ReadonlyArray<Table> => {
  const v = t[key]
  if (v === undefined) return []
  if (!Array.isArray(v) || !v.every(isTable)) return fail(file, `${where}${key} must be an array of tables ([[${where}${key}]])`)
  return v
}

/** containers/image's parseLocation: trailing slashes dropped, no URL schemes. */
const parseLocation = (file: string, input: string): string => {
  const trimmed = input.replace(/\/+$/, "")
  if (/^https?:\/\//.test(trimmed)) fail(file, `invalid location '${input}': URI schemes are not supported`)
  return trimmed
}

// distribution's domain grammar (host[:port]), for unqualified-search-registries entries
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
const domainRe = new RegExp(`^${domainComponent}(?:\\.${domainComponent})*(?::[0-9]+)?$`)

const hasDomain = (name: string): boolean => {
  const slash = name.indexOf("/")
  if (slash === -1) return false
  const first = name.slice(0, slash)
  return /[.:]/.test(first) || first === "localhost"
}
const hasDigest = (s: string) => s.includes("@")
const hasTag = (s: string) => {
  const name = s.split("@")[0]
  return name.lastIndexOf(":") > name.lastIndexOf("/")
}

/** The left side of an alias: a short name, without tag or digest (validateShortName). */
const checkShortName = (file: string, name: string): void => {
  const reason = (() => {
    try {
      parseReference(name)
    } catch (e) {
      return `cannot parse short name: ${JSON.stringify(name)}: ${(e as Error).message}`
    }
    if (hasDigest(name)) return `invalid short name ${JSON.stringify(name)}: must not contain digest`
    if (hasTag(name)) return `invalid short name ${JSON.stringify(name)}: must not contain tag`
    if (hasDomain(name)) return `invalid short name ${JSON.stringify(name)}: must not contain registry`
    return undefined
  })()
  if (reason) fail(file, `validating short-name aliases: ${reason}`)
}

/** The right side: registry and repository, no tag or digest, normalized (parseShortNameValue). */
const aliasValue = (file: string, value: string): string => {
  let ref: Reference | undefined
  let reason: string | undefined
  try {
    ref = parseReference(value)
  } catch (e) {
    reason = `parsing alias ${JSON.stringify(value)}: ${(e as Error).message}`
  }
  if (!reason && hasDigest(value)) reason = `invalid alias ${JSON.stringify(value)}: must not contain digest`
  if (!reason && hasTag(value)) reason = `invalid alias ${JSON.stringify(value)}: must not contain tag`
  if (!reason && !hasDomain(value)) reason = `invalid alias ${JSON.stringify(value)}: must contain registry and repository`
  if (reason || !ref) return fail(file, `validating short-name aliases: ${reason}`)
  return `${ref.registry}/${ref.repository}`
}

const pullFromMirror = (file: string, v: string | undefined, location: string): PullFromMirror | undefined => {
  if (v === undefined || v === "") return undefined
  if (v === "all" || v === "digest-only" || v === "tag-only") return v
  return fail(file, `unsupported pull-from-mirror value ${JSON.stringify(v)} for mirror ${JSON.stringify(location)}`)
}

const parseMode = (file: string, v: string | undefined): ShortNameMode | undefined => {
  if (v === undefined || v === "") return undefined
  if (v === "disabled" || v === "permissive" || v === "enforcing") return v
  return fail(file, `invalid short-name mode: ${JSON.stringify(v)}`)
}

/** A v1 file (`[registries.search]` …) as the v2 entries it stands for. */
const fromV1 = (file: string, v1: Table): { registries: RegistryEntry[]; search: ReadonlyArray<string> | undefined } => {
  const list = (key: string) => {
    const section = v1[key]
    if (section === undefined) return undefined
    if (!isTable(section)) return fail(file, `registries.${key} must be a table`)
    return optStrings(file, section, "registries", `registries.${key}.`)
  }
  const byLocation = new Map<string, { insecure: boolean; blocked: boolean }>()
  const entry = (loc: string) => {
    const location = parseLocation(file, loc)
    const e = byLocation.get(location) ?? { insecure: false, blocked: false }
    byLocation.set(location, e)
    return e
  }
  for (const b of list("block") ?? []) entry(b).blocked = true
  for (const i of list("insecure") ?? []) entry(i).insecure = true
  const registries = [...byLocation].map(([location, e]): RegistryEntry => ({
    prefix: location, location, insecure: e.insecure, blocked: e.blocked, mirrorByDigestOnly: false, mirrors: [],
  }))
  return { registries, search: list("search") }
}

const endpointOf = (file: string, t: Table, where: string) => ({
  location: parseLocation(file, optString(file, t, "location", where) ?? ""),
  insecure: optBool(file, t, "insecure", where),
})

/**
 * One registries.conf or drop-in, checked as containers/image checks it. `forceV2` for
 * drop-ins, which may not use the v1 format. Throws RegistriesConfError.
 */
export const parseRegistriesConf = (text: string, file: string, forceV2: boolean): PartialConf => {
  let doc: Table
  try {
    doc = parse(text) as Table
  } catch (e) {
    return fail(file, e instanceof TomlError ? e.message.split("\n")[0] : String(e))
  }
  const v1 = doc.registries
  const v2Keys = ["registry", "unqualified-search-registries", "short-name-mode", "aliases", "credential-helpers"]
  let registries: RegistryEntry[] = []
  let search: ReadonlyArray<string> | undefined
  if (v1 !== undefined) {
    if (!isTable(v1)) return fail(file, "registries must be a table (the v1 format) — did you mean [[registry]]?")
    if (forceV2) return fail(file, "registry must be in v2 format but is in v1")
    if (v2Keys.some((k) => doc[k] !== undefined)) return fail(file, "mixing sysregistry v1/v2 is not supported")
    const converted = fromV1(file, v1)
    registries = converted.registries
    search = converted.search
  } else {
    for (const [i, t] of optTables(file, doc, "registry", "").entries()) {
      const where = `registry[${i}].`
      const ep = endpointOf(file, t, where)
      let prefix = optString(file, t, "prefix", where) ?? ""
      if (prefix === "") {
        if (ep.location === "") return fail(file, "invalid condition: both location and prefix are unset")
        prefix = ep.location
      } else {
        prefix = parseLocation(file, prefix)
        if (!prefix.startsWith("*.") && ep.location === "") {
          return fail(file, "invalid condition: location is unset and prefix is not in the format: *.example.com")
        }
      }
      if (prefix.startsWith("*.") && /[/@:]/.test(prefix)) {
        return fail(file, `Wildcarded prefix should be in the format: *.example.com. Current prefix ${JSON.stringify(prefix)} is incorrectly formatted`)
      }
      if (t["pull-from-mirror"] !== undefined) {
        return fail(file, `pull-from-mirror must not be set for a non-mirror registry ${JSON.stringify(prefix)}`)
      }
      const mirrorByDigestOnly = optBool(file, t, "mirror-by-digest-only", where)
      const mirrors = optTables(file, t, "mirror", where).map((m, j): Endpoint => {
        const mwhere = `${where}mirror[${j}].`
        const mep = endpointOf(file, m, mwhere)
        if (mep.location === "") return fail(file, "invalid condition: mirror location is unset")
        const pfm = optString(file, m, "pull-from-mirror", mwhere)
        if (mirrorByDigestOnly && pfm !== undefined && pfm !== "") {
          return fail(
            file,
            `cannot set mirror usage mirror-by-digest-only for the registry (${JSON.stringify(prefix)}) and pull-from-mirror for per-mirror (${JSON.stringify(mep.location)}) at the same time`,
          )
        }
        return { ...mep, pullFromMirror: pullFromMirror(file, pfm, mep.location) }
      })
      registries.push({ ...ep, prefix, mirrors, blocked: optBool(file, t, "blocked", where), mirrorByDigestOnly })
    }
    search = optStrings(file, doc, "unqualified-search-registries", "")
  }

  // the same location twice must agree on insecure and blocked
  const key = (r: RegistryEntry) => (r.location === "" ? r.prefix : r.location)
  for (const r of registries) {
    for (const o of registries) {
      if (key(r) !== key(o)) continue
      if (r.insecure !== o.insecure) return fail(file, `registry '${r.location}' is defined multiple times with conflicting 'insecure' setting`)
      if (r.blocked !== o.blocked) return fail(file, `registry '${r.location}' is defined multiple times with conflicting 'blocked' setting`)
    }
  }
  const searchRegistries = search?.map((s) => {
    const reg = parseLocation(file, s)
    if (!domainRe.test(reg)) fail(file, `Invalid unqualified-search-registries entry ${JSON.stringify(reg)}`)
    return reg
  })

  const aliases = new Map<string, Alias>()
  const aliasTable = doc.aliases
  if (aliasTable !== undefined) {
    if (!isTable(aliasTable)) return fail(file, "aliases must be a table ([aliases])")
    for (const [name, value] of Object.entries(aliasTable)) {
      if (typeof value !== "string") return fail(file, `aliases.${name} must be a string`)
      checkShortName(file, name)
      // an empty value resets an alias an earlier file set
      aliases.set(name, { name: value === "" ? undefined : aliasValue(file, value), origin: file })
    }
  }

  return {
    // the first entry for a prefix wins; the list is kept sorted, as containers/image keeps it
    registries: uniqueByPrefix(registries),
    unqualifiedSearchRegistries: searchRegistries,
    // podman names the last file read as the origin of an empty search list
    searchOrigin: file,
    shortNameMode: parseMode(file, optString(file, doc, "short-name-mode", "")),
    aliases,
  }
}

const uniqueByPrefix = (registries: ReadonlyArray<RegistryEntry>, laterWins = false): RegistryEntry[] => {
  const byPrefix = new Map<string, RegistryEntry>()
  for (const r of registries) if (laterWins || !byPrefix.has(r.prefix)) byPrefix.set(r.prefix, r)
  return [...byPrefix.keys()].sort().map((p) => byPrefix.get(p)!)
}

/**
 * A drop-in over what came before: `[[registry]]` entries replace those with the same
 * prefix, aliases are merged, other fields replace when the drop-in sets them (an empty
 * unqualified-search-registries list too).
 */
export const mergeConf = (base: PartialConf, update: PartialConf): PartialConf => ({
  registries: uniqueByPrefix([...base.registries, ...update.registries], true),
  unqualifiedSearchRegistries: update.unqualifiedSearchRegistries ?? base.unqualifiedSearchRegistries,
  searchOrigin: update.unqualifiedSearchRegistries ? update.searchOrigin : base.searchOrigin,
  shortNameMode: update.shortNameMode ?? base.shortNameMode,
  aliases: new Map([...base.aliases, ...update.aliases]),
})

export const emptyPartial: PartialConf = { registries: [], aliases: new Map() }

export const finishConf = (p: PartialConf, description: string, found: boolean): RegistriesConf => ({
  registries: p.registries,
  unqualifiedSearchRegistries: p.unqualifiedSearchRegistries ?? [],
  searchOrigin: p.searchOrigin ?? "",
  shortNameMode: p.shortNameMode ?? "permissive",
  aliases: p.aliases,
  description,
  found,
})

/**
 * How much of `ref` (a registry, a repository or a whole reference, host first) `prefix`
 * matches, or -1. A prefix matches whole path elements (or up to a `:`/`@`); `*.example.com`
 * matches any subdomain's host.
 */
export const prefixMatch = (ref: string, prefix: string): number => {
  if (prefix.startsWith("*.")) {
    const suffix = prefix.slice(1)
    const at = ref.indexOf(suffix)
    if (at === -1 || ref.slice(0, at).includes("/")) return -1
    const end = at + suffix.length
    return end === ref.length || ":/@".includes(ref[end]) ? end : -1
  }
  if (ref === prefix) return prefix.length
  if (ref.length > prefix.length && ref.startsWith(prefix) && ":/@".includes(ref[prefix.length])) return prefix.length
  return -1
}

/** The `[[registry]]` with the longest prefix matching `name`, if any (FindRegistry). */
export const findRegistry = (conf: Pick<RegistriesConf, "registries">, name: string): RegistryEntry | undefined => {
  let best: RegistryEntry | undefined
  for (const r of conf.registries) {
    if (prefixMatch(name, r.prefix) !== -1 && (!best || r.prefix.length > best.prefix.length)) best = r
  }
  return best
}
