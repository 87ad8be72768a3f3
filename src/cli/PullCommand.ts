import { errLine } from "./errLine.ts"
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import { formatPlatform } from "../domain/Platform.ts"
import { Journal } from "../events/Journal.ts"
import { storeLayer } from "../Layers.ts"
import { podmanRegistryLayer } from "../RegistryLayers.ts"
import { parsePoolSpec } from "../pool/Pool.ts"
import { RegistryTransport } from "../registry/RegistryTransport.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { imageSourceFor } from "../sources/Sources.ts"
import { pullImage } from "../workflows/Pull.ts"
import { withRecording } from "../replay/Record.ts"
import * as opt from "./options.ts"
import { registryNotices, ReporterJson, ReporterPlain, ReporterQuiet, ReporterTty } from "./Reporters.ts"
import { LayerLockWait, lockWaitFor } from "../store/LayerLock.ts"
import { checkPullArgs, pullEach } from "./PullArgs.ts"
import { completeCreds } from "./Creds.ts"
import { safeText } from "../domain/SafeText.ts"

const refs = Args.text({ name: "REF" }).pipe(
  Args.withDescription(
    "image reference, as podman takes it (alpine, quay.io/x/y:tag, name@sha256:…), or a local image: " +
      "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N]",
  ),
  Args.atLeast(1),
)
const name = Options.text("name").pipe(
  Options.withDescription(
    "for a local image: the registry name podman will pull it as, which its layers are recorded under " +
      "(default: the image's own full name, else podman's name for it)",
  ),
  Options.optional,
)
const pool = Options.text("pool").pipe(
  Options.withDescription("a pool to probe after <root>/.pool: an ALS store or a CVMFS-style tree"),
  Options.repeated,
)
const platform = Options.text("platform").pipe(
  Options.withDescription("os/arch[/variant] to pick from a multi-arch image (default: this host's); not with --os or --arch"),
  Options.optional,
)
// podman's --os/--arch/--variant: each part alone, the others the host's (PlatformFlags.ts)
const osFlag = Options.text("os").pipe(
  Options.withDescription("use OS instead of this host's to pick from a multi-arch image (e.g. linux)"),
  Options.optional,
)
const arch = Options.text("arch").pipe(
  Options.withDescription("use ARCH instead of this host's architecture to pick from a multi-arch image (e.g. arm64)"),
  Options.optional,
)
const variant = Options.text("variant").pipe(
  Options.withDescription("use VARIANT instead of this host's to pick from a multi-arch image (e.g. v7); with --platform, only when it names none"),
  Options.optional,
)
const quiet = Options.boolean("quiet").pipe(
  Options.withAlias("q"),
  Options.withDescription("print errors only, and each pulled image's manifest digest on stdout (podman prints the image ID)"),
)
// podman's spelling: --tls-verify[=true|false], default true (bin/ turns a bare flag into =true)
export const tlsVerify = Options.choice("tls-verify", ["true", "false"]).pipe(
  Options.withDescription("require HTTPS with a verified certificate; --tls-verify=false allows plain HTTP"),
  Options.withDefault("true" as const),
  Options.map((v) => v === "true"),
)
export const creds = Options.text("creds").pipe(
  Options.withDescription("USER[:PASSWORD] for the registry; USER alone asks for the password on the terminal"),
  Options.optional,
)
export const authfile = Options.text("authfile").pipe(
  Options.withDescription("auth.json to read (default: podman's search order)"),
  Options.optional,
)
const record = Options.text("record").pipe(
  Options.withDescription("also write what the pull took from outside (registry exchanges, clock, ids) and the events into DIR, for `als replay DIR`"),
  Options.optional,
)
const jobs = Options.integer("jobs").pipe(
  Options.withDescription("layers fetched at once"),
  Options.withDefault(4),
)

export const timeout = Options.integer("timeout").pipe(
  Options.withDescription(
    "seconds to wait for a registry before giving up (default 30 for an answer, 60 for a body): an answer, retries included; " +
      "a manifest, token or config, whole; a download, for each 1 KiB; a broken download's resumes, S + 1 s per 64 KiB missing; " +
      "another process's lock on a layer, 30 × S (default 30 min) (a wait past 5 s is told on stderr)",
  ),
  Options.optional,
)

export const certDir = Options.text("cert-dir").pipe(
  Options.withDescription("TLS certificates for every registry: *.crt CAs, NAME.cert + NAME.key client pairs (default: podman's certs.d per HOST[:PORT])"),
  Options.optional,
)

/**
 * The registry client as the flags ask for it, over `transport`, reaching registries as podman
 * does (registries.conf, certs.d: src/RegistryLayers.ts podmanRegistryLayer).
 */
export const registryLayer = (
  a: {
    tlsVerify: boolean
    creds: Option.Option<string>
    authfile: Option.Option<string>
    timeout?: Option.Option<number>
    certDir: Option.Option<string>
    json?: boolean
    quiet?: boolean
  },
  transport: Layer.Layer<RegistryTransport> = RegistryTransport.Live,
) =>
  podmanRegistryLayer(
    Option.getOrUndefined(a.certDir),
    transport,
    // `--creds USER` asks for the password here (als serve); als pull has asked before anything
    Effect.map(completeCreds(a.creds), (credsGiven) => ({
      tlsVerify: a.tlsVerify,
      creds: Option.getOrUndefined(credsGiven),
      authfile: Option.getOrUndefined(a.authfile),
      timeoutS: Option.getOrUndefined(a.timeout ?? Option.none()),
      config: registryNotices(a.json === true, a.quiet === true),
    })),
  )

