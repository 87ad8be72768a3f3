/**
 * Platforms (`os/arch[/variant]`) as podman 4.3.1 reads `--platform` and chooses from an image
 * index: the string is split at its first '/', normalized by containers/common libimage's
 * NormalizePlatform (containerd 1.6's platform rules: `arm` → `arm/v7`, `arm/7` → `arm/v7`,
 * `amd64/v1` → `amd64`, `aarch64` → `arm64` …), and containers/image's WantedPlatforms turns
 * it into candidates tried in order, each matching an index entry's os, architecture and
 * variant exactly. test/unit/domain/PlatformParity.test.ts holds the upstream tables with the
 * answers real podman gave.
 */
import { readFileSync } from "node:fs"
import { Schema } from "effect"

export interface Platform {
  readonly os: string
  readonly architecture: string
  readonly variant?: string | undefined
}

export class InvalidPlatform extends Schema.TaggedError<InvalidPlatform>()("InvalidPlatform", {
  input: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `invalid platform ${JSON.stringify(this.input)}: ${this.reason} (expected OS/ARCH[/VARIANT], e.g. linux/arm64)`
  }
}

const platformOf = (os: string, architecture: string, variant: string | undefined): Platform =>
  variant ? { os, architecture, variant } : { os, architecture }

// containerd 1.6.8 platforms/database.go, the version podman 4.3.1's libimage links.
const normalizeOs = (os: string): string => {
  const lower = os.toLowerCase()
  return lower === "macos" ? "darwin" : lower
}

const normalizeArch = (rawArch: string, rawVariant: string): [string, string] => {
  const arch = rawArch.toLowerCase()
  const variant = rawVariant.toLowerCase()
  switch (arch) {
    case "i386":
      return ["386", ""]
    case "x86_64":
    case "x86-64":
    case "amd64":
      return ["amd64", variant === "v1" ? "" : variant]
    case "aarch64":
    case "arm64":
      return ["arm64", variant === "8" || variant === "v8" ? "" : variant]
    case "armhf":
      return ["arm", "v7"]
    case "armel":
      return ["arm", "v6"]
    case "arm":
      if (variant === "" || variant === "7") return ["arm", "v7"]
      if (variant === "5" || variant === "6" || variant === "8") return ["arm", `v${variant}`]
      return ["arm", variant]
    default:
      return [arch, variant]
  }
}

const specifierPart = /^[A-Za-z0-9_-]+$/

/** containerd 1.6.8's platforms.Parse for the `os/arch[/variant]` strings libimage hands it. */
const containerdParse = (specifier: string): Platform | string => {
  if (specifier.includes("*")) return "wildcards are not supported"
  const parts = specifier.split("/")
  const bad = parts.find((p) => !specifierPart.test(p))
  if (bad !== undefined) {
    return bad === "" ? "a part is empty" : `${JSON.stringify(bad)} may hold only letters, digits, '_' and '-'`
  }
  if (parts.length === 2) {
    const [arch, variant] = normalizeArch(parts[1], "")
    return platformOf(normalizeOs(parts[0]), arch, arch === "arm" && variant === "v7" ? "" : variant)
  }
  if (parts.length === 3) {
    const [arch, variant] = normalizeArch(parts[1], parts[2])
    return platformOf(normalizeOs(parts[0]), arch, arch === "arm64" && variant === "" ? "v8" : variant)
  }
  return `it has ${parts.length} parts`
}

/**
 * libimage's NormalizePlatform(os, arch, variant): each given part normalized, empty parts left
 * empty (WantedPlatforms fills them from the host). Undefined when containerd's parser refuses
 * the combination (podman then carries the raw strings on, and no index entry ever matches them).
 */
const normalizeChoice = (
  rawOs: string,
  rawArch: string,
  rawVariant: string,
  host: Platform,
): { os: string; architecture: string; variant: string } | string => {
  const os = rawOs === "" ? host.os : normalizeOs(rawOs)
  let [arch, variant] = normalizeArch(rawArch, rawVariant)
  if (variant === "" && rawVariant !== "") variant = rawVariant
  const parsed = containerdParse(`${os}/${arch === "" ? host.architecture : arch}${variant === "" ? "" : `/${variant}`}`)
  if (typeof parsed === "string") return parsed
  return {
    os: rawOs === "" ? "" : parsed.os,
    architecture: rawArch === "" ? "" : parsed.architecture,
    variant: parsed.variant ?? "",
  }
}

/**
 * `--platform` as podman 4.3.1 reads it: split at the first '/' into OS and the rest as the
 * architecture (`arm/v7` keeps its variant there), normalized by libimage, empty parts taken
 * from the host (`linux` is the host's architecture and variant; `""` is the host). Throws
 * InvalidPlatform where containerd's parser refuses the string: podman goes on with the raw
 * text and finds no index entry (or copies one whose platform it then cannot check).
 */
