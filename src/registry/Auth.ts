/**
 * The registry auth handshake, minus the network: read a `WWW-Authenticate` challenge,
 * build the token request it asks for, read the token answer, remember tokens until they
 * expire. The client (RegistryClient.ts) does the HTTP through the transport.
 */
import { Either } from "effect"
import type { Credentials } from "./Keychain.ts"
import type { RemoteUrl } from "./RemoteUrl.ts"

export interface Challenge {
  /** lowercase: `basic`, `bearer` */
  readonly scheme: string
  /** parameter names lowercased: realm, service, scope, error … */
  readonly params: Readonly<Record<string, string>>
}

const tokenChar = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/

/**
 * Parses a `WWW-Authenticate` value into its challenges (RFC 9110 §11.6.1). Quoted values
 * may hold commas (`scope="repository:a:pull,push"`), and one header may carry several
 * challenges (`Basic realm="x", Bearer realm="y"`).
 */
export const parseWwwAuthenticate = (header: string): ReadonlyArray<Challenge> => {
  const out: Array<{ scheme: string; params: Record<string, string> }> = []
  let i = 0
  const n = header.length
  const skipWs = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++
  }
  const readToken = () => {
    const start = i
    while (i < n && tokenChar.test(header[i])) i++
    return header.slice(start, i)
  }
  const readValue = () => {
    if (header[i] !== '"') return readToken()
    i++
    let v = ""
    while (i < n && header[i] !== '"') {
      if (header[i] === "\\" && i + 1 < n) i++
      v += header[i++]
    }
    i++ // closing quote
    return v
  }
  while (i < n) {
    while (i < n && (header[i] === "," || header[i] === " " || header[i] === "\t")) i++
    const scheme = readToken()
    if (scheme === "") {
      i++ // not a token: skip the character and resync
      continue
    }
    const challenge = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> }
    out.push(challenge)
    skipWs()
    for (;;) {
      const save = i
      const name = readToken()
      skipWs()
      if (name === "" || header[i] !== "=") {
        i = save // the next challenge's scheme (or a token68 blob we have no use for)
        break
      }
      i++ // '='
      skipWs()
      challenge.params[name.toLowerCase()] = readValue()
      skipWs()
      if (header[i] !== ",") break
      i++
      skipWs()
    }
  }
  return out
}

/** The challenge we answer: Bearer when offered (a token can be scoped), else Basic. */
export const pickChallenge = (challenges: ReadonlyArray<Challenge>): Challenge | undefined =>
  challenges.find((c) => c.scheme === "bearer" && c.params.realm) ?? challenges.find((c) => c.scheme === "basic")

export const basicAuthorization = (creds: Pick<Credentials, "username" | "password">): string =>
  `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`

/** The scope a pull needs. */
export const pullScope = (repository: string): string => `repository:${repository}:pull`

export interface TokenRequest {
  readonly url: string
  readonly init: RequestInit
}

/**
 * The request that gets a token for `scope` from `realm` (the challenge's, parsed by the
 * caller: RemoteUrl.ts): a GET with Basic credentials (or none, for an anonymous token), or
 * the OAuth2 refresh-token POST when all we hold is an identity token.
 */
export const tokenRequest = (
  realmUrl: RemoteUrl,
  challenge: Challenge,
  scope: string | undefined,
  creds: Credentials | undefined,
  clientId = "als",
): TokenRequest => {
  const realm = new URL(realmUrl)
  const service = challenge.params.service
  if (creds?.identityToken) {
    const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: creds.identityToken, client_id: clientId })
    if (service) form.set("service", service)
    if (scope) form.set("scope", scope)
    return {
      url: realm.toString(),
      init: { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form.toString() },
    }
  }
  if (service) realm.searchParams.set("service", service)
  // a challenge may ask for several scopes at once; the token endpoint takes one per parameter
  for (const s of (scope ?? "").split(" ").filter(Boolean)) realm.searchParams.append("scope", s)
  const headers: Record<string, string> = {}
  if (creds) {
    realm.searchParams.set("account", creds.username)
    headers.authorization = basicAuthorization(creds)
  }
  return { url: realm.toString(), init: { method: "GET", headers } }
}

export interface Token {
  readonly token: string
  /** epoch milliseconds after which the token must not be reused */
  readonly expiresAt: number
}

/** Token servers may omit expires_in; the distribution spec says to assume 60 seconds. */
const defaultTokenSeconds = 60

/** Reads a token answer (`token` or `access_token`, `expires_in` seconds). */
export const parseTokenResponse = (text: string, nowMs: number): Either.Either<Token, string> => {
  let json: Record<string, unknown>
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    return Either.left("the token server's answer is not JSON")
  }
  // `null` parses too, and has no fields to read
  if (json === null || typeof json !== "object") return Either.left("the token server's answer is not a JSON object")
  const token =
    typeof json.token === "string" && json.token !== ""
      ? json.token
      : typeof json.access_token === "string" && json.access_token !== ""
        ? json.access_token
        : undefined
  if (token === undefined) return Either.left("the token server's answer has no token")
  const seconds = typeof json.expires_in === "number" && json.expires_in > 0 ? json.expires_in : defaultTokenSeconds
  // renew a little early so a token does not expire between our check and the registry's
  const margin = Math.min(10, seconds / 10)
  return Either.right({ token, expiresAt: nowMs + (seconds - margin) * 1000 })
}

/** Tokens by (realm, service, scope, user), dropped once expired. */
export class TokenCache {
  private readonly tokens = new Map<string, Token>()

  static key(challenge: Challenge, scope: string | undefined, creds: Credentials | undefined): string {
    return JSON.stringify([challenge.params.realm, challenge.params.service ?? "", scope ?? "", creds?.username ?? "", creds?.source ?? ""])
  }

  get(key: string, nowMs: number): string | undefined {
    const t = this.tokens.get(key)
    if (t && t.expiresAt > nowMs) return t.token
    if (t) this.tokens.delete(key)
    return undefined
  }

  set(key: string, token: Token): void {
    this.tokens.set(key, token)
  }

  delete(key: string): void {
    this.tokens.delete(key)
  }

  get size(): number {
    return this.tokens.size
  }
}
