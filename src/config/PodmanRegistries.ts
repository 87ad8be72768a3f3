/**
 * Everything a registry pull takes from podman's configuration, read once per command:
 * registries.conf (short names, rewriting, mirrors, blocked), the hosts it marks insecure,
 * and where certs.d directories are looked for (`--cert-dir` overrides them all).
 */
import { Effect, Layer, Option } from "effect"
import * as os from "node:os"
import type { RegistryTransport } from "../registry/RegistryTransport.ts"
import { RegistriesPolicy, type RegistriesPolicyShape } from "./ConfiguredSource.ts"
import type { CertsEnv } from "./CertsDir.ts"
import { credsFor, insecureHosts } from "./PullSources.ts"
import type { RegistriesConfError } from "./RegistriesConf.ts"
import { type ConfEnv, hostConfEnv, loadRegistriesConf } from "./RegistriesConfFiles.ts"
import { withCertsDir } from "./TlsTransport.ts"

export interface PodmanRegistries {
  readonly policy: RegistriesPolicyShape
  readonly insecureHosts: ReadonlyArray<string>
  /** the registries --creds may go to (not mirrors on other hosts) */
  readonly credsFor: (registry: string) => boolean
  readonly certs: CertsEnv
}

export const podmanRegistries = (
  certDir: string | undefined,
  env: ConfEnv = hostConfEnv(),
  tty: boolean = Boolean(process.stdin.isTTY && process.stdout.isTTY),
): Effect.Effect<PodmanRegistries, RegistriesConfError> =>
  Effect.map(loadRegistriesConf(env), (conf) => ({
    policy: { conf, tty },
    insecureHosts: insecureHosts(conf),
    credsFor: credsFor(conf),
    certs: { certDir, home: env.home || os.homedir() },
  }))

/**
 * The registry client layer `client` builds, given podman's configuration: requests carry
 * certs.d material, the insecure hosts are known, and sources follow registries.conf.
 */
export const withPodmanRegistries = <A, E, R>(
  certDir: Option.Option<string>,
  transport: Layer.Layer<RegistryTransport>,
  client: (
    transport: Layer.Layer<RegistryTransport>,
    insecureHosts: ReadonlyArray<string>,
    credsFor: (registry: string) => boolean,
  ) => Layer.Layer<A, E, R>,
) =>
  Layer.unwrapEffect(
    Effect.map(podmanRegistries(Option.getOrUndefined(certDir)), (p) =>
      Layer.merge(Layer.succeed(RegistriesPolicy, p.policy), client(withCertsDir(p.certs, transport), p.insecureHosts, p.credsFor))),
  )
