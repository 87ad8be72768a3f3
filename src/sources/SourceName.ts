/**
 * The `:ref` name a local image's layers are recorded under: the name podman will ask the
 * store for. Pure.
 *
 * podman consults an additional layer store only when it pulls from a registry (docker://);
 * `podman pull oci:…` / `docker-archive:…` copy the layers themselves (verified with podman
 * 4.3.1: no lookup in the store at all). So the name that matters is the registry name the
 * image will later be pulled as, which only the user knows for sure: `--name` wins. Without
 * it, the source's own full name is used, and failing that, the name podman itself gives the
 * image when it pulls that source, so that `als ls` and `podman images` agree.
 */
import { formatReference, isReference, parseReference } from "../domain/Reference.ts"

export interface RecordedName {
  readonly name: string
  /** why this name, for "recorded as NAME (from …)" */
  readonly origin: string
}

/** A reference that names its registry (`quay.io/x`, `localhost/x`, `host:5000/x`), as podman's NormalizeName tells them apart. */
export const isFullReference = (s: string): boolean => {
  const slash = s.indexOf("/")
  if (slash === -1) return false
  const first = s.slice(0, slash)
  return (/[.:]/.test(first) || first === "localhost") && isReference(s)
}

const normalized = (s: string) => formatReference(parseReference(s))

/** `--name REF`, normalized like any registry reference (throws InvalidReference). */
export const nameFromOption = (ref: string): RecordedName => ({ name: normalized(ref), origin: "--name" })

/**
 * What podman 4.3.1 names an image pulled from `oci:PATH[:TAG]`: `localhost/` + PATH as
 * written (leading '/' dropped) + `:TAG` (`latest` without one). When that is not a valid
 * name (upper case, `./`, spaces …) podman refuses the pull; we derive a valid one instead.
 */
export const podmanLayoutName = (path: string, tag: string | undefined): RecordedName | undefined => {
  const t = tag && /^[\w][\w.-]{0,127}$/.test(tag) ? tag : "latest"
  const asPodman = `localhost/${path.replace(/^\/+/, "")}:${t}`
  if (isReference(asPodman)) return { name: normalized(asPodman), origin: "podman's own name for this layout path" }
  const parts = path
    .toLowerCase()
    .split("/")
    .map((p) => p.replace(/[^a-z0-9._-]+/g, "-").replace(/^[._-]+|[._-]+$/g, "").replace(/[._-]{2,}/g, "-"))
    .filter((p) => p !== "")
  const derived = `localhost/${parts.join("/")}:${t}`
  return parts.length > 0 && isReference(derived)
    ? { name: normalized(derived), origin: "derived from the path; podman cannot name this path itself" }
    : undefined
}

/**
 * An OCI layout or oci-archive: `--name`, else the chosen entry's
 * `org.opencontainers.image.ref.name` when it is a full reference (podman save writes one),
 * else podman's name for the path.
 */
export const layoutName = (
  opts: { readonly name?: string | undefined; readonly path: string; readonly tag?: string | undefined; readonly refName?: string | undefined },
): RecordedName | undefined => {
  if (opts.name !== undefined) return nameFromOption(opts.name)
  if (opts.refName !== undefined && isFullReference(opts.refName)) {
    return { name: normalized(opts.refName), origin: "the layout's org.opencontainers.image.ref.name" }
  }
  return podmanLayoutName(opts.path, opts.tag)
}

/**
 * An oci-archive: `--name`, else the entry's `org.opencontainers.image.ref.name` read as podman
 * reads it (a name without registry gets `localhost/`, as podman's NormalizeName does).
 */
export const ociArchiveName = (
  opts: { readonly name?: string | undefined; readonly refName?: string | undefined },
): RecordedName | undefined => {
  if (opts.name !== undefined) return nameFromOption(opts.name)
  const r = opts.refName
  if (r === undefined || r === "") return undefined
  if (isFullReference(r)) return { name: normalized(r), origin: "the archive's org.opencontainers.image.ref.name" }
  const local = `localhost/${r.replace(/^\/+/, "")}`
  return isReference(local) ? { name: normalized(local), origin: "the archive's org.opencontainers.image.ref.name, as podman names it" } : undefined
}

/**
 * A docker-archive: `--name`, else the tag asked for or the image's first RepoTags entry,
 * read as Docker reads it (`busybox:latest` is `docker.io/library/busybox:latest`, the image
 * `podman pull busybox` fetches).
 */
export const archiveName = (
  opts: { readonly name?: string | undefined; readonly reference?: string | undefined; readonly repoTags: ReadonlyArray<string> },
): RecordedName | undefined => {
  if (opts.name !== undefined) return nameFromOption(opts.name)
  if (opts.reference !== undefined && isReference(opts.reference)) return { name: normalized(opts.reference), origin: "the tag asked for" }
  const tag = opts.repoTags.find(isReference)
  return tag !== undefined ? { name: normalized(tag), origin: "the archive's tags" } : undefined
}
