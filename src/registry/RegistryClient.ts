/**
 * The OCI distribution client: ping → challenge → Basic or Bearer → request, with retries,
 * redirects and verification, all through RegistryTransport. It resolves a reference to a
 * verified manifest, config and layer list, and streams blobs.
 */
import process from "node:process"
import { Clock, Effect, Either } from "effect"
import { type Digest, isDigest } from "../domain/Digest.ts"
import {
  configPlatform,
  entryPlatform,
  type ImageConfig,
  isConfigMediaType,
  isIndexMediaType,
  layerCompression,
  manifestMediaTypes,
  type ParsedManifest,
  parseImageConfig,
  parseManifest,
} from "../domain/Manifest.ts"
import { choosePlatform, formatPlatform, hostPlatform, type Platform } from "../domain/Platform.ts"
import { displayReference, manifestSelector, type Reference, registryHost } from "../domain/Reference.ts"
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
import {
  type BodyFailure,
  bodyChunks,
  discard,
  isRedirect,
  makeHttp,
  type NetFailure,
  readBody,
  readErrorText,
  sameOrigin,
  type Sent,
  withoutCredentials,
} from "./Http.ts"
import { type Credentials, Keychain } from "./Keychain.ts"
import { RegistryConfig } from "./RegistryConfig.ts"
import { describeDetails, parseErrorBody, RegistryError, type RegistryErrorCode } from "./RegistryError.ts"
import { RegistryTransport } from "./RegistryTransport.ts"
import { verifyContent } from "./Verify.ts"

export interface ResolveOptions {
  /** the platform to pick from an index; this machine's by default */
  readonly platform?: Platform | undefined
}

export interface ResolvedLayer {
  readonly digest: Digest
  readonly size: number
  readonly mediaType: string
  readonly annotations: Readonly<Record<string, string>>
  readonly diffId: Digest
}

export interface ResolvedImage {
  readonly ref: Reference
  /** the index the reference named, when it named one */
  readonly indexDigest?: Digest | undefined
  readonly manifestDigest: Digest
  readonly manifestMediaType: string
  /** `os/arch[/variant]` of the chosen image */
  readonly platform: string
  readonly configDigest: Digest
  readonly config: ImageConfig
  readonly layers: ReadonlyArray<ResolvedLayer>
}

export interface FetchedManifest {
  readonly digest: Digest
  readonly mediaType: string
  readonly bytes: Uint8Array
  readonly manifest: ParsedManifest
}

export interface BlobStream {
  /** the whole blob's size, when the registry says */
  readonly size?: number | undefined
  /** where `body` starts in the blob */
  readonly offset: number
  /** the bytes from `offset` on; a broken or stalled transfer throws a RegistryError */
  readonly body: AsyncIterable<Uint8Array>
}

export interface PingResult {
  readonly host: string
  readonly scheme: "https" | "http"
  /** the auth scheme the registry asks for, or "none" */
  readonly auth: string
}

/** What the client learned about a registry host by pinging `/v2/`. */
interface Endpoint {
  readonly host: string
  readonly base: string
  readonly insecureTls: boolean
  /** updated when a 401 brings a new challenge */
  challenge: Challenge | undefined
}

interface Target {
  readonly ref: Reference
  readonly label: string
  readonly registry: string
  readonly host: string
  readonly repository: string
}

/** A response after redirects; `foreign` when another origin gave it. */
type Followed = Sent & { readonly foreign: boolean }

const target = (ref: Reference): Target => ({
  ref,
  label: displayReference(ref),
  registry: ref.registry,
  host: registryHost(ref),
  repository: ref.repository,
})

const err = (code: RegistryErrorCode, ref: string, message: string, status?: number) =>
  new RegistryError({ code, ref, message, status })

