/**
 * Where a registry pull fetches from, as podman 4.3.1 decides it from registries.conf: the
 * short name's candidates in order, and for each the mirrors then the registry, the first
 * endpoint that serves the manifest winning. Whichever endpoint serves it, the image is
 * recorded under the candidate's name: the reference podman looks layers up under.
 */
import { Context, Effect } from "effect"
import { displayReference, formatReference, type Reference } from "../domain/Reference.ts"
import { RegistryClient } from "../registry/RegistryClient.ts"
import { RegistryError, type RegistryErrorCode } from "../registry/RegistryError.ts"
import { type ImageSource, registryImageSource, registrySource } from "../workflows/ImageSource.ts"
import { pullSources, type PullSource } from "./PullSources.ts"
import type { RegistriesConf } from "./RegistriesConf.ts"
import { resolveShortName } from "./ShortNames.ts"

export interface RegistriesPolicyShape {
  /** undefined: no registries.conf is consulted (names are normalized, pulled as written) */
  readonly conf: RegistriesConf | undefined
  /** stdin and stdout are terminals (enforcing short-name mode would prompt in podman) */
  readonly tty: boolean
}

export class RegistriesPolicy extends Context.Reference<RegistriesPolicy>()("als/RegistriesPolicy", {
  defaultValue: (): RegistriesPolicyShape => ({ conf: undefined, tty: false }),
}) {}

interface Failure {
  readonly from: Reference
  readonly error: unknown
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e))
const codeOf = (e: unknown): RegistryErrorCode => (e instanceof RegistryError ? e.code : "Unreachable")

/** containers/image's wording: the primary's error, with what each mirror said. */
const candidateError = (failures: ReadonlyArray<Failure>): { code: RegistryErrorCode; message: string } => {
  const primary = failures[failures.length - 1]
  if (failures.length === 1) return { code: codeOf(primary.error), message: messageOf(primary.error) }
  const mirrors = failures.slice(0, -1).map((f) => `[${displayReference(f.from)}: ${messageOf(f.error)}]`)
  return {
    code: codeOf(primary.error),
    message: `(Mirrors also failed: ${mirrors.join("\n")}): ${displayReference(primary.from)}: ${messageOf(primary.error)}`,
  }
}

const blockedError = (s: PullSource, conf: RegistriesConf) =>
  new RegistryError({
    code: "Denied",
    ref: displayReference(s.ref),
    message: `${displayReference(s.ref)}: registry ${s.blockedBy} is blocked in ${conf.description}`,
  })

/** A source that fails when the pull starts, so the failure is logged as the pull's. */
const failedSource = (name: Reference, display: string, error: RegistryError): ImageSource => ({
  name: formatReference(name),
  display,
  resolve: () => Effect.fail(error),
  blob: () => Effect.fail(error),
  aliases: () => [],
})

/** The ImageSource for a registry name, honouring registries.conf when the policy has one. */
export const configuredRegistrySource = (input: string) =>
  Effect.gen(function*() {
    const { conf, tty } = yield* RegistriesPolicy
    if (!conf) return yield* registrySource(input)
    const client = yield* RegistryClient
    const plan = yield* Effect.try({
      try: () => {
        const resolution = resolveShortName(input, conf, { tty })
        return resolution.candidates.map((ref) => ({ ref, sources: pullSources(ref, conf) }))
      },
      catch: (e) => e,
    })
    // one endpoint, nothing to choose: no probe, the pull reports the registry's answer itself
    const only = plan.length === 1 && plan[0].sources.length === 1 ? plan[0].sources[0] : undefined
    if (only && !only.blockedBy) return registryImageSource(client, plan[0].ref, input, only.ref)

    const errors: string[] = []
    let lastCode: RegistryErrorCode = "NotFound"
    for (const candidate of plan) {
      const failures: Failure[] = []
      for (const source of candidate.sources) {
        if (source.blockedBy) {
          failures.push({ from: source.ref, error: blockedError(source, conf) })
          continue
        }
        // the endpoint that serves the manifest serves the whole pull, as in containers/image
        const probe = yield* Effect.either(client.fetchManifest(source.ref))
        if (probe._tag === "Right") return registryImageSource(client, candidate.ref, input, source.ref)
        failures.push({ from: source.ref, error: probe.left })
      }
      const e = candidateError(failures)
      errors.push(e.message)
      lastCode = e.code
    }
    const message = errors.length === 1
      ? errors[0]
      : `${errors.length} errors occurred while pulling:${errors.map((e) => `\n * ${e}`).join("")}`
    return failedSource(plan[0].ref, input, new RegistryError({ code: lastCode, ref: input, message }))
  })
