/**
 * The request chain of one registry client: ping a host once (which scheme, which auth),
 * answer its challenge (Basic, or a Bearer token from its realm, cached per scope), follow
 * redirects by hand so that credentials never leave the registry's origin, and answer a 401
 * with a fresh challenge once. What is learned (endpoints, tokens, credentials) lives as long
 * as the client.
 */
import { Clock, type Context, Effect, Either } from "effect"
import { displayReference, type Reference, registryHost } from "../domain/Reference.ts"
import {
  basicAuthorization,
  type Challenge,
  parseTokenResponse,
  parseWwwAuthenticate,
  pickChallenge,
  pullScope,
  TokenCache,
  tokenRequest,
} from "./Auth.ts"
import { type Deadline, deadlineAfter, discard, type Http, isRedirect, readBody, readErrorText, sameOrigin, type Sent, withoutCredentials } from "./Http.ts"
import type { Credentials, Keychain } from "./Keychain.ts"
import { bodyError, err, hostOf, networkError, type StatusContext, statusError } from "./Messages.ts"
import type { RegistryConfigShape } from "./RegistryConfig.ts"
import type { RegistryError } from "./RegistryError.ts"
import { parseRemoteUrl, type RemoteUrl, resolveLocation } from "./RemoteUrl.ts"

/** What the client learned about a registry host by pinging `/v2/`. */
export interface Endpoint {
  readonly host: string
  readonly base: string
  readonly insecureTls: boolean
  /** updated when a 401 brings a new challenge */
  challenge: Challenge | undefined
}

/** A repository on a registry, named for messages as the user wrote it. */
export interface Target {
  readonly ref: Reference
  readonly label: string
  readonly registry: string
  readonly host: string
  readonly repository: string
}

/** A response after redirects; `foreign` when another origin gave it. */
export type Followed = Sent & { readonly foreign: boolean }

export const target = (ref: Reference): Target => ({
  ref,
  label: displayReference(ref),
  registry: ref.registry,
  host: registryHost(ref),
  repository: ref.repository,
})

