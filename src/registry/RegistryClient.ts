/**
 * The OCI distribution client: resolves a reference to a verified manifest, config and layer
 * list, and streams blobs. The request chain (ping → challenge → Basic or Bearer → redirects)
 * is Session.ts, the choice of image PlatformPolicy.ts, ranged bodies RangedBlob.ts, the
 * messages Messages.ts; everything reaches the network through RegistryTransport.
 */
import { Effect, Either } from "effect"
import { type Digest, isDigest } from "../domain/Digest.ts"
import { describeLayer, type LayerDescriptor } from "../domain/LayerDescriptor.ts"
import { configPlatform, type ImageConfig, manifestMediaTypes, type ParsedManifest, parseImageConfig, parseManifest } from "../domain/Manifest.ts"
import { formatPlatform, type Platform } from "../domain/Platform.ts"
import { manifestSelector, type Reference, registryHost } from "../domain/Reference.ts"
import { discard, makeHttp, readBody } from "./Http.ts"
import { Keychain } from "./Keychain.ts"
import { bodyError, err } from "./Messages.ts"
import { chooseIndexEntry, currentPlatform, pullableImage } from "./PlatformPolicy.ts"
import { type BlobStream, blobBody, rangeAnswer, rangeHeaders } from "./RangedBlob.ts"
import { RegistryConfig } from "./RegistryConfig.ts"
import type { RegistryError } from "./RegistryError.ts"
import { RegistryTransport } from "./RegistryTransport.ts"
import { makeSession, target } from "./Session.ts"
import { verifyContent } from "./Verify.ts"

export interface ResolveOptions {
  /** the platform to pick from an index; this machine's by default */
  readonly platform?: Platform | undefined
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
  readonly layers: ReadonlyArray<LayerDescriptor>
}

export interface FetchedManifest {
  readonly digest: Digest
  readonly mediaType: string
  readonly bytes: Uint8Array
  readonly manifest: ParsedManifest
}

export interface PingResult {
  readonly host: string
  readonly scheme: "https" | "http"
  /** the auth scheme the registry asks for, or "none" */
  readonly auth: string
}

const manifestAccept = manifestMediaTypes.join(", ")

const make = Effect.gen(function* () {
  const transport = yield* RegistryTransport
  const keychain = yield* Keychain
  const cfg = yield* RegistryConfig
  const session = makeSession(makeHttp(transport.fetch, cfg), keychain, cfg)

  const fail = (e: RegistryError) => Effect.fail(e)

  const ping = Effect.fn("RegistryClient.ping")(function* (registry: string) {
    const host = registryHost(registry)
    const ep = yield* session.endpointFor(host, registry)
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
    const sent = yield* session.request(t, "manifests", sel, { accept: manifestAccept })
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
      const chosen = yield* chooseIndexEntry(t.label, top.manifest.manifests, wanted)
      image = yield* fetchManifest(ref, chosen.entry.digest, chosen.entry.size)
      indexDigest = top.digest
      platform = chosen.platform
    }
    const m = yield* pullableImage(t.label, image.digest, image.manifest, cfg.maxConfigBytes)
    const sent = yield* session.request(t, "blobs", m.config.digest, {})
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
      layers: m.layers.map((l, i) => describeLayer({ ...l, diffId: diffIds[i]! })),
    }
    return resolved
  })

  /**
   * Streams a blob from `offset` (a Range request, for resuming). The caller verifies the
   * digest as it consumes the body: only it sees all the bytes.
   */
  const blob = Effect.fn("RegistryClient.blob")(function* (ref: Reference, digest: Digest, options?: { readonly offset?: number; readonly length?: number }) {
    const t = target(ref)
    const offset = Math.max(0, Math.floor(options?.offset ?? 0))
    // a length bounds the request and cuts the body there (lazy chunk reads: RangedBlob.ts)
    const length = options?.length !== undefined ? Math.max(0, Math.floor(options.length)) : undefined
    const sent = yield* session.request(t, "blobs", digest, rangeHeaders(offset, length))
    const answer = rangeAnswer(t.label, digest, sent, offset)
    if (Either.isLeft(answer)) {
      yield* discard(sent.response)
      return yield* fail(answer.left)
    }
    const stream: BlobStream = { size: answer.right.size, offset, body: blobBody(t.label, digest, sent, answer.right.skip, cfg.stallTimeoutMs, length), timeoutMs: cfg.stallTimeoutMs }
    return stream
  })

  return { ping, fetchManifest, resolve, blob } as const
})

export class RegistryClient extends Effect.Service<RegistryClient>()("als/RegistryClient", { effect: make }) {}
