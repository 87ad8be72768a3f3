/**
 * Image references, normalized the way podman (containers/image's docker reference rules)
 * normalizes them: `alpine` is `docker.io/library/alpine:latest`. The normalized string is
 * the name a client hands to the store as `:ref`, so it must match podman's byte for byte.
 */
import { Schema } from "effect"
import { type Digest, isDigest } from "./Digest.ts"

export interface Reference {
  /** registry name as users write it: `docker.io`, `127.0.0.1:5000`, `localhost` */
  readonly registry: string
  /** repository path inside the registry: `library/alpine`, `test/busybox` */
  readonly repository: string
  readonly tag?: string | undefined
  readonly digest?: Digest | undefined
}

export class InvalidReference extends Schema.TaggedError<InvalidReference>()("InvalidReference", {
  input: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `invalid image reference ${JSON.stringify(this.input)}: ${this.reason}`
  }
}

export const defaultRegistry = "docker.io"
const legacyDefaultRegistry = "index.docker.io"
const officialNamespace = "library"
export const defaultTag = "latest"

// The grammar of distribution's reference package, written out once.
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
const ipv6 = "\\[(?:[a-fA-F0-9:]+)\\]"
const domainRe = new RegExp(`^(?:${ipv6}|${domainComponent}(?:\\.${domainComponent})*)(?::[0-9]+)?$`)
const pathComponentRe = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/
const tagRe = /^[\w][\w.-]{0,127}$/
const anyDigestRe = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/
const imageIdRe = /^[a-f0-9]{64}$/
const nameTotalLengthMax = 255

const fail = (input: string, reason: string): never => {
  throw new InvalidReference({ input, reason })
}

/** Splits `host[:port]/path` from a bare path, as distribution's splitDockerDomain does. */
const splitRegistry = (name: string): { registry: string; repository: string } => {
  const slash = name.indexOf("/")
  const first = slash === -1 ? "" : name.slice(0, slash)
  const looksLikeHost =
    slash !== -1 && (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first)
  let registry = looksLikeHost ? first : defaultRegistry
  let repository = looksLikeHost ? name.slice(slash + 1) : name
  if (registry === legacyDefaultRegistry) registry = defaultRegistry
  if (registry === defaultRegistry && !repository.includes("/")) {
    repository = `${officialNamespace}/${repository}`
  }
  return { registry, repository }
}

/**
 * Parses and normalizes a reference; throws InvalidReference. Without tag or digest the tag
 * is `latest`. `name:tag@digest` keeps both (the digest is what gets pulled).
 * A `docker://` prefix (podman's transport syntax) is accepted.
 */
export const parseReference = (input: string): Reference => {
  let s = input.startsWith("docker://") ? input.slice("docker://".length) : input
  if (s === "") return fail(input, "it is empty")
  if (imageIdRe.test(s)) {
    return fail(input, "a 64-character hex string is an image ID, not a reference; use NAME@sha256:HEX")
  }

  let digest: Digest | undefined
  const at = s.indexOf("@")
  if (at !== -1) {
    const d = s.slice(at + 1)
    s = s.slice(0, at)
    if (!anyDigestRe.test(d)) return fail(input, `${JSON.stringify(d)} is not a digest (expected sha256:<64 hex>)`)
    if (!isDigest(d)) {
      return fail(input, `unsupported digest ${JSON.stringify(d)} (expected sha256:<64 lowercase hex> or sha512:<128 lowercase hex>)`)
    }
    digest = d
  }

  let tag: string | undefined
  const colon = s.lastIndexOf(":")
  if (colon > s.lastIndexOf("/")) {
    tag = s.slice(colon + 1)
    s = s.slice(0, colon)
    if (!tagRe.test(tag)) {
      return fail(input, `invalid tag ${JSON.stringify(tag)} (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')`)
    }
  }

  if (s === "") return fail(input, "the repository name is missing")
  if (s.length > nameTotalLengthMax) return fail(input, `the name is longer than ${nameTotalLengthMax} characters`)
  const { registry, repository } = splitRegistry(s)
  if (registry !== defaultRegistry && !domainRe.test(registry)) {
    return fail(input, `invalid registry host ${JSON.stringify(registry)}`)
  }
  if (repository.toLowerCase() !== repository) return fail(input, "repository name must be lowercase")
  for (const part of repository.split("/")) {
    if (!pathComponentRe.test(part)) {
      return fail(
        input,
        part === ""
          ? "the repository path has an empty component"
          : `invalid repository path component ${JSON.stringify(part)} (lowercase letters and digits, separated by '.', '_', '__' or '-')`,
      )
    }
  }
  if (`${registry}/${repository}`.length > nameTotalLengthMax) {
    return fail(input, `the name is longer than ${nameTotalLengthMax} characters`)
  }

  return { registry, repository, tag: tag ?? (digest ? undefined : defaultTag), digest }
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

/** Everything the user wrote, for messages: `name:tag@digest` keeps both. */
export const displayReference = (ref: Reference): string =>
  `${referenceName(ref)}${ref.tag ? `:${ref.tag}` : ""}${ref.digest ? `@${ref.digest}` : ""}`

/** The tag or digest to ask the registry for (`/v2/<repo>/manifests/<this>`). */
export const manifestSelector = (ref: Reference): string => ref.digest ?? ref.tag ?? defaultTag

/** The same image pinned to a digest (the tag is dropped, as podman does). */
export const withDigest = (ref: Reference, digest: Digest): Reference => ({
  registry: ref.registry,
  repository: ref.repository,
  digest,
})

/** The host that serves the registry API: Docker Hub's API lives on its own host name. */
export const registryHost = (ref: Reference | string): string => {
  const registry = typeof ref === "string" ? ref : ref.registry
  return registry === defaultRegistry ? "registry-1.docker.io" : registry
}
