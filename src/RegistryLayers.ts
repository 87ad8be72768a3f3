/**
 * Composition of the registry client, once, for `als pull`, `als serve` and `als replay` (the
 * store's services: Layers.ts).
 */
import { Effect, Layer, Option } from "effect"
import { withPodmanRegistries } from "./config/PodmanRegistries.ts"
import { Keychain } from "./registry/Keychain.ts"
import { RegistryClient } from "./registry/RegistryClient.ts"
import { defaultRegistryConfig, RegistryConfig, type RegistryConfigShape } from "./registry/RegistryConfig.ts"
import { RegistryTransport } from "./registry/RegistryTransport.ts"

/**
 * The registry client over `transport` (the network, a recording's tee, or a replay), with its
 * keychain and settings: `als pull`, `als serve` and `als replay` all assemble it here.
 */
export const registryClientLayer = <E>(
  transport: Layer.Layer<RegistryTransport>,
  keychain: Layer.Layer<Keychain, E>,
  config: Partial<RegistryConfigShape>,
) =>
  RegistryClient.Default.pipe(
    Layer.provide(Layer.mergeAll(transport, keychain, Layer.succeed(RegistryConfig, { ...defaultRegistryConfig, ...config }))),
  )

/** What the command line says about reaching registries (made once podman's configuration is read). */
export interface RegistrySettings {
  readonly tlsVerify: boolean
  /** `--creds USER:PASSWORD`, complete */
  readonly creds?: string | undefined
  readonly authfile?: string | undefined
  /** `--timeout` in seconds: for answers and for stalled downloads */
  readonly timeoutS?: number | undefined
  /** further settings (e.g. whether lock waits are told) */
  readonly config?: Partial<RegistryConfigShape> | undefined
}

/**
 * The registry client as podman reaches registries: registries.conf (insecure hosts, which
 * registries --creds is for, and the sources' rewriting and mirrors) and certs.d (or
 * `--cert-dir`) on top of `transport`. `settings` runs once the configuration is read (it may
 * ask for a password).
 */
export const podmanRegistryLayer = <E>(
  certDir: string | undefined,
  transport: Layer.Layer<RegistryTransport>,
  settings: Effect.Effect<RegistrySettings, E>,
) =>
  withPodmanRegistries(Option.fromNullable(certDir), transport, (t, insecureHosts, credsFor) =>
    Layer.unwrapEffect(Effect.map(settings, (s) =>
      registryClientLayer(t, Keychain.layer({ creds: s.creds, authfile: s.authfile, credsFor }), {
        tlsVerify: s.tlsVerify,
        insecureHosts,
        ...(s.timeoutS !== undefined ? { requestTimeoutMs: s.timeoutS * 1000, stallTimeoutMs: s.timeoutS * 1000 } : {}),
        ...s.config,
      }))))
