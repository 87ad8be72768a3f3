/**
 * Knobs of the registry client. A Context.Reference: every field has a default, and a
 * command overrides what its flags set (`--tls-verify=false` → `tlsVerify: false`).
 */
import { Context } from "effect"

export interface RegistryConfigShape {
  /** podman's --tls-verify; false allows plain HTTP and unverified TLS for every registry */
  readonly tlsVerify: boolean
  /** registries treated as if --tls-verify=false were given (registries.conf `insecure = true`) */
  readonly insecureHosts: ReadonlyArray<string>
  /** further attempts after a 5xx, a 429, a reset connection or a timeout on a GET */
  readonly retries: number
  /** first backoff; doubles on each attempt */
  readonly retryBaseMs: number
  /** cap on any wait between attempts, Retry-After included */
  readonly retryMaxDelayMs: number
  /** how long to wait for a response's headers */
  readonly requestTimeoutMs: number
  /** how long a body may go without delivering a byte */
  readonly stallTimeoutMs: number
  readonly maxRedirects: number
  /** manifests and indexes are held in memory: refuse bigger ones (containers/image uses 4 MiB) */
  readonly maxManifestBytes: number
  /** image configs are held in memory too */
  readonly maxConfigBytes: number
  readonly userAgent: string
}

export const defaultRegistryConfig: RegistryConfigShape = {
  tlsVerify: true,
  insecureHosts: [],
  retries: 3,
  retryBaseMs: 250,
  retryMaxDelayMs: 10_000,
  requestTimeoutMs: 30_000,
  stallTimeoutMs: 60_000,
  maxRedirects: 10,
  maxManifestBytes: 4 * 1024 * 1024,
  maxConfigBytes: 16 * 1024 * 1024,
  userAgent: "als/0.1",
}

export class RegistryConfig extends Context.Reference<RegistryConfig>()("als/RegistryConfig", {
  defaultValue: () => defaultRegistryConfig,
}) {}
