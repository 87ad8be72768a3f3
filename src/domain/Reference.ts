/**
 * Image references, read the way `podman pull` (4.3.1: containers/common libimage's Pull over
 * containers/image's fork of docker/reference) reads them: `alpine` is
 * `docker.io/library/alpine:latest`. The normalized string is the name a client hands the
 * store as `:ref`, so it must match podman's byte for byte; what podman refuses is refused here
 * too, for the same reason (test/unit/domain/ReferenceParity.test.ts holds both upstream test
 * tables with podman's own answers).
 */
import { Schema } from "effect"
import { type Digest, isDigest } from "./Digest.ts"

export interface Reference {
  /** registry name as users write it: `docker.io`, `127.0.0.1:5000`, `localhost` */
  readonly registry: string
  /** repository path inside the registry: `library/alpine`, `test/busybox` */
  readonly repository: string
  /** absent when a digest names the image (podman drops the tag of `name:tag@digest`) */
  readonly tag?: string | undefined
  readonly digest?: Digest | undefined
}

/**
 * Why podman refuses a reference, one kind per distinct message of podman's:
 * format "invalid reference format"; uppercase "repository name must be lowercase";
 * too-long "repository name must not be more than 255 characters"; empty "repository name must
 * have at least one component"; digest-length / digest-format / digest-algorithm (go-digest's
 * "invalid checksum digest length", "… format", "unsupported digest algorithm"); image-id
 * ("image has been referred to by ID": podman only looks IDs up locally); transport (another
 * transport of podman's, `oci:`, `dir:` …, not a registry).
 */
export const ReferenceErrorKind = Schema.Literal(
  "format",
  "uppercase",
  "too-long",
  "empty",
  "digest-length",
  "digest-format",
  "digest-algorithm",
  "image-id",
  "transport",
)
export type ReferenceErrorKind = typeof ReferenceErrorKind.Type

export class InvalidReference extends Schema.TaggedError<InvalidReference>()("InvalidReference", {
  input: Schema.String,
  reason: Schema.String,
  kind: Schema.optional(ReferenceErrorKind),
}) {
  override get message() {
    return `invalid image reference ${JSON.stringify(this.input)}: ${this.reason}`
  }
}

export const defaultRegistry = "docker.io"
const legacyDefaultRegistry = "index.docker.io"
const officialNamespace = "library"
export const defaultTag = "latest"
const nameTotalLengthMax = 255
const inputLengthMax = 4096

// The fork's grammar (containers/image docker/reference/regexp.go). It has no IPv6 hosts.
const alphaNumeric = "[a-z0-9]+"
// Go's RE2 reads `[-]*` in linear time; a backtracking engine needs the equivalent `-+` (an
// empty separator between two runs of letters and digits adds nothing) to stay linear
const separator = "(?:[._]|__|-+)"
const nameComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
const domain = `${domainComponent}(?:\\.${domainComponent})*(?::[0-9]+)?`
const tag = "[\\w][\\w.-]{0,127}"
const digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
const name = `(?:${domain}/)?${nameComponent}(?:/${nameComponent})*`
const referenceRe = new RegExp(`^(${name})(?::(${tag}))?(?:@(${digest}))?$`)
const nameRe = new RegExp(`^(?:(${domain})/)?(${nameComponent}(?:/${nameComponent})*)$`)
const identifierRe = /^[a-f0-9]{64}$/

// go-digest: the algorithms podman links, their hex length, and its own digest grammar.
const digestHexLength: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 }
const goDigestRe = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/

// Transports podman 4.3.1 knows besides docker: `podman pull oci:x` is not a registry pull.
const otherTransports = new Set([
  "containers-storage",
  "dir",
  "docker-archive",
  "docker-daemon",
  "oci",
  "oci-archive",
  "ostree",
  "sif",
  "tarball",
])

const fail = (input: string, kind: ReferenceErrorKind, reason: string): never => {
  throw new InvalidReference({ input, reason, kind })
}

const why: Record<ReferenceErrorKind, string> = {
  format: "invalid reference format",
  uppercase: "repository name must be lowercase",
  "too-long": `repository name must not be more than ${nameTotalLengthMax} characters`,
  empty: "repository name must have at least one component",
  "digest-length": "invalid checksum digest length",
  "digest-format": "invalid checksum digest format",
  "digest-algorithm": "unsupported digest algorithm",
  "image-id": "an image ID, not a name to pull",
  transport: "not a registry image",
}

