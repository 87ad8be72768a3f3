/**
 * `als serve MOUNTPOINT`: the store as a FUSE filesystem that podman drives itself. A lookup
 * of a layer the store lacks gets it (lookup → pool → link → pull) before answering; `use`
 * and `rmdir` are counted. Serves until SIGTERM or SIGINT, then unmounts and exits 0.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { detectHostPlatform, parsePlatform, type Platform } from "../domain/Platform.ts"
import { storeLayer } from "../Layers.ts"
import { parsePoolSpec } from "../pool/Pool.ts"
import { LayerStore } from "../store/LayerStore.ts"
import { startSession } from "../fuse/Session.ts"
import { makeResolver } from "../serve/Resolver.ts"
import { makeServeFs } from "../serve/ServeFs.ts"
import { releaseStaleUses } from "../serve/StaleUses.ts"
import { makeLazySupply } from "../lazy/LazySupply.ts"
import { ReporterSilent } from "../events/Journal.ts"
import { errLine } from "./errLine.ts"
import { endsBySignal } from "./exit.ts"
import * as opt from "./options.ts"
import { authfile, certDir, creds, registryLayer, tlsVerify } from "./PullCommand.ts"
import { RegistryTransport } from "../registry/RegistryTransport.ts"
import { UsageError } from "../domain/UsageError.ts"

// text, not Args.directory: a stale mount left by a killed server fails stat (ENOTCONN) and is cleared later
const mountpoint = Args.text({ name: "MOUNTPOINT" }).pipe(
  Args.withDescription("an empty directory to mount the store's filesystem on (podman: additionallayerstore=MOUNTPOINT:ref)"),
)
const pool = Options.text("pool").pipe(
  Options.withDescription("a pool to probe after <root>/.pool: an ALS store or a CVMFS-style tree; repeatable"),
  Options.repeated,
)
const platform = Options.text("platform").pipe(
  Options.withDescription("os/arch[/variant] to pick from a multi-arch image (default: this host's)"),
  Options.optional,
)
const jobs = Options.integer("jobs").pipe(
  Options.withDescription("layers fetched at once"),
  Options.withDefault(4),
)
const timeout = Options.integer("timeout").pipe(
  Options.withDescription(
    "seconds a lookup waits for its layer before answering 'not here' (podman then pulls it itself), " +
      "and for a registry's answer (default: 300 for a lookup, the registry's own defaults otherwise)",
  ),
  Options.optional,
)

const DEFAULT_LOOKUP_TIMEOUT_S = 300

/**
 * How long pulls in flight at SIGTERM/SIGINT may still finish before they are cancelled. bin/als.ts
 * ends any clean-up after 5 s: the grace leaves time to cancel (remove staging) and write the log.
 */
const STOP_GRACE_MS = 2_000

// lazy pulling (src/lazy): on by default (issue 14); --lazy=false pulls every layer whole before answering
const lazy = Options.choice("lazy", ["true", "false"]).pipe(
  Options.withDescription(
    "serve layers that carry a TOC (zstd:chunked, eStargz) lazily: a lookup returns once the TOC is fetched and verified, " +
      "files are fetched chunk by chunk as they are read, and the rest of the layer is fetched in the background; " +
      "--lazy=false pulls every layer whole before answering",
  ),
  Options.withDefault("true" as const),
  Options.map((v) => v === "true"),
)
const lazyDelay = Options.integer("lazy-delay").pipe(
  Options.withDescription("seconds after a layer is served lazily before its background pull starts"),
  Options.withDefault(5),
)

/** Resolves at the first SIGTERM or SIGINT, or when the session ends by itself. */
const untilStopped = (closed: Promise<string>) =>
  Effect.async<string>((resume) => {
    const stop = (sig: NodeJS.Signals) => resume(Effect.succeed(sig))
    process.once("SIGTERM", stop)
    process.once("SIGINT", stop)
    closed.then((why) => resume(Effect.succeed(why)))
    return Effect.sync(() => {
      process.off("SIGTERM", stop)
      process.off("SIGINT", stop)
    })
  })