export const makeSession = (http: Http, keychain: Context.Tag.Service<typeof Keychain>, cfg: RegistryConfigShape) => {
  const endpoints = new Map<string, Endpoint>()
  const tokens = new TokenCache()
  const credentials = new Map<string, Credentials | undefined>()
  const ua = { "user-agent": cfg.userAgent }

  const fail = (e: RegistryError) => Effect.fail(e)

  const errorFor = (ctx: StatusContext, sent: Sent) =>
    Effect.map(readErrorText(sent, cfg.stallTimeoutMs), (body) => statusError(ctx, sent.response.status, sent.url, body))

  const credentialsFor = (t: Target) =>
    Effect.gen(function* () {
      const key = `${t.registry}/${t.repository}`
      if (credentials.has(key)) return credentials.get(key)
      const creds = yield* keychain
        .lookup(t.registry, t.repository)
        .pipe(Effect.mapError((e) => err("CredentialsError", t.label, `${t.label}: ${e.message}`)))
      credentials.set(key, creds)
      return creds
    })

  const probe = (host: string, scheme: "https" | "http", insecureTls: boolean, deadline: Deadline) =>
    http.send(`${scheme}://${host}/v2/`, { method: "GET", headers: ua, insecureTls }, deadline)

  /** Pings a host once: which scheme it speaks and which auth it wants. */
  const endpointFor = (host: string, label: string) =>
    Effect.gen(function* () {
      const known = endpoints.get(host)
      if (known) return known
      const insecure = !cfg.tlsVerify || cfg.insecureHosts.includes(host)
      let scheme: "https" | "http" = "https"
      // both schemes within one timeout: a host that never answers costs --timeout, not twice it
      const deadline = deadlineAfter(cfg.requestTimeoutMs)
      const httpsDeadline = insecure ? { at: deadline.at - cfg.requestTimeoutMs / 2, ms: cfg.requestTimeoutMs / 2 } : deadline
      let result = yield* Effect.either(probe(host, "https", insecure, httpsDeadline))
      if (Either.isLeft(result) && insecure) {
        // podman's order for an insecure registry: https without verification, then http
        const https = result.left
        scheme = "http"
        result = yield* Effect.either(probe(host, "http", false, deadline))
        if (Either.isLeft(result)) {
          const overHttp = networkError(label, result.left)
          // the same failure twice (no such host, nothing listening) is worth saying once
          if (result.left.kind === https.kind) return yield* fail(overHttp)
          const overHttps = networkError(label, https).message
          return yield* fail(err(overHttp.code, label, `${overHttps}; over plain HTTP: ${overHttp.message.slice(label.length + 2)}`))
        }
      }
      if (Either.isLeft(result)) return yield* fail(networkError(label, result.left))
      const sent = result.right
      const status = sent.response.status
      if (status !== 200 && status !== 401) return yield* fail(yield* errorFor({ label, what: "ping" }, sent))
      const challenge =
        status === 401 ? pickChallenge(parseWwwAuthenticate(sent.response.headers.get("www-authenticate") ?? "")) : undefined
      yield* discard(sent.response)
      const ep: Endpoint = { host, base: `${scheme}://${host}`, insecureTls: scheme === "https" && insecure, challenge }
      endpoints.set(host, ep)
      return ep
    })

  /** A Bearer token for `scope`, from the cache unless `fresh`. */
  const bearerToken = (ep: Endpoint, t: Target, ch: Challenge, scope: string, creds: Credentials | undefined, fresh: boolean) =>
    Effect.gen(function* () {
      const key = TokenCache.key(ch, scope, creds)
      const now = yield* Clock.currentTimeMillis
      if (!fresh) {
        const cached = tokens.get(key, now)
        if (cached) return cached
      }
      const realm = parseRemoteUrl(ch.params.realm ?? "")
      if (Either.isLeft(realm)) {
        return yield* fail(
          err("BadResponse", t.label, `${t.label}: ${ep.host} asks for a token from a realm als will not follow: ${realm.left} (the realm of its WWW-Authenticate header)`),
        )
      }
      const req = tokenRequest(realm.right, ch, scope, creds)
      const realmHost = hostOf(req.url)
      // a POST (refresh token) is not repeated: it is not ours to replay blindly
      const send = req.init.method === "POST" ? http.sendOnce : http.send
      const sent = yield* send(req.url, {
        ...req.init,
        headers: { ...(req.init.headers as Record<string, string>), ...ua },
        insecureTls: ep.insecureTls,
      }).pipe(Effect.mapError((f) => networkError(t.label, f)))
      const status = sent.response.status
      if (status === 401 || status === 403) {
        yield* discard(sent.response)
        return yield* fail(
          err(
            "Unauthorized",
            t.label,
            creds
              ? `${t.label}: the token server ${realmHost} rejected the credentials from ${creds.source}; check them, or log in again with podman login ${t.registry}`
              : `${t.label}: the token server ${realmHost} refused anonymous access; log in with podman login ${t.registry} or pass --creds USER:PASSWORD`,
            status,
          ),
        )
      }
      if (status !== 200) return yield* fail(yield* errorFor({ label: t.label, registry: t.registry, what: "token", creds }, sent))
      const bytes = yield* readBody(sent, 1024 * 1024, cfg.stallTimeoutMs).pipe(Effect.mapError(bodyError(t.label, "token answer")))
      const token = parseTokenResponse(new TextDecoder().decode(bytes), now)
      if (Either.isLeft(token)) return yield* fail(err("BadResponse", t.label, `${t.label}: ${token.left} (${realmHost})`))
      tokens.set(key, token.right)
      return token.right.token
    })

  /** The Authorization header the endpoint's current challenge calls for, if any. */
  const authorization = (ep: Endpoint, t: Target, scope: string, fresh: boolean) =>
    Effect.gen(function* () {
      const ch = ep.challenge
      if (!ch) return undefined
      const creds = yield* credentialsFor(t)
      if (ch.scheme === "basic") return creds && !creds.identityToken ? basicAuthorization(creds) : undefined
      if (ch.scheme === "bearer") return `Bearer ${yield* bearerToken(ep, t, ch, scope, creds, fresh)}`
      return undefined // a scheme we do not speak: try without
    })

  /** GET with redirects followed by hand; credentials never leave the registry's origin. */
  const follow = (ep: Endpoint, t: Target, url: RemoteUrl, headers: Record<string, string>) =>
    Effect.gen(function* () {
      let current = url
      for (let hop = 0; hop <= cfg.maxRedirects; hop++) {
        const foreign = !sameOrigin(current, ep.base)
        const sent = yield* http
          .send(current, { method: "GET", headers: foreign ? withoutCredentials(headers) : headers, insecureTls: foreign ? false : ep.insecureTls })
          .pipe(Effect.mapError((f) => networkError(t.label, f)))
        const status = sent.response.status
        if (!isRedirect(status)) return { ...sent, foreign } satisfies Followed
        const location = sent.response.headers.get("location")
        yield* discard(sent.response)
        if (!location) return yield* fail(err("BadResponse", t.label, `${t.label}: ${hostOf(current)} answered HTTP ${status} without a Location`, status))
        const next = resolveLocation(location, current)
        if (Either.isLeft(next)) {
          return yield* fail(
            err("BadResponse", t.label, `${t.label}: ${hostOf(current)} redirected to a place als will not follow: ${next.left} (the Location of its HTTP ${status} answer)`, status),
          )
        }
        current = next.right
      }
      return yield* fail(err("BadResponse", t.label, `${t.label}: more than ${cfg.maxRedirects} redirects from ${url}`))
    })

  /** An authenticated GET of a manifest or blob; a 401 with a new challenge is answered once. */
  const request = (t: Target, kind: "manifests" | "blobs", selector: string, extra: Record<string, string>) =>
    Effect.gen(function* () {
      const ep = yield* endpointFor(t.host, t.label)
      const url = yield* Either.mapLeft(
        parseRemoteUrl(`${ep.base}/v2/${t.repository}/${kind}/${selector}`),
        (why) => err("BadResponse", t.label, `${t.label}: cannot build a request URL: ${why}`),
      )
      const scope = pullScope(t.repository)
      const headers = (auth: string | undefined): Record<string, string> => ({ ...ua, ...extra, ...(auth ? { authorization: auth } : {}) })
      let auth = yield* authorization(ep, t, scope, false)
      let sent = yield* follow(ep, t, url, headers(auth))
      if (sent.response.status === 401 && !sent.foreign) {
        const ch = pickChallenge(parseWwwAuthenticate(sent.response.headers.get("www-authenticate") ?? ""))
        const creds = yield* credentialsFor(t)
        // the same Basic credentials, or none at all, would only be refused again
        const worthRetrying = ch !== undefined && (ch.scheme === "bearer" || (ch.scheme === "basic" && auth === undefined && creds !== undefined))
        if (worthRetrying) {
          yield* discard(sent.response)
          ep.challenge = ch
          auth = yield* authorization(ep, t, ch.params.scope || scope, true)
          sent = yield* follow(ep, t, url, headers(auth))
        }
      }
      const status = sent.response.status
      if (status === 200 || status === 206) return sent
      const creds = yield* credentialsFor(t)
      return yield* fail(
        yield* errorFor(
          {
            label: t.label,
            registry: t.registry,
            what: kind === "manifests" ? "manifest" : "blob",
            repository: t.repository,
            digest: selector,
            creds,
            foreign: sent.foreign,
          },
          sent,
        ),
      )
    })

  return { endpointFor, request }
}

export type Session = ReturnType<typeof makeSession>
