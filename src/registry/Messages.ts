/**
 * What the registry client tells people when a request fails: every RegistryError message is
 * built here, in terms of what the user can do about it.
 */
import type { BodyFailure, NetFailure } from "./Http.ts"
import type { Credentials } from "./Keychain.ts"
import { describeDetails, parseErrorBody, RegistryError, type RegistryErrorCode } from "./RegistryError.ts"

export const err = (code: RegistryErrorCode, ref: string, message: string, status?: number) =>
  new RegistryError({ code, ref, message, status })

/** The host[:port] of a URL, for messages; the text itself when it is not a URL. */
export const hostOf = (url: string) => {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

/** A request that got no answer, told in terms of what the user can do. */
export const networkError = (label: string, f: NetFailure): RegistryError => {
  const where = hostOf(f.url)
  switch (f.kind) {
    case "refused":
      return err("Unreachable", label, `${label}: cannot connect to ${where} (connection refused); check the registry host and port, and that the registry is running`)
    case "dns":
      return err("Unreachable", label, `${label}: cannot resolve the host of ${where} (${f.detail}); check the registry name and the network`)
    case "tls-handshake":
      return err("Unreachable", label, `${label}: the TLS handshake with ${where} failed (${f.detail}); if this registry speaks plain HTTP, use --tls-verify=false`)
    case "tls-cert":
      return err("Unreachable", label, `${label}: the TLS certificate of ${where} is not trusted (${f.detail}); install the registry's CA certificate, or use --tls-verify=false`)
    case "reset":
      return err("Unreachable", label, `${label}: the connection to ${where} was closed unexpectedly (${f.detail}); try again`)
    case "timeout":
      return err("Timeout", label, `${label}: ${where} did not answer (${f.detail}); check the network, or try again later`)
    case "other":
      return err("Unreachable", label, `${label}: cannot reach ${where}: ${f.detail}`)
  }
}

/** A body that could not be read whole; `what` names it ("manifest", "blob sha256:…"). */
export const bodyError =
  (label: string, what: string) =>
  (f: BodyFailure): RegistryError => {
    switch (f._tag) {
      case "TooLarge":
        return err("InvalidManifest", label, `${label}: the ${what} is larger than ${f.limit} bytes; refusing to hold it in memory`)
      case "Stalled":
        return err(
          "Timeout",
          label,
          `${label}: the ${what} download stalled for ${f.ms / 1000} s${f.bytes > 0 ? ` (${f.bytes} bytes in that time)` : ""}; try again, or raise --timeout`,
        )
      case "TooSlow":
        return err(
          "Timeout",
          label,
          `${label}: the ${what} did not arrive whole within ${f.ms / 1000} s (${f.got} bytes came); the registry is too slow or stalled; try again, or raise --timeout`,
        )
      case "Broken":
        return err(f.kind === "timeout" ? "Timeout" : "Unreachable", label, `${label}: the connection broke while reading the ${what} (${f.detail}); try again`)
    }
  }

export interface StatusContext {
  readonly label: string
  /** the registry as the user names it (for `podman login REGISTRY`) */
  readonly registry?: string
  readonly what: "ping" | "manifest" | "blob" | "token"
  readonly repository?: string
  readonly digest?: string
  readonly creds?: Credentials | undefined
  /** answered by a host the registry redirected us to */
  readonly foreign?: boolean
}

/** An HTTP error answer, with the registry's own `errors` and advice. */
export const statusError = (ctx: StatusContext, status: number, url: string, body: string): RegistryError => {
  const details = parseErrorBody(body)
  const codes = new Set(details.map((d) => d.code))
  const said = details.length ? ` (${describeDetails(details)})` : ""
  const { label } = ctx
  const where = hostOf(url)
  const login = `podman login ${ctx.registry ?? where}`
  if (ctx.foreign) {
    return err(
      status >= 500 ? "ServerError" : status === 404 ? "NotFound" : status === 403 || status === 401 ? "Denied" : "BadResponse",
      label,
      `${label}: the blob storage at ${where}, where the registry redirected us, answered HTTP ${status}; try again later`,
      status,
    )
  }
  switch (status) {
    case 401:
      return err(
        "Unauthorized",
        label,
        ctx.creds
          ? `${label}: ${where} rejected the credentials from ${ctx.creds.source}${said}; check them, or log in again with ${login}`
          : `${label}: ${where} requires authentication${said}; log in with ${login} or pass --creds USER:PASSWORD (some registries also answer this for images that do not exist: check the name)`,
        status,
      )
    case 403:
      return err("Denied", label, `${label}: access denied by ${where}${said}; check that this account may pull the repository`, status)
    case 404:
      if (ctx.what === "ping") {
        return err("NotFound", label, `${label}: ${where} has no /v2/ endpoint, so it is not a container registry; check the registry name`, status)
      }
      if (codes.has("NAME_UNKNOWN")) {
        return err("NotFound", label, `${label}: repository ${ctx.repository} not found on ${where}${said}; check the name`, status)
      }
      if (ctx.what === "blob") {
        return err("NotFound", label, `${label}: blob ${ctx.digest} not found on ${where}${said}; the image may have been deleted or pushed incompletely`, status)
      }
      return err("NotFound", label, `${label}: manifest unknown to ${where}${said}; check the name and the tag or digest`, status)
    case 429:
      return err("TooManyRequests", label, `${label}: ${where} says too many requests${said}; wait and try again later, or log in (registries allow authenticated users more)`, status)
    case 416:
      return err("BadResponse", label, `${label}: ${where} cannot serve the requested range of blob ${ctx.digest}${said}; start the download over`, status)
    default:
      if (status >= 500) {
        return err("ServerError", label, `${label}: ${where} failed with HTTP ${status}${said}; try again later`, status)
      }
      return err("BadResponse", label, `${label}: unexpected HTTP ${status} from ${where}${said}`, status)
  }
}