export const serveCommand = Command.make(
  "serve",
  { mountpoint, pool, platform, tlsVerify, creds, authfile, jobs, timeout, certDir, root: opt.root, lazy, lazyDelay },
  (a) =>
    Effect.gen(function*() {
      const store = yield* LayerStore
      const mnt = path.resolve(a.mountpoint)
      const root = store.paths.root
      if (mnt === root || mnt.startsWith(root + path.sep) || root.startsWith(mnt + path.sep)) {
        return yield* new UsageError({ message: `MOUNTPOINT ${mnt} must lie outside the store ${root} (and not contain it)` })
      }
      const kind = (() => {
        try {
          return fs.statSync(mnt).isDirectory() ? "dir" : "other"
        } catch (e) {
          return (e as NodeJS.ErrnoException).code === "ENOTCONN" ? "stale" : "missing"
        }
      })()
      if (kind !== "dir" && kind !== "stale") return yield* new UsageError({ message: `MOUNTPOINT ${mnt} is not a directory` })
      const plat: Platform = yield* Option.match(a.platform, {
        onNone: () => Effect.succeed(detectHostPlatform()),
        onSome: (p) =>
          Effect.try({
            try: () => parsePlatform(p),
            catch: () => new UsageError({ message: `--platform ${p}: expected os/arch[/variant], e.g. linux/arm64` }),
          }),
      })
      if (a.jobs < 1) return yield* new UsageError({ message: `--jobs ${a.jobs}: at least 1` })
      const timeoutS = Option.getOrElse(a.timeout, () => DEFAULT_LOOKUP_TIMEOUT_S)
      if (timeoutS < 1) return yield* new UsageError({ message: `--timeout ${timeoutS}: at least 1 second` })
      yield* store.init()
      yield* store.cleanStaging()
      // uses counted by an earlier server on this host that was killed: nothing releases them now
      const stale = yield* releaseStaleUses
      if (stale.length > 0) {
        yield* errLine(`als serve: released ${stale.reduce((a, s) => a + s.uses, 0)} use(s) of ${new Set(stale.map((s) => s.layer)).size} layer(s) counted by als serve processes that are gone (pid ${[...new Set(stale.map((s) => s.pid))].join(", ")})`)
      }
      const pools = [
        { kind: "seed" as const, dir: store.paths.pool },
        ...(yield* Effect.promise(() => Promise.all(a.pool.map(parsePoolSpec)))),
      ]
      const resolver = yield* makeResolver({ platform: plat, pools, jobs: a.jobs, timeoutMs: timeoutS * 1000 })
      if (a.lazyDelay < 0) return yield* new UsageError({ message: `--lazy-delay ${a.lazyDelay}: at least 0` })
      const supply = a.lazy
        ? yield* makeLazySupply(resolver, { platform: plat, pools, jobs: a.jobs, timeoutMs: timeoutS * 1000, completionDelayMs: a.lazyDelay * 1000 })
        : resolver
      const handler = makeServeFs(supply)
      const session = yield* Effect.acquireRelease(
        Effect.tryPromise({
          // the mount table names the store it serves, so `als doctor` can tell two servers apart
          try: () => startSession({ mountpoint: mnt, handler, source: root }),
          catch: (e) => new UsageError({ message: `cannot mount ${mnt}: ${(e as Error).message}` }),
        }),
        // stopping: no new pulls; running ones finish within the grace or are cancelled (staging,
        // locks and pins released, PullFailed "interrupted"), lookups waiting on them are answered,
        // then the mount goes and the last events are written
        (s) =>
          Effect.promise(async () => {
            const r = await resolver.stop(Math.min(timeoutS * 1000, STOP_GRACE_MS))
            if (r.finished + r.interrupted > 0) {
              process.stderr.write(`als serve: pulls in flight at stop: ${r.finished} finished, ${r.interrupted} cancelled\n`)
            }
            s.unmount()
            await resolver.flush()
          }),
      )
      endsBySignal()
      yield* errLine(
        `als serve: serving ${root} at ${mnt}\n` +
          `Point podman at it: --storage-opt overlay.additionallayerstore=${mnt}:ref ` +
          `(or additionallayerstores = ["${mnt}:ref"] in storage.conf)`,
      )
      const why = yield* untilStopped(session.closed)
      yield* errLine(`als serve: ${why.startsWith("SIG") ? `${why}, unmounting ${mnt}` : `session ended (${why})`}`)
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(
        storeLayer(opt.resolveRoot(a.root), ReporterSilent),
        // registries.conf and certs.d, as podman reads them (src/config)
        registryLayer(a, RegistryTransport.Live),
      )),
    ),
).pipe(Command.withDescription(
  "Mount the store as a FUSE filesystem that podman drives itself: a lookup of a layer the store lacks pulls it\n" +
    "(lookup → pool → link → pull) before answering, and podman's use/release notifications are counted\n" +
    "(LayerAcquired / LayerReleased events). Serves until SIGTERM or SIGINT: pulls in flight get 2 s to finish, then are\n" +
    "cancelled (PullFailed interrupted); then it unmounts and exits 0. At start, uses counted by a killed server are released.\n\n" +
    "  MOUNTPOINT/<base64(ref)>/<digest or TOC digest>/{diff,info,blob}   (symlinks into the store)\n" +
    "  MOUNTPOINT/<digest>/…, MOUNTPOINT/.pool/<b64(k=v)>/…/rootfs.<digest>/…\n\n" +
    "Layers that carry a TOC (zstd:chunked, eStargz) are served lazily by default: the lookup returns once the TOC is\n" +
    "fetched and verified, reads fetch only their chunks, and the rest of the layer is fetched in the background\n" +
    "(--lazy-delay s later); --lazy=false pulls every layer whole before answering.\n\n" +
    "Defaults: --platform this host's; --jobs 4; --tls-verify=true; --timeout 300 (a lookup's wait); credentials from\n" +
    "podman's auth files unless --creds/--authfile; pools: <root>/.pool, then each --pool; --root DIR (default: $ALS_ROOT,\n" +
    "else /var/lib/als as root, $XDG_DATA_HOME/als otherwise). Needs root (mount(2), /dev/fuse).\n\n" +
    "Example:\n" +
    "  als serve --root /var/lib/als /run/als\n" +
    "  podman --storage-opt overlay.additionallayerstore=/run/als:ref pull docker.io/library/alpine:3.19",
))