const reporterFor = (json: boolean, quiet: boolean) =>
  json ? ReporterJson : quiet ? ReporterQuiet : process.stderr.isTTY ? ReporterTty : ReporterPlain

export const pullCommand = Command.make(
  "pull",
  { refs, name, pool, platform, os: osFlag, arch, variant, tlsVerify, creds, authfile, jobs, timeout, certDir, record, quiet, root: opt.root, json: opt.json },
  (args) =>
    // every argument parsed, and the password asked for, before the store is created (PullArgs.ts)
    Effect.flatMap(Effect.zip(checkPullArgs(args), completeCreds(args.creds)), ([plat, credsGiven]) => {
    const a = { ...args, creds: credsGiven }
    // -q: errors only on stderr; stdout has each pulled image's manifest digest
    const talk = !a.json && !a.quiet
    return withRecording(a.record, {
      root: opt.resolveRoot(a.root), refs: a.refs, platform: Option.some(formatPlatform(plat)), jobs: a.jobs, tlsVerify: a.tlsVerify, pools: a.pool, quiet: !talk,
    }, (seams) =>
    Effect.gen(function*() {
      const store = yield* LayerStore
      const journal = yield* Journal
      yield* store.init()
      yield* store.cleanStaging()
      const pools = [
        { kind: "seed" as const, dir: store.paths.pool },
        ...(yield* Effect.promise(() => Promise.all(a.pool.map(parsePoolSpec)))),
      ]
      // several refs: each tried, each failure said, a summary (PullArgs.ts)
      const pulled = yield* pullEach(a.refs, (r) => Effect.gen(function*() {
        const chosen = yield* imageSourceFor(r, { name: Option.getOrUndefined(a.name), platform: plat })
        const done = yield* journal.workflow(pullImage(chosen.source, { platform: plat, pools, jobs: a.jobs }))
        if (a.quiet) yield* Console.log(done.manifestDigest)
        if (chosen.recorded && talk) {
          // the name may come from the archive itself (RepoTags): shown safe
          yield* errLine(safeText(
            `recorded as ${chosen.recorded.name} (from ${chosen.recorded.origin}); podman takes these layers from the store ` +
              `when it pulls ${chosen.recorded.name} from a registry (pass --name to choose the name)`,
          ))
        }
      }), { quiet: a.quiet })
      if (talk && pulled) {
        yield* errLine(
          `\nPoint podman at the store: --storage-opt overlay.additionallayerstore=${store.paths.root}:ref` +
            ` (or additionallayerstores = ["${store.paths.root}:ref"] in storage.conf)`,
        )
      }
    }).pipe(
      Effect.provide(Layer.merge(
        storeLayer(opt.resolveRoot(a.root), seams.reporter(reporterFor(a.json, a.quiet)), seams.ids),
        // registries.conf and certs.d, as podman reads them (src/config)
        registryLayer(a, seams.transport),
      )),
      // another process's lock on a layer is waited for 30 × --timeout (store/LayerLock.ts)
      Effect.provideService(LayerLockWait, lockWaitFor(Option.getOrUndefined(a.timeout))),
    ))
  }),
).pipe(Command.withDescription(
  "Put every layer of each image in the store: lookup → pool → link → pull (download, verify, extract, commit).\n\n" +
    "REF is a registry image (docker:// optional) or a local one: oci:DIR[:TAG] (an OCI layout),\n" +
    "oci-archive:FILE[:TAG], docker-archive:FILE[:REPO:TAG|:@N] (docker save / podman save). podman takes layers\n" +
    "from the store when it pulls from a registry, so a local image's layers are recorded under --name (the name\n" +
    "podman will pull), else the image's own full name, else podman's name for it.\n\n" +
    "Names and TLS as podman reads them: registries.conf (CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf\n" +
    "and registries.conf.d/*.conf) for short names, aliases, prefix rewriting, mirrors, insecure and blocked registries;\n" +
    "certs.d/HOST:PORT (~/.config/containers, /etc/containers, /etc/docker) or --cert-dir for CAs and client certificates.\n\n" +
    "Defaults: --platform this host's; --jobs 4; --tls-verify=true; --timeout 30 (answers) / 60 (stalled downloads); credentials from podman's auth files\n" +
    "unless --creds/--authfile; pools: <root>/.pool, then each --pool; --root DIR (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise).\n\n" +
    "Several REFs: each is tried and each failure said, then a summary; the exit status is the first failure's.\n" +
    "Exit status: 0 ok; 2 usage; 3 registry; 4 layer rejected; 5 store I/O; 130 interrupted (SIGINT); 143 terminated (SIGTERM).\n\n" +
    "Examples:\n" +
    "  als pull --root /var/lib/als docker.io/library/alpine:3.19\n" +
    "  als pull --tls-verify=false 127.0.0.1:5000/test/app:1\n" +
    "  als pull oci:./layout:1.0 --name registry.example/app:1.0",
))
