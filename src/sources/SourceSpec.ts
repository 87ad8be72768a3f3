/**
 * Where `als pull` takes an image from, spelled as skopeo and podman spell transports:
 *
 *   oci:PATH[:REFERENCE]                 an OCI image layout directory
 *   oci-archive:PATH[:REFERENCE]         the same layout in a tar file
 *   docker-archive:PATH[:REF | :@INDEX]  a `docker save` / `podman save` tarball
 *   [docker://]REF                       a registry image (the default)
 *
 * As in containers/image, PATH ends at the first ':' (a path with ':' cannot be named).
 * Pure: no IO.
 */

export type SourceSpec =
  | { readonly kind: "registry"; readonly ref: string }
  | { readonly kind: "oci"; readonly path: string; readonly reference?: string | undefined }
  | { readonly kind: "oci-archive"; readonly path: string; readonly reference?: string | undefined }
  | {
    readonly kind: "docker-archive"
    readonly path: string
    /** a RepoTags entry to pick, e.g. `busybox:latest` */
    readonly reference?: string | undefined
    /** `@N`: the N-th image of the archive's manifest.json */
    readonly index?: number | undefined
  }

export type LocalSpec = Exclude<SourceSpec, { kind: "registry" }>

/** Transports containers/image knows that als does not read: said clearly, not taken for a registry name. */
const unsupported: Record<string, string> = {
  "dir": "skopeo copy dir:PATH oci:LAYOUT:TAG",
  "containers-storage": "podman save --format oci-dir -o LAYOUT IMAGE",
  "docker-daemon": "docker save -o FILE IMAGE, then als pull docker-archive:FILE",
  "sif": "skopeo copy sif:FILE oci:LAYOUT:TAG",
  "tarball": "skopeo copy tarball:FILE oci:LAYOUT:TAG",
  "ostree": "skopeo copy ostree:IMAGE oci:LAYOUT:TAG",
}

export class SpecError extends Error {
  override readonly name = "SpecError"
}

const split = (rest: string): { path: string; reference: string | undefined } => {
  const i = rest.indexOf(":")
  return i === -1 ? { path: rest, reference: undefined } : { path: rest.slice(0, i), reference: rest.slice(i + 1) || undefined }
}

/** Parses the transport prefix; throws SpecError for a local source without a path or an unsupported transport. */
export const parseSourceSpec = (input: string): SourceSpec => {
  if (input.startsWith("docker://")) return { kind: "registry", ref: input }
  const colon = input.indexOf(":")
  const transport = colon === -1 ? "" : input.slice(0, colon)
  const rest = input.slice(colon + 1)
  const needPath = (what: string) => {
    if (split(rest).path === "") throw new SpecError(`${input}: ${what} needs a path, e.g. ${transport}:./image${what === "an OCI layout" ? ":latest" : ".tar"}`)
  }
  switch (transport) {
    case "oci": {
      needPath("an OCI layout")
      return { kind: "oci", ...split(rest) }
    }
    case "oci-archive": {
      needPath("an OCI archive")
      return { kind: "oci-archive", ...split(rest) }
    }
    case "docker-archive": {
      needPath("a docker archive")
      const { path, reference } = split(rest)
      if (reference?.startsWith("@")) {
        const n = reference.slice(1)
        if (!/^\d+$/.test(n)) throw new SpecError(`${input}: @${n} is not an image index (expected @0, @1 …)`)
        return { kind: "docker-archive", path, index: Number(n) }
      }
      return { kind: "docker-archive", path, reference }
    }
    default: {
      const hint = unsupported[transport]
      if (hint !== undefined) {
        throw new SpecError(`${input}: als does not read the ${transport}: transport; convert the image first (${hint})`)
      }
      return { kind: "registry", ref: input }
    }
  }
}

/** How a spec is written back for messages. */
export const formatSourceSpec = (s: SourceSpec): string => {
  switch (s.kind) {
    case "registry":
      return s.ref
    case "docker-archive":
      return `docker-archive:${s.path}${s.index !== undefined ? `:@${s.index}` : s.reference ? `:${s.reference}` : ""}`
    default:
      return `${s.kind}:${s.path}${s.reference ? `:${s.reference}` : ""}`
  }
}
