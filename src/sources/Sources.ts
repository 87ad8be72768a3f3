/**
 * Picks the ImageSource for what the user typed, by its transport prefix: `oci:`,
 * `oci-archive:`, `docker-archive:` are local; anything else (with or without `docker://`)
 * is a registry image.
 */
import { Effect } from "effect"
import type { Platform } from "../domain/Platform.ts"
import type { RegistryClient } from "../registry/RegistryClient.ts"
import { configuredRegistrySource } from "../config/ConfiguredSource.ts"
import { localSource, type LocalPull } from "./LocalSource.ts"
import { sourceError } from "./SourceError.ts"
import type { RecordedName } from "./SourceName.ts"
import { parseSourceSpec, SpecError } from "./SourceSpec.ts"

export interface SourceChoice extends Omit<LocalPull, "recorded"> {
  /** for local sources: the `:ref` name and why */
  readonly recorded?: RecordedName | undefined
  readonly local: boolean
}

export const imageSourceFor = (input: string, opts: { readonly name?: string | undefined; readonly platform: Platform }) =>
  Effect.gen(function*(): Effect.fn.Return<SourceChoice, unknown, RegistryClient> {
    const spec = yield* Effect.try({
      try: () => parseSourceSpec(input),
      catch: (e) => (e instanceof SpecError ? sourceError("BadSpec", input, e.message.replace(`${input}: `, "")) : e),
    })
    if (spec.kind === "registry") {
      if (opts.name !== undefined) {
        return yield* sourceError(
          "BadSpec",
          input,
          "--name is for local sources (oci:, oci-archive:, docker-archive:); a registry image is recorded under its own reference",
        )
      }
      const source = yield* configuredRegistrySource(spec.ref)
      return { source, local: false } satisfies SourceChoice
    }
    const local = yield* localSource(spec, opts)
    return { ...local, local: true } satisfies SourceChoice
  })
