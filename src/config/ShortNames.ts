/**
 * Short-name resolution as podman 4.3.1 does it (containers/image pkg/shortnames): a name
 * without a registry (`fedora`, `library/alpine:3`) becomes the alias registries.conf gives
 * it, else one candidate per unqualified-search registry, tried in order; in `enforcing`
 * mode several candidates are an error unless a person can choose (als does not prompt: it
 * lists them). A name with a registry, or written `docker://…`, is not a short name.
 */
import { Schema } from "effect"
import { formatReference, parseReference, type Reference } from "../domain/Reference.ts"
import type { RegistriesConf } from "./RegistriesConf.ts"

export class ShortNameError extends Schema.TaggedError<ShortNameError>()("ShortNameError", {
  input: Schema.String,
  message: Schema.String,
  candidates: Schema.Array(Schema.String),
}) {}

export type Rationale = "qualified" | "alias" | "search"

export interface Resolution {
  /** what podman would try, in order; each is the name podman looks layers up under */
  readonly candidates: ReadonlyArray<Reference>
  readonly rationale: Rationale
  /** the file the alias or search list came from */
  readonly origin: string
}

/** A name whose first path element is not a host (no `.` or `:`, not `localhost`). */
export const isShortName = (input: string): boolean => {
  if (input.startsWith("docker://")) return false
  const name = input.split("@")[0]
  const slash = name.indexOf("/")
  if (slash === -1) return true
  const first = name.slice(0, slash)
  return !(/[.:]/.test(first) || first === "localhost")
}

/** `name[:tag][@digest]` → its parts as written. */
const splitInput = (input: string) => {
  const at = input.indexOf("@")
  const digest = at === -1 ? undefined : input.slice(at + 1)
  const named = at === -1 ? input : input.slice(0, at)
  const colon = named.lastIndexOf(":")
  const tag = colon > named.lastIndexOf("/") ? named.slice(colon + 1) : undefined
  const repo = tag === undefined ? named : named.slice(0, colon)
  return { repo, tag, digest }
}

export interface ResolveContext {
  /** stdin and stdout are both terminals (podman would prompt) */
  readonly tty: boolean
}

/**
 * The candidates for what the user typed. Throws InvalidReference for a malformed name and
 * ShortNameError when podman would refuse too.
 */
export const resolveShortName = (input: string, conf: RegistriesConf, ctx: ResolveContext): Resolution => {
  const ref = parseReference(input) // malformed input fails here, before any lookup
  if (!isShortName(input)) return { candidates: [ref], rationale: "qualified", origin: "" }

  const { repo, tag, digest } = splitInput(input)
  const alias = conf.aliases.get(repo)
  if (alias?.name !== undefined) {
    const value = parseReference(`${alias.name}${tag !== undefined ? `:${tag}` : ""}${digest !== undefined ? `@${digest}` : ""}`)
    return { candidates: [value], rationale: "alias", origin: alias.origin }
  }

  const search = conf.unqualifiedSearchRegistries
  if (search.length === 0) {
    throw new ShortNameError({
      input,
      candidates: [],
      message: conf.searchOrigin
        ? `short-name ${JSON.stringify(input)} did not resolve to an alias and no unqualified-search registries are defined in ${JSON.stringify(conf.searchOrigin)}; use a fully qualified name (e.g. docker.io/library/${repo})`
        : `short-name ${JSON.stringify(input)} did not resolve to an alias and no containers-registries.conf(5) was found; use a fully qualified name (e.g. docker.io/library/${repo})`,
    })
  }
  const candidates = search.map((registry) => parseReference(`${registry}/${input}`))
  const resolution: Resolution = { candidates, rationale: "search", origin: conf.searchOrigin }
  if (conf.shortNameMode === "disabled" || candidates.length === 1) return resolution
  if (conf.shortNameMode === "enforcing") {
    const names = candidates.map(formatReference)
    throw new ShortNameError({
      input,
      candidates: names,
      message: (ctx.tty
        ? `short-name resolution enforced and als does not prompt`
        : `short-name resolution enforced but cannot prompt without a TTY`) +
        ` (${JSON.stringify(input)} could be ${names.join(", ")}; short-name-mode in ${conf.searchOrigin}); pull one of them by its full name, or add an alias to registries.conf`,
    })
  }
  // permissive: podman prompts on a terminal and tries them all otherwise; als always tries them in order
  return resolution
}
