/**
 * Every way talking to a registry can fail, as one closed set of codes. The message is for
 * people and says what to do; the code is what workflows branch on and what failure events
 * record.
 */
import { Schema } from "effect"

export const RegistryErrorCode = Schema.Literal(
  "Unauthorized", // 401 after authenticating (or no credentials)
  "Denied", // 403
  "NotFound", // manifest, blob or repository unknown
  "TooManyRequests", // 429 after retries
  "ServerError", // 5xx after retries
  "Unreachable", // connection refused, DNS, TLS
  "Timeout", // no answer, or a body that stalled
  "BadResponse", // a status or shape no registry should send (redirect loop, 400, 416 …)
  "InvalidManifest",
  "DigestMismatch",
  "PlatformNotFound",
  "UnsupportedMediaType",
  "CredentialsError", // an auth file or credential helper that cannot be read
)
export type RegistryErrorCode = typeof RegistryErrorCode.Type

export class RegistryError extends Schema.TaggedError<RegistryError>()("RegistryError", {
  code: RegistryErrorCode,
  /** the image reference (or registry host) the request was for */
  ref: Schema.String,
  message: Schema.String,
  status: Schema.optional(Schema.Number),
}) {}

/** One entry of the `errors` array a registry puts in its error bodies. */
export interface RegistryErrorDetail {
  readonly code: string
  readonly message: string
}

/** Reads `{"errors":[{"code","message"}]}`; empty when the body is something else. */
export const parseErrorBody = (text: string): ReadonlyArray<RegistryErrorDetail> => {
  try {
    const json = JSON.parse(text) as { errors?: unknown }
    if (!Array.isArray(json.errors)) return []
    return json.errors.flatMap((e: unknown) => {
      if (e === null || typeof e !== "object") return []
      const { code, message } = e as { code?: unknown; message?: unknown }
      return [{ code: typeof code === "string" ? code : "UNKNOWN", message: typeof message === "string" ? message : "" }]
    })
  } catch {
    return []
  }
}

export const describeDetails = (details: ReadonlyArray<RegistryErrorDetail>): string =>
  details.map((d) => (d.message ? `${d.code}: ${d.message}` : d.code)).join("; ")
