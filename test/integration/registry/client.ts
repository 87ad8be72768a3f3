/** Builds a RegistryClient over the live transport for the integration tests. */
import { Effect, Either, Layer } from "effect"
import { parseReference, type Reference } from "../../../src/domain/Reference.ts"
import { Keychain, type KeychainOptions } from "../../../src/registry/Keychain.ts"
import { RegistryClient } from "../../../src/registry/RegistryClient.ts"
import { defaultRegistryConfig, RegistryConfig, type RegistryConfigShape } from "../../../src/registry/RegistryConfig.ts"
import { RegistryError } from "../../../src/registry/RegistryError.ts"
import { RegistryTransport } from "../../../src/registry/RegistryTransport.ts"

export interface ClientOptions {
  readonly keychain?: KeychainOptions
  readonly config?: Partial<RegistryConfigShape>
  readonly transport?: Layer.Layer<RegistryTransport>
}

export const clientLayer = (options: ClientOptions = {}) =>
  RegistryClient.Default.pipe(
    Layer.provide(options.transport ?? RegistryTransport.Live),
    Layer.provide(options.keychain ? Keychain.layer(options.keychain) : Keychain.anonymous),
    Layer.provide(Layer.succeed(RegistryConfig, { ...defaultRegistryConfig, tlsVerify: false, ...options.config })),
  )

/** Runs `f` with one client; the result or the failure, never a throw for expected errors. */
export const withClient = <A, E>(
  f: (client: RegistryClient) => Effect.Effect<A, E>,
  options: ClientOptions = {},
): Promise<Either.Either<A, E | RegistryError>> =>
  Effect.runPromise(
    Effect.either(Effect.flatMap(RegistryClient, f).pipe(Effect.provide(clientLayer(options)))) as Effect.Effect<
      Either.Either<A, E | RegistryError>
    >,
  )

export const ok = <A, E>(r: Either.Either<A, E>): A => {
  if (Either.isLeft(r)) throw new Error(`expected success, got ${String((r.left as { message?: string }).message ?? r.left)}`)
  return r.right
}

export const failure = <A, E>(r: Either.Either<A, E>): RegistryError => {
  if (Either.isRight(r)) throw new Error("expected a failure")
  if (!(r.left instanceof RegistryError)) throw new Error(`expected a RegistryError, got ${String(r.left)}`)
  return r.left
}

export const ref = (s: string): Reference => parseReference(s)

export const sha256Of = async (body: AsyncIterable<Uint8Array>) => {
  const h = new Bun.CryptoHasher("sha256")
  let n = 0
  for await (const c of body) {
    h.update(c)
    n += c.byteLength
  }
  return { digest: `sha256:${h.digest("hex")}`, bytes: n }
}
