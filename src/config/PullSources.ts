/**
 * Where podman 4.3.1 fetches a fully qualified reference from: the `[[registry]]` with the
 * longest matching prefix rewrites it to its `location`, and its mirrors come first, in
 * order (only for digests with `mirror-by-digest-only`; per mirror as `pull-from-mirror`
 * says). A source is refused when the registry its own name falls under is `blocked`.
 */
import { formatReference, parseReference, type Reference, referenceName, registryHost } from "../domain/Reference.ts"
import { findRegistry, prefixMatch, type RegistriesConf, RegistriesConfError, type RegistryEntry } from "./RegistriesConf.ts"

export interface PullSource {
  /** the reference as this endpoint names it (rewritten by prefix → location) */
  readonly ref: Reference
  readonly mirror: boolean
  /** the endpoint's `insecure`: verify no certificate, allow plain HTTP */
  readonly insecure: boolean
  /** the blocking `[[registry]]` prefix when this source may not be used */
  readonly blockedBy?: string | undefined
}

const rewrite = (ref: Reference, prefix: string, location: string): Reference => {
  const s = formatReference(ref)
  const len = prefixMatch(s, prefix)
  if (len === -1) throw new RegistriesConfError({ file: "registries.conf", reason: `invalid prefix '${prefix}' for reference '${s}'` })
  if (location === "") return ref // a `*.example.com` prefix without location: the name as it is
  try {
    return parseReference(location + s.slice(len))
  } catch (e) {
    throw new RegistriesConfError({ file: "registries.conf", reason: `rewriting reference ${s} with prefix '${prefix}' to '${location}': ${(e as Error).message}` })
  }
}

const mirrorsFor = (reg: RegistryEntry, digested: boolean) =>
  reg.mirrorByDigestOnly
    ? (digested ? reg.mirrors : [])
    : reg.mirrors.filter((m) => (m.pullFromMirror === "digest-only" ? digested : m.pullFromMirror === "tag-only" ? !digested : true))

/** The endpoints to try for `ref`, mirrors first; throws RegistriesConfError. */
export const pullSources = (ref: Reference, conf: Pick<RegistriesConf, "registries">): ReadonlyArray<PullSource> => {
  const blockedBy = (r: Reference) => {
    const reg = findRegistry(conf, referenceName(r))
    return reg?.blocked ? reg.prefix : undefined
  }
  const reg = findRegistry(conf, referenceName(ref))
  if (!reg) return [{ ref, mirror: false, insecure: false, blockedBy: blockedBy(ref) }]
  const digested = ref.digest !== undefined
  return [
    ...mirrorsFor(reg, digested).map((m) => ({ ep: m, mirror: true })),
    { ep: reg as { location: string; insecure: boolean }, mirror: false },
  ].map(({ ep, mirror }) => {
    const physical = rewrite(ref, reg.prefix, ep.location)
    return { ref: physical, mirror, insecure: ep.insecure, blockedBy: blockedBy(physical) }
  })
}

const hostOfLocation = (location: string) => location.split("/")[0]

/**
 * The hosts the registry client treats as `--tls-verify=false`: every location and mirror
 * marked `insecure` (the API host too for docker.io). `*.example.com` entries have no
 * single host and are not included.
 */
export const insecureHosts = (conf: Pick<RegistriesConf, "registries">): ReadonlyArray<string> => {
  const hosts = new Set<string>()
  const add = (location: string) => {
    if (location === "") return
    const host = hostOfLocation(location)
    hosts.add(host)
    hosts.add(registryHost(host))
  }
  for (const r of conf.registries) {
    if (r.insecure) add(r.location)
    for (const m of r.mirrors) if (m.insecure) add(m.location)
  }
  return [...hosts]
}

/**
 * Whether `--creds` may go to `registry`. podman gives the user's credentials only to the
 * registry a name belongs to; a mirror or rewritten location on another host gets the auth
 * files' credentials instead. Here: hosts that registries.conf names only as mirrors or
 * rewrite targets (never as a prefix) do not get --creds.
 */
export const credsFor = (conf: Pick<RegistriesConf, "registries">): ((registry: string) => boolean) => {
  const prefixHosts = new Set(conf.registries.map((r) => hostOfLocation(r.prefix)))
  const foreign = new Set<string>()
  for (const r of conf.registries) {
    const targets = [r.location, ...r.mirrors.map((m) => m.location)].filter((l) => l !== "").map(hostOfLocation)
    for (const h of targets) if (!prefixHosts.has(h)) foreign.add(h)
  }
  return (registry) => !foreign.has(registry)
}
