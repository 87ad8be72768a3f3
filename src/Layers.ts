/**
 * Composition, once: which implementation of each service a command runs with.
 */
import { Context, Effect, Layer, Option } from "effect"
import { withPodmanRegistries } from "./config/PodmanRegistries.ts"
import { EventLog, Ids, IdsLive, makeEventLogFile } from "./events/EventLog.ts"
import { Journal, makeJournal, Reporter } from "./events/Journal.ts"
import { Keychain } from "./registry/Keychain.ts"
import { RegistryClient } from "./registry/RegistryClient.ts"
import { defaultRegistryConfig, RegistryConfig, type RegistryConfigShape } from "./registry/RegistryConfig.ts"
import { RegistryTransport } from "./registry/RegistryTransport.ts"
import { LayerStore, makeLayerStore } from "./store/LayerStore.ts"
import { StoreConfig, storeConfigFor } from "./store/StoreConfig.ts"
import { loadSyscalls, Syscalls } from "./sys/Syscalls.ts"

/**
 * The store's services on top of `base` (an id source and a reporter), made one after the
 * other by their constructors. Not `Layer.mergeAll` of their layers: building a layer costs
 * ~1 ms in a fresh process (memo map, scope, a fiber per merged layer), 50 ms of CPU for the
 * whole set, which every command paid before its first event (BENCHMARKS.md).
 */
export const makeStoreContext = (root: string, base: Context.Context<Ids | Reporter>) =>
  Effect.gen(function*() {
    const syscalls = yield* Effect.promise(loadSyscalls)
    const withSys = base.pipe(Context.add(StoreConfig, storeConfigFor(root)), Context.add(Syscalls, syscalls))
    const withLog = Context.add(withSys, EventLog, yield* Effect.provide(makeEventLogFile(root), withSys))
    const withJournal = Context.add(withLog, Journal, Journal.make(yield* Effect.provide(makeJournal, withLog)))
    return Context.add(withJournal, LayerStore, LayerStore.make(yield* Effect.provide(makeLayerStore, withJournal)))
  })

/**
 * Everything a workflow on the store at `root` needs, reporting events to `reporter`. `ids`
 * is a seam for `als pull --record` and `als replay`, which tape the ids a pull takes.
 */
export const storeLayer = (root: string, reporter: Layer.Layer<Reporter>, ids: Layer.Layer<Ids> = IdsLive) =>
  Layer.scopedContext(
    Effect.gen(function*() {
      const base = Context.merge(yield* Layer.build(ids), yield* Layer.build(reporter))
      return yield* makeStoreContext(root, base)
    }),
  )

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
