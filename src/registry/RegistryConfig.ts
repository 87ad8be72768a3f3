/**
 * Knobs of the registry client. A Context.Reference: every field has a default, and a
 * command overrides what its flags set (`--tls-verify=false` → `tlsVerify: false`).
 */
import { Context } from "effect"
import process from "node:process"

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
  /**
   * How long a request may wait for a response's headers, connecting and retries included: a
   * timed-out attempt is not retried past it (`--timeout`).
   */
  readonly requestTimeoutMs: number
  /** one attempt's wait, when shorter than requestTimeoutMs (so that a timeout can be retried) */
  readonly attemptTimeoutMs?: number | undefined
  /**
   * The bound on reading a body (`--timeout`): a manifest, token, config or error body must
   * arrive whole within it; a blob must deliver at least minBytesPerWindow in every such window.
   */
  readonly stallTimeoutMs: number
  /** what a body must deliver per stallTimeoutMs to count as moving (a trickle is a stall) */
  readonly minBytesPerWindow: number
  /** after this long without an answer, say what we wait for (once per wait) */
  readonly waitNoticeMs: number
  /** where that is said; stderr by default */
  readonly onWait?: ((what: string, waitedMs: number, limitMs: number) => void) | undefined
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
  minBytesPerWindow: 1024,
  waitNoticeMs: 5_000,
  onWait: (what, waitedMs, limitMs) => {
    process.stderr.write(`als: still waiting for ${what} (${Math.round(waitedMs / 1000)} s; giving up after ${Math.round(limitMs / 1000)} s, see --timeout)\n`)
  },
  maxRedirects: 10,
  maxManifestBytes: 4 * 1024 * 1024,
  maxConfigBytes: 16 * 1024 * 1024,
  userAgent: "als/0.1",
}

export class RegistryConfig extends Context.Reference<RegistryConfig>()("als/RegistryConfig", {
  defaultValue: () => defaultRegistryConfig,
}) {}