interface Parsed {
  readonly domain: string
  readonly path: string
  readonly tag: string | undefined
  readonly digest: string | undefined
}

/** The digest check of go-digest's Digest.Validate, which the fork runs on every digest. */
const checkDigest = (input: string, d: string): void => {
  const colon = d.indexOf(":")
  const algorithm = d.slice(0, colon)
  const hex = d.slice(colon + 1)
  const length = digestHexLength[algorithm]
  if (length === undefined) {
    if (!goDigestRe.test(d)) fail(input, "digest-format", `${why["digest-format"]}: ${JSON.stringify(d)}`)
    fail(input, "digest-algorithm", `${why["digest-algorithm"]} ${JSON.stringify(algorithm)} (sha256, sha384 or sha512)`)
  }
  if (hex.length !== length) {
    fail(input, "digest-length", `${why["digest-length"]}: ${algorithm} needs ${length} hex digits, not ${hex.length}`)
  }
  if (!/^[a-f0-9]+$/.test(hex)) fail(input, "digest-format", `${why["digest-format"]}: lowercase hex only`)
}

/** The fork's reference.Parse: the grammar, without normalization. */
const parseRaw = (input: string, s: string): Parsed => {
  const m = referenceRe.exec(s)
  if (m === null) {
    if (s === "") return fail(input, "empty", why.empty)
    if (referenceRe.test(s.toLowerCase())) return fail(input, "uppercase", why.uppercase)
    return fail(input, "format", `${why.format}${formatHint(s)}`)
  }
  const [, fullName, tagPart, digestPart] = m
  if (fullName.length > nameTotalLengthMax) return fail(input, "too-long", why["too-long"])
  if (digestPart !== undefined) checkDigest(input, digestPart)
  const n = nameRe.exec(fullName)
  return { domain: n?.[1] ?? "", path: n?.[2] ?? fullName, tag: tagPart, digest: digestPart }
}

/** A pointer to the likely culprit, for the messages podman leaves terse. */
const formatHint = (s: string): string => {
  if (s.includes("[")) return " (IPv6 registry addresses are not supported by podman's reference parser)"
  if (/\s/.test(s)) return " (it contains white space)"
  if (s.endsWith(":")) return " (the tag after ':' is empty)"
  if (s.includes("//")) return " (empty path component)"
  return " (NAME[:TAG][@DIGEST]: lowercase path components of letters and digits, separated by '.', '_', '__' or '-')"
}

/** The fork's splitDockerDomain: a first component names a registry only with '.', ':' or as `localhost`. */
const splitDockerDomain = (s: string): { domain: string; remainder: string } => {
  const slash = s.indexOf("/")
  const first = slash === -1 ? "" : s.slice(0, slash)
  const isDomain = slash !== -1 && (/[.:]/.test(first) || first === "localhost")
  let d = isDomain ? first : defaultRegistry
  let remainder = isDomain ? s.slice(slash + 1) : s
  if (d === legacyDefaultRegistry) d = defaultRegistry
  if (d === defaultRegistry && !remainder.includes("/")) remainder = `${officialNamespace}/${remainder}`
  return { domain: d, remainder }
}

/** The fork's ParseNormalizedNamed. */
const parseNormalized = (input: string, s: string): Parsed => {
  if (identifierRe.test(s)) {
    return fail(input, "image-id", `${JSON.stringify(s)} is ${why["image-id"]} (podman refuses 64-hex names: cannot specify 64-byte hexadecimal strings)`)
  }
  const { domain: d, remainder } = splitDockerDomain(s)
  const tagSep = remainder.indexOf(":")
  const remoteName = tagSep === -1 ? remainder : remainder.slice(0, tagSep)
  if (remoteName.toLowerCase() !== remoteName) {
    const first = s.slice(0, s.indexOf("/"))
    const hint = d === defaultRegistry && s.includes("/") && first.toLowerCase() !== first && !/[.:]/.test(first)
      ? ` (${JSON.stringify(first)} is not a registry host to podman: a host needs a '.' or ':' or must be localhost, so this is a Docker Hub path)`
      : ""
    return fail(input, "uppercase", `${why.uppercase}${hint}`)
  }
  return parseRaw(input, `${d}/${remainder}`)
}

