/**
 * Where a pull takes an image from: a registry, or (for air-gapped hosts) a local OCI layout
 * or docker-archive. The pull workflow sees only this port, so every source gets the same
 * verification, events and store result.
 */
import { Effect } from "effect"
import type { Digest } from "../domain/Digest.ts"
import type { Platform } from "../domain/Platform.ts"
import { formatReference, parseReference, type Reference, referenceName } from "../domain/Reference.ts"
import { RegistryClient } from "../registry/RegistryClient.ts"

export interface SourceLayer {
  readonly digest: Digest
  readonly size: number
  readonly mediaType: string
  readonly annotations: Readonly<Record<string, string>>
  /** from the image config's rootfs.diff_ids, paired by position */
  readonly diffId: Digest
}

export interface SourceImage {
  /** the digest the name resolved to first (an index for multi-arch images) */
  readonly indexDigest?: Digest | undefined
  readonly manifestDigest: Digest
  readonly manifestMediaType: string
  readonly platform: string
  readonly configDigest: Digest
  readonly layers: ReadonlyArray<SourceLayer>
}

export interface SourceBlob {
  readonly size?: number | undefined
  readonly body: AsyncIterable<Uint8Array>
}

export interface ImageSource {
  /** the `:ref` name podman will look the layers up under */
  readonly name: string
  /** how the user wrote it, for messages */
  readonly display: string
  readonly resolve: (platform: Platform) => Effect.Effect<SourceImage, unknown>
  readonly blob: (digest: Digest, opts?: { readonly offset?: number }) => Effect.Effect<SourceBlob, unknown>
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