const hostOf = (url: string) => {
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

const bodyError =
  (label: string, what: string) =>
  (f: BodyFailure): RegistryError => {
    switch (f._tag) {
      case "TooLarge":
        return err("InvalidManifest", label, `${label}: the ${what} is larger than ${f.limit} bytes; refusing to hold it in memory`)
      case "Stalled":
        return err("Timeout", label, `${label}: the ${what} download stalled for ${f.ms / 1000} s; try again`)
      case "Broken":
        return err(f.kind === "timeout" ? "Timeout" : "Unreachable", label, `${label}: the connection broke while reading the ${what} (${f.detail}); try again`)
    }
  }

interface StatusContext {
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

const manifestAccept = manifestMediaTypes.join(", ")

/** This machine's platform, the default for `resolve`. */
export const currentPlatform = (): Platform => {
  const armVersion = (process.config?.variables as { arm_version?: unknown } | undefined)?.arm_version
  return hostPlatform(process.arch, armVersion === undefined ? undefined : String(armVersion))
}

const make = Effect.gen(function* () {
  const transport = yield* RegistryTransport
  const keychain = yield* Keychain
  const cfg = yield* RegistryConfig
  const http = makeHttp(transport.fetch, cfg)
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

  const probe = (host: string, scheme: "https" | "http", insecureTls: boolean) =>
    http.send(`${scheme}://${host}/v2/`, { method: "GET", headers: ua, insecureTls })

  /** Pings a host once: which scheme it speaks and which auth it wants. */
  const endpointFor = (host: string, label: string) =>
    Effect.gen(function* () {
      const known = endpoints.get(host)
      if (known) return known
      const insecure = !cfg.tlsVerify || cfg.insecureHosts.includes(host)
      let scheme: "https" | "http" = "https"
      let result = yield* Effect.either(probe(host, "https", insecure))
      if (Either.isLeft(result) && insecure) {
        // podman's order for an insecure registry: https without verification, then http
        const https = result.left
        scheme = "http"
        result = yield* Effect.either(probe(host, "http", false))
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
      const req = yield* Effect.try({
        try: () => tokenRequest(ch, scope, creds),
        catch: () => err("BadResponse", t.label, `${t.label}: ${ep.host} asks for a token from an invalid realm ${JSON.stringify(ch.params.realm)}`),
      })
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
  const follow = (ep: Endpoint, t: Target, url: string, headers: Record<string, string>) =>
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
        current = new URL(location, current).toString()
      }
      return yield* fail(err("BadResponse", t.label, `${t.label}: more than ${cfg.maxRedirects} redirects from ${url}`))
    })

  /** An authenticated GET of a manifest or blob; a 401 with a new challenge is answered once. */
  const request = (t: Target, kind: "manifests" | "blobs", selector: string, extra: Record<string, string>) =>
    Effect.gen(function* () {
      const ep = yield* endpointFor(t.host, t.label)
      const url = `${ep.base}/v2/${t.repository}/${kind}/${selector}`
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

  const ping = Effect.fn("RegistryClient.ping")(function* (registry: string) {
    const host = registryHost(registry)
    const ep = yield* endpointFor(host, registry)
    const result: PingResult = {
      host,
      scheme: ep.base.startsWith("https:") ? "https" : "http",
      auth: ep.challenge?.scheme ?? "none",
    }
    return result
  })

  /** Fetches a manifest by tag or digest; by digest, the bytes must hash to it. */
  const fetchManifest = Effect.fn("RegistryClient.fetchManifest")(function* (
    ref: Reference,
    selector?: string,
    expectedSize?: number,
  ) {
    const t = target(ref)
    const sel = selector ?? manifestSelector(ref)
    const sent = yield* request(t, "manifests", sel, { accept: manifestAccept })
    const bytes = yield* readBody(sent, cfg.maxManifestBytes, cfg.stallTimeoutMs).pipe(Effect.mapError(bodyError(t.label, "manifest")))
    const digest = yield* verifyContent("manifest", t.label, bytes, {
      digest: isDigest(sel) ? sel : undefined,
      size: expectedSize,
    })
    const parsed = parseManifest(bytes, sent.response.headers.get("content-type"))
    if (Either.isLeft(parsed)) return yield* fail(err(parsed.left.kind, t.label, `${t.label}: ${parsed.left.reason}`))
    const fetched: FetchedManifest = { digest, mediaType: parsed.right.mediaType, bytes, manifest: parsed.right }
    return fetched
  })

  const resolve = Effect.fn("RegistryClient.resolve")(function* (ref: Reference, options?: ResolveOptions) {
    const t = target(ref)
    const wanted = options?.platform ?? currentPlatform()
    const top = yield* fetchManifest(ref)
    let image = top
    let indexDigest: Digest | undefined
    let platform: string | undefined
    if (top.manifest.kind === "index") {
      const entries = top.manifest.manifests.map((e) => ({ entry: e, platform: entryPlatform(e) }))
      const chosen = choosePlatform(entries, wanted)
      if (!chosen) {
        const available = entries
          .filter((e) => e.platform && e.platform.os !== "unknown" && !isIndexMediaType(e.entry.mediaType))
          .map((e) => formatPlatform(e.platform!))
        return yield* fail(
          err(
            "PlatformNotFound",
            t.label,
            `${t.label}: no image for ${formatPlatform(wanted)}; the index has ${available.length ? available.join(", ") : "no platforms"}; pass --platform to choose one`,
          ),
        )
      }
      if (isIndexMediaType(chosen.entry.mediaType)) {
        return yield* fail(err("InvalidManifest", t.label, `${t.label}: the index entry for ${formatPlatform(chosen.platform!)} is itself an index; nested indexes are not supported`))
      }
      image = yield* fetchManifest(ref, chosen.entry.digest, chosen.entry.size)
      indexDigest = top.digest
      platform = formatPlatform(chosen.platform!)
    }
    const m = image.manifest
    if (m.kind !== "image") {
      return yield* fail(err("InvalidManifest", t.label, `${t.label}: ${image.digest} is an index where an image manifest was expected`))
    }
    if (!isConfigMediaType(m.config.mediaType)) {
      return yield* fail(
        err("UnsupportedMediaType", t.label, `${t.label}: config media type ${JSON.stringify(m.config.mediaType)} is not a container image config (an OCI artifact?); als pulls container images only`),
      )
    }
    for (const [i, l] of m.layers.entries()) {
      if (layerCompression(l.mediaType) === undefined) {
        return yield* fail(
          err("UnsupportedMediaType", t.label, `${t.label}: layer ${i} (${l.digest}) has media type ${JSON.stringify(l.mediaType)}, which is not a layer tar als can unpack`),
        )
      }
    }
    if (m.config.size > cfg.maxConfigBytes) {
      return yield* fail(err("InvalidManifest", t.label, `${t.label}: the image config is ${m.config.size} bytes, more than the ${cfg.maxConfigBytes} allowed`))
    }
    const sent = yield* request(t, "blobs", m.config.digest, {})
    const configBytes = yield* readBody(sent, cfg.maxConfigBytes, cfg.stallTimeoutMs).pipe(Effect.mapError(bodyError(t.label, "image config")))
    yield* verifyContent("image config", t.label, configBytes, { digest: m.config.digest, size: m.config.size })
    const config = parseImageConfig(configBytes)
    if (Either.isLeft(config)) return yield* fail(err("InvalidManifest", t.label, `${t.label}: ${config.left.reason}`))
    const diffIds = config.right.rootfs.diff_ids
    if (diffIds.length !== m.layers.length) {
      return yield* fail(
        err("InvalidManifest", t.label, `${t.label}: the manifest lists ${m.layers.length} layers but the config lists ${diffIds.length} diff_ids; the image is broken, push it again`),
      )
    }
    const resolved: ResolvedImage = {
      ref,
      indexDigest,
      manifestDigest: image.digest,
      manifestMediaType: image.mediaType,
      platform: platform ?? formatPlatform(configPlatform(config.right)),
      configDigest: m.config.digest,
      config: config.right,
      layers: m.layers.map((l, i) => ({
        digest: l.digest,
        size: l.size,
        mediaType: l.mediaType,
        annotations: l.annotations ?? {},
        diffId: diffIds[i],
      })),
    }
    return resolved
  })

  /**
   * Streams a blob from `offset` (a Range request, for resuming). The caller verifies the
   * digest as it consumes the body: only it sees all the bytes.
   */
  const blob = Effect.fn("RegistryClient.blob")(function* (ref: Reference, digest: Digest, options?: { readonly offset?: number }) {
    const t = target(ref)
    const offset = Math.max(0, Math.floor(options?.offset ?? 0))
    const sent = yield* request(t, "blobs", digest, offset > 0 ? { range: `bytes=${offset}-` } : {})
    const res = sent.response
    let size: number | undefined
    let skip = 0
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "")
      if (!m || Number(m[1]) !== offset) {
        yield* discard(res)
        return yield* fail(err("BadResponse", t.label, `${t.label}: ${hostOf(sent.url)} answered a range request for blob ${digest} with Content-Range ${JSON.stringify(res.headers.get("content-range"))}`))
      }
      size = m[3] === "*" ? undefined : Number(m[3])
    } else {
      const length = res.headers.get("content-length")
      size = length !== null && /^\d+$/.test(length) ? Number(length) : undefined
      skip = offset // the server ignored Range: drop the bytes the caller already has
      if (size !== undefined && offset > size) {
        yield* discard(res)
        return yield* fail(err("BadResponse", t.label, `${t.label}: offset ${offset} is past the end of blob ${digest} (${size} bytes)`))
      }
    }
    const toError = bodyError(t.label, `blob ${digest}`)
    const chunks = bodyChunks(res, sent.controller, cfg.stallTimeoutMs)
    async function* body(): AsyncGenerator<Uint8Array, void, undefined> {
      let toSkip = skip
      try {
        for await (const chunk of chunks) {
          if (toSkip >= chunk.byteLength) {
            toSkip -= chunk.byteLength
            continue
          }
          yield toSkip > 0 ? chunk.subarray(toSkip) : chunk
          toSkip = 0
        }
      } catch (e) {
        throw (e as BodyFailure)?._tag ? toError(e as BodyFailure) : e
      }
    }
    const stream: BlobStream = { size, offset, body: body() }
    return stream
  })

  return { ping, fetchManifest, resolve, blob } as const
})

export class RegistryClient extends Effect.Service<RegistryClient>()("als/RegistryClient", { effect: make }) {}
