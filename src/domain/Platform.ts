/**
 * Platforms (`os/arch[/variant]`) and how an image index entry is chosen for one, following
 * containers/image: candidates are tried in order of preference, and each candidate must
 * match an entry's os, architecture and variant exactly.
 */
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

// Names users type (uname -m, Debian, Node) for the GOARCH values images use.
const archAliases: Record<string, Platform["architecture"] | [string, string]> = {
  x86_64: "amd64",
  "x86-64": "amd64",
  x64: "amd64",
  aarch64: "arm64",
  armhf: ["arm", "v7"],
  armel: ["arm", "v6"],
  i386: "386",
  i686: "386",
  ia32: "386",
}

const word = /^[a-z0-9_.-]+$/

export const normalizePlatform = (p: Platform): Platform => {
  const os = p.os.toLowerCase()
  const arch = p.architecture.toLowerCase()
  const alias = archAliases[arch]
  const [architecture, impliedVariant] =
    alias === undefined ? [arch, undefined] : typeof alias === "string" ? [alias, undefined] : alias
  const variant = p.variant ? p.variant.toLowerCase() : impliedVariant
  return variant ? { os, architecture, variant } : { os, architecture }
}

/** Parses `os/arch[/variant]`; throws InvalidPlatform. */
export const parsePlatform = (input: string): Platform => {
  const parts = input.split("/")
  if (parts.length < 2 || parts.length > 3) {
    throw new InvalidPlatform({ input, reason: "it needs two or three parts separated by '/'" })
  }
  const [os, architecture, variant] = parts
  for (const part of parts) {
    if (!word.test(part.toLowerCase())) throw new InvalidPlatform({ input, reason: `bad part ${JSON.stringify(part)}` })
  }
  return normalizePlatform({ os, architecture, variant })
}

export const formatPlatform = (p: Platform): string =>
  p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`

/**
 * The platform of this machine, from Node's `process.arch` (passed in, to keep this pure).
 * Images for `als` are Linux images whatever the host reports.
 */
export const hostPlatform = (arch: string, armVersion?: string): Platform => {
  switch (arch) {
    case "x64":
      return { os: "linux", architecture: "amd64" }
    case "arm64":
      // containers/image reads the variant from the CPU; every arm64 CPU is v8 to it
      return { os: "linux", architecture: "arm64", variant: "v8" }
    case "arm":
      return { os: "linux", architecture: "arm", variant: `v${armVersion && /^[5-8]$/.test(armVersion) ? armVersion : "7"}` }
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

/** Variants an architecture can run, most capable first (containers/image's table). */
const compatibleVariants: Record<string, ReadonlyArray<string>> = {
  arm: ["v8", "v7", "v6", "v5"],
  arm64: ["v8"],
}

/**
 * The platforms acceptable for `wanted`, best first. With a variant: that variant, the
 * older ones it can run, then no variant. Without one: no variant first, then any known.
 */
export const candidatePlatforms = (wanted: Platform): ReadonlyArray<Platform> => {
  const { os, architecture, variant } = normalizePlatform(wanted)
  const known = compatibleVariants[architecture]
  let variants: ReadonlyArray<string>
  if (variant) {
    const i = known ? known.indexOf(variant) : -1
    variants = [...(i === -1 ? [variant] : known.slice(i)), ""]
  } else {
    variants = ["", ...(known ?? [])]
  }
  return variants.map((v) => (v ? { os, architecture, variant: v } : { os, architecture }))
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