export const parsePlatform = (input: string, host: Platform = detectHostPlatform()): Platform => {
  if (input === "") return host
  const slash = input.indexOf("/")
  const rawOs = slash === -1 ? input : input.slice(0, slash)
  const rawArch = slash === -1 ? "" : input.slice(slash + 1)
  const n = normalizeChoice(rawOs, rawArch, "", host)
  if (typeof n === "string") throw new InvalidPlatform({ input, reason: n })
  const os = n.os === "" ? host.os : n.os
  // WantedPlatforms takes the host's variant only with the host's architecture
  return n.architecture === "" ? platformOf(os, host.architecture, host.variant) : platformOf(os, n.architecture, n.variant)
}

export const formatPlatform = (p: Platform): string =>
  p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`

/** containers/image's reading of /proc/cpuinfo's "CPU architecture" for arm and arm64 hosts. */
const cpuVariant = (cpuArchitecture: string | undefined): string | undefined => {
  switch (cpuArchitecture?.toLowerCase()) {
    case "8":
    case "aarch64":
      return "v8"
    case "7":
    case "7m":
    case "?(12)":
    case "?(13)":
    case "?(14)":
    case "?(15)":
    case "?(16)":
    case "?(17)":
      return "v7"
    case "6":
    case "6tej":
      return "v6"
    case "5":
    case "5t":
    case "5te":
    case "5tej":
      return "v5"
    case "4":
    case "4t":
      return "v4"
    case "3":
      return "v3"
    default:
      return undefined
  }
}

/**
 * The platform of a machine, from Node's `process.arch` and, on arm and arm64, the value of
 * /proc/cpuinfo's "CPU architecture" line (both passed in, to keep this pure). Images for
 * `als` are Linux images whatever the host reports.
 */
export const hostPlatform = (arch: string, cpuArchitecture?: string): Platform => {
  switch (arch) {
    case "x64":
      return { os: "linux", architecture: "amd64" }
    case "arm64":
    case "arm":
      return platformOf("linux", arch, cpuVariant(cpuArchitecture))
    case "ia32":
      return { os: "linux", architecture: "386" }
    case "ppc64":
      // Node says ppc64 for both endiannesses; Linux container images are little-endian
      return { os: "linux", architecture: "ppc64le" }
    case "mipsel":
      return { os: "linux", architecture: "mipsle" }
    case "mips64el":
      return { os: "linux", architecture: "mips64le" }
    default:
      // s390x, riscv64, loong64 … are already spelled as GOARCH spells them
      return { os: "linux", architecture: arch }
  }
}

/** The value of the first "CPU architecture" line of a /proc/cpuinfo text (key matched case-insensitively). */
export const cpuArchitectureOf = (cpuinfo: string): string | undefined => {
  for (const line of cpuinfo.split("\n")) {
    const colon = line.indexOf(":")
    if (colon !== -1 && line.slice(0, colon).trim().toLowerCase() === "cpu architecture") return line.slice(colon + 1).trim()
  }
  return undefined
}

let detected: Platform | undefined

/**
 * This machine's platform, the default wherever no `--platform` is given: computed once, here
 * only, as containers/image does (the variant of arm and arm64 hosts from /proc/cpuinfo).
 */
export const detectHostPlatform = (): Platform => {
  if (detected === undefined) {
    let cpu: string | undefined
    if (process.arch === "arm" || process.arch === "arm64") {
      try {
        cpu = cpuArchitectureOf(readFileSync("/proc/cpuinfo", "utf8"))
      } catch {
        cpu = undefined // as containers/image: no variant when cpuinfo cannot be read
      }
    }
    detected = hostPlatform(process.arch, cpu)
  }
  return detected
}

/** Variants an architecture can run, most capable first (containers/image's table; amd64 has none there). */
const compatibleVariants: Record<string, ReadonlyArray<string>> = {
  arm: ["v8", "v7", "v6", "v5"],
  arm64: ["v8"],
}

/**
 * containers/image's WantedPlatforms for a normalized `wanted`, best first. With a variant:
 * that variant, the older ones it can run, then no variant. Without one: no variant first,
 * then every known variant.
 */
export const candidatePlatforms = (wanted: Platform): ReadonlyArray<Platform> => {
  const { os, architecture, variant } = wanted
  const known = compatibleVariants[architecture]
  let variants: ReadonlyArray<string>
  if (variant) {
    const i = known ? known.indexOf(variant) : -1
    variants = [...(i === -1 ? [variant] : known.slice(i)), ""]
  } else {
    variants = ["", ...(known ?? [])]
  }
  return variants.map((v) => platformOf(os, architecture, v))
}

export const samePlatform = (a: Platform, b: Platform): boolean =>
  a.os === b.os && a.architecture === b.architecture && (a.variant ?? "") === (b.variant ?? "")

/** Picks the entry for `wanted` from an index, or undefined when none can run. */
export const choosePlatform = <T extends { readonly platform?: Platform | undefined }>(
  entries: ReadonlyArray<T>,
  wanted: Platform,
): T | undefined => {
  for (const candidate of candidatePlatforms(wanted)) {
    const hit = entries.find((e) => e.platform !== undefined && samePlatform(e.platform, candidate))
    if (hit) return hit
  }
  return undefined
}