const toReference = (input: string, p: Parsed): Reference => {
  const digestValue = p.digest
  if (digestValue !== undefined && !isDigest(digestValue)) {
    // podman also takes sha384, which no registry serves in practice; als verifies sha256/sha512
    return fail(input, "digest-algorithm", `${why["digest-algorithm"]} ${JSON.stringify(digestValue.slice(0, digestValue.indexOf(":")))}: als verifies sha256 and sha512 digests`)
  }
  return {
    registry: p.domain,
    repository: p.path,
    tag: digestValue !== undefined ? undefined : (p.tag ?? defaultTag),
    digest: digestValue as Digest | undefined,
  }
}

/**
 * Parses and normalizes a reference as `podman pull` does; throws InvalidReference (with the
 * kind of podman's refusal). Without tag or digest the tag is `latest`; `name:tag@digest` is
 * the digest alone (podman ignores the tag). `docker://REF` is podman's transport syntax: REF
 * is taken as is (no short-name resolution) and may not carry both a tag and a digest.
 */
export const parseReference = (input: string): Reference => {
  // no reference podman accepts is longer than 529 characters (docker:// + a 255-character
  // name + a 128-character tag + a sha512 digest); past a few thousand the grammar's regular
  // expressions would only burn time on a backtracking engine
  if (input.length > inputLengthMax) {
    return fail(input.slice(0, 80), "too-long", `${why["too-long"]} (the input has ${input.length} characters; shown here cut to 80)`)
  }
  if (input.startsWith("docker://")) {
    const p = parseNormalized(input, input.slice("docker://".length))
    if (p.tag !== undefined && p.digest !== undefined) {
      return fail(input, "format", `${why.format} (podman's docker:// transport refuses a tag and a digest together; drop the tag)`)
    }
    return toReference(input, p)
  }
  // podman looks these up in local storage by ID and never pulls them
  if (input.startsWith("sha256:") || (input.length === 64 && !/[/.:@]/.test(input))) {
    return fail(input, "image-id", `${JSON.stringify(input)} is ${why["image-id"]} (podman only looks image IDs up in local storage; pull NAME@sha256:… instead)`)
  }
  const colon = input.indexOf(":")
  if (colon > 0 && otherTransports.has(input.slice(0, colon))) {
    return fail(input, "transport", `${input.slice(0, colon)}: is podman's ${input.slice(0, colon)} transport, ${why.transport}`)
  }
  const raw = parseRaw(input, input)
  // the Docker compat step of libimage's Pull: a tagged and digested name loses its tag
  const stripped = raw.digest !== undefined && raw.tag !== undefined
    ? `${raw.domain ? `${raw.domain}/` : ""}${raw.path}@${raw.digest}`
    : input
  return toReference(input, parseNormalized(input, stripped))
}

/** Non-throwing variant for callers that branch on validity. */
export const isReference = (input: string): boolean => {
  try {
    parseReference(input)
    return true
  } catch {
    return false
  }
}

/** `registry/repository` without tag or digest. */
export const referenceName = (ref: Reference): string => `${ref.registry}/${ref.repository}`

/**
 * The fully normalized name used as the store's `:ref`. A digest wins over a tag because
 * podman drops the tag of `name:tag@digest` and keys the image by its digest.
 */
export const formatReference = (ref: Reference): string =>
  ref.digest ? `${referenceName(ref)}@${ref.digest}` : `${referenceName(ref)}:${ref.tag ?? defaultTag}`

/** The reference for messages: the tag and the digest when both are known. */
export const displayReference = (ref: Reference): string =>
  `${referenceName(ref)}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`

/** The tag or digest to ask the registry for (`/v2/<repo>/manifests/<this>`). */
export const manifestSelector = (ref: Reference): string => ref.digest ?? ref.tag ?? defaultTag

/** The host that serves the registry API: Docker Hub's API lives on its own host name. */
export const registryHost = (ref: Reference | string): string => {
  const registry = typeof ref === "string" ? ref : ref.registry
  return registry === defaultRegistry ? "registry-1.docker.io" : registry
}
