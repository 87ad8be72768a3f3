/** Failures → one line for people and an exit status for scripts (the edge only). */
import { ValidationError } from "@effect/cli"
import { safeLines } from "../domain/SafeText.ts"
import { ExitCode } from "./exit.ts"

const codeByTag: Record<string, number> = {
  InvalidDigest: ExitCode.usage,
  InvalidReference: ExitCode.usage,
  UsageError: ExitCode.usage,
  // registries.conf: a short name podman would refuse, a file it would refuse (src/config)
  ShortNameError: ExitCode.usage,
  RegistriesConfError: ExitCode.usage,
  RegistryError: ExitCode.registry,
  LayerRejected: ExitCode.layerRejected,
  LayerIoError: ExitCode.store,
  StoreIoError: ExitCode.store,
  LogIoError: ExitCode.log,
  LogCorrupt: ExitCode.log,
  LogLocked: ExitCode.log,
}

/**
 * The line and status for a failure. The message is made safe for a terminal here, once:
 * it carries registry answers, paths and refs (SafeText.ts).
 */
export const describeFailure = (e: unknown): { message: string; code: number } => {
  const { message, code } = describeRaw(e)
  return { message: safeLines(message), code }
}

const describeRaw = (e: unknown): { message: string; code: number } => {
  // a layer's failure carries the underlying error: its kind decides the exit status
  const wrapper = (e as { _tag?: string })?._tag
  if (wrapper === "LayerFailure" || wrapper === "PullError") {
    const inner = describeRaw((e as { cause: unknown }).cause)
    return { message: (e as Error).message, code: inner.code }
  }
  // @effect/cli has already printed help/usage for these
  if (ValidationError.isValidationError(e)) return { message: "", code: ExitCode.usage }
  const tag = (e as { _tag?: string })?._tag
  if (tag === "SourceError") {
    const c = (e as { code?: string }).code ?? ""
    const code = c === "Io" ? ExitCode.store
      : ["DigestMismatch", "InvalidManifest", "UnsupportedMediaType", "BlobMissing", "InvalidArchive"].includes(c)
      ? ExitCode.layerRejected
      : ExitCode.usage
    return { message: (e as Error).message, code }
  }
  const message = e instanceof Error ? e.message : String(e)
  return { message, code: (tag ? codeByTag[tag] : undefined) ?? 1 }
}
