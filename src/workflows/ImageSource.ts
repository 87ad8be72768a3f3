/**
 * Where a pull takes an image from: a registry, or (for air-gapped hosts) a local OCI layout
 * or docker-archive. The pull workflow sees only this port, so every source gets the same
 * verification, events and store result.
 */
import { Effect } from "effect"
import type { Digest } from "../domain/Digest.ts"
import type { LayerDescriptor } from "../domain/LayerDescriptor.ts"
import type { Event } from "../events/Events.ts"
import type { Platform } from "../domain/Platform.ts"
import { formatReference, parseReference, type Reference, referenceName } from "../domain/Reference.ts"
import { RegistryClient } from "../registry/RegistryClient.ts"
import type { RegistryError } from "../registry/RegistryError.ts"
import type { SourceError } from "../sources/SourceError.ts"

export interface SourceImage {
  /** the digest the name resolved to first (an index for multi-arch images) */
  readonly indexDigest?: Digest | undefined
  readonly manifestDigest: Digest
  readonly manifestMediaType: string
  readonly platform: string
  readonly configDigest: Digest
  readonly layers: ReadonlyArray<LayerDescriptor>
}

/** The event a resolved image is logged as (by `als pull` and `als serve` alike). */
export const manifestResolved = (ref: string, image: SourceImage): Event => ({
  _tag: "ManifestResolved",
  ref,
  manifestDigest: image.manifestDigest,
  mediaType: image.manifestMediaType,
  platform: image.platform,
  configDigest: image.configDigest,
  layers: image.layers.map((l) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    diffId: l.diffId,
    ...(l.tocDigest ? { tocDigest: l.tocDigest } : {}),
  })),
})

export interface SourceBlob {
  readonly size?: number | undefined
  readonly body: AsyncIterable<Uint8Array>
  /** the --timeout the download runs under (a registry's): resumes share a deadline from it */
  readonly timeoutMs?: number | undefined
}

/** What a source fails with: the registry's errors, or a local layout's or archive's. */
export type ImageSourceError = RegistryError | SourceError

export interface ImageSource {
  /** the `:ref` name podman will look the layers up under */
  readonly name: string
  /** how the user wrote it, for messages */
  readonly display: string
  readonly resolve: (platform: Platform) => Effect.Effect<SourceImage, ImageSourceError>
  /** `length`: only that many bytes from `offset` (a bounded Range request; sources that ignore it give more) */
  readonly blob: (digest: Digest, opts?: { readonly offset?: number; readonly length?: number }) => Effect.Effect<SourceBlob, ImageSourceError>
  /** further `:ref` names to index once resolved (e.g. the name pinned to its digest) */
  readonly aliases: (image: SourceImage) => ReadonlyArray<string>
}

/**
 * An image podman will look up as `ref`, fetched from `from`: a mirror or the location
 * registries.conf rewrites it to, or `ref` itself.
 */
export const registryImageSource = (client: RegistryClient, ref: Reference, display: string, from: Reference = ref): ImageSource => ({
  name: formatReference(ref),
  display,
  resolve: (platform) => client.resolve(from, { platform }),
  blob: (digest, opts) => client.blob(from, digest, opts),
  // podman pulling `name@digest` asks the store for that name
  aliases: (image) => [
    `${referenceName(ref)}@${image.indexDigest ?? image.manifestDigest}`,
    `${referenceName(ref)}@${image.manifestDigest}`,
  ],
})

/** A registry image: `docker://` is optional, as with podman. */
export const registrySource = (input: string) =>
  Effect.gen(function*() {
    const client = yield* RegistryClient
    const ref = yield* Effect.try({ try: () => parseReference(input), catch: (e) => e })
    return registryImageSource(client, ref, input)
  })
