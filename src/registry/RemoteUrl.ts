/**
 * URLs a registry hands us (a Bearer realm in WWW-Authenticate, a redirect's Location) are
 * parsed here once, into a RemoteUrl: http or https, a host, no user name or password. Nothing
 * else is ever fetched: `fetch` would read `file:///etc/passwd` or decode a `data:` URL as if a
 * registry had answered, and als runs as root. A relative Location may only stay on the origin
 * that sent it.
 */
import { Either } from "effect"

declare const remoteUrl: unique symbol

/** An absolute http(s) URL with a host and no credentials, as `URL.href` spells it. */
export type RemoteUrl = string & { readonly [remoteUrl]: true }

/** Why a URL from a registry was refused, for the message that names the registry and header. */
export type UrlRefusal = string

/** A registry's value as a message may show it: quoted, control characters escaped, cut. */
export const quoteUrl = (raw: string): string => {
  const max = 200
  const q = JSON.stringify(raw.length > max ? raw.slice(0, max) : raw)
  return raw.length > max ? `${q}… (${raw.length} characters)` : q
}

// whitespace, controls and backslashes are legal nowhere in a URL; the WHATWG parser drops or
// rewrites them silently (`\` becomes `/`), which is how a harmless-looking value goes elsewhere
const odd = /[\u0000-\u0020\u007f-\u009f\\]/

const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/

const checked = (url: URL, raw: string): Either.Either<RemoteUrl, UrlRefusal> => {
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return Either.left(`${quoteUrl(raw)} is a ${url.protocol} URL; only http and https are followed`)
  }
  if (url.hostname === "") return Either.left(`${quoteUrl(raw)} names no host`)
  if (url.username !== "" || url.password !== "") {
    return Either.left(`${quoteUrl(raw)} carries a user name or password; credentials never travel in URLs`)
  }
  return Either.right(url.href as RemoteUrl)
}

/** An absolute URL (a Bearer realm, say). */
export const parseRemoteUrl = (raw: string): Either.Either<RemoteUrl, UrlRefusal> => {
  if (raw === "") return Either.left("an empty URL")
  if (odd.test(raw)) return Either.left(`${quoteUrl(raw)} holds whitespace, control characters or backslashes`)
  const s = scheme.exec(raw)
  if (!s) return Either.left(`${quoteUrl(raw)} is not an absolute URL`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Either.left(`${quoteUrl(raw)} is not a URL`)
  }
  return checked(url, raw)
}

/**
 * A redirect's Location against the URL that answered it: an absolute http(s) URL, or a
 * relative one that stays on `base`'s origin (`//other.host/x` and the like are refused).
 */
export const resolveLocation = (raw: string, base: RemoteUrl): Either.Either<RemoteUrl, UrlRefusal> => {
  if (raw === "") return Either.left("an empty Location")
  if (odd.test(raw)) return Either.left(`${quoteUrl(raw)} holds whitespace, control characters or backslashes`)
  if (scheme.test(raw)) return parseRemoteUrl(raw)
  let url: URL
  try {
    url = new URL(raw, base)
  } catch {
    return Either.left(`${quoteUrl(raw)} is not a URL`)
  }
  if (url.origin !== new URL(base).origin) {
    return Either.left(`${quoteUrl(raw)} is relative but leads to ${url.origin}; a relative Location stays on ${new URL(base).origin}`)
  }
  return checked(url, raw)
}
