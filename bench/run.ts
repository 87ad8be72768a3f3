// `bun run bench`: als against podman and skopeo + umoci on this machine, with the figures
// written to BENCHMARKS.md. Needs root (cache drops, podman), podman, skopeo, umoci,
// docker-registry and GNU time; builds dist/als when it is older than the sources.
//
//   bun run bench                       full run: 4 images × 5 rounds, lookup, log; writes BENCHMARKS.md
//   bun run bench --rounds 3            fewer rounds
//   bun run bench --quick               one small image, one round, fewer lookups and events; prints only
//   every pull round also times each stage of a pull alone on the same blobs (bench/PipelineLimit.ts)
//   options: --only pull,lookup,log,serve,lazy   --out FILE   --no-write   --dir DIR (parent of the runs' dirs)
//            --events N (log)   --lookup-runs N
//            --images debian-gzip,debian-zstd,small-50k,large-1g,small-900 (a subset of the full run's images)
//            --no-stages (skip the pipeline-limit stages)

import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { join, resolve } from "node:path"
import { alsCommand, DIST_ALS, REPO_ROOT } from "../test/lib/als.ts"
import {
  buildDebianImage,
  buildLargeImage,
  buildManySmallFilesImage,
  type Compression,
  type OciImage,
  push,
} from "../test/lib/images.ts"
import { type RegistryHandle, startRegistry } from "../test/lib/registry.ts"
import { runOk } from "../test/lib/sh.ts"
import type { LogRateResult } from "./LogRate.ts"
import { buildFloor, lookupBench, type LookupBenchResult } from "./LookupBench.ts"
import { describeMachine } from "./lib/Machine.ts"
import { isRoot, loadAverage, median } from "./lib/Measure.ts"
import { type BenchResults, renderReport, writeReport } from "./lib/Report.ts"
import { type BenchBlob, prepareStages, type StageFiles, stageRound, type StageRun } from "./PipelineLimit.ts"
import { alsPullOnce, type BenchImage, type PullContext, pullRound, type PullRun } from "./PullBench.ts"
import { renderServe, serveBench, serveImages } from "./ServeBench.ts"
import { lazyBench, renderLazy } from "./LazyBench.ts"

const IMAGE_NAMES = ["debian-gzip", "debian-zstd", "small-50k", "large-1g", "small-900"]

interface Options {
  readonly quick: boolean
  readonly rounds: number
  readonly sections: ReadonlySet<"pull" | "lookup" | "log" | "serve" | "lazy">
  readonly out: string | undefined
  readonly dir: string
  readonly events: number
  readonly lookupRuns: number
  /** the full run's images to pull (default all) */
  readonly images: ReadonlySet<string> | undefined
  /** time each stage of a pull alone (the pipeline limit) */
  readonly stages: boolean
}

const usage = (msg: string): never => {
  process.stderr.write(`bench: ${msg}\nusage: bun run bench [--quick] [--rounds N] [--only pull,lookup,log,serve,lazy] [--out FILE | --no-write] [--dir DIR] [--events N] [--lookup-runs N] [--images a,b] [--no-stages]\n`)
  process.exit(2)
}

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  let quick = false
  let rounds: number | undefined
  let only: string | undefined
  let out: string | undefined | null
  let dir = "/var/tmp"
  let events: number | undefined
  let lookupRuns: number | undefined
  let images: string | undefined
  let stages = true
  const num = (v: string | undefined, name: string) => {
    const n = Number(v)
    return Number.isInteger(n) && n > 0 ? n : usage(`${name} needs a positive integer`)
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = () => argv[++i] ?? usage(`${a} needs a value`)
    if (a === "--quick") quick = true
    else if (a === "--rounds") rounds = num(v(), a)
    else if (a === "--only") only = v()
    else if (a === "--out") out = resolve(v())
    else if (a === "--no-write") out = null
    else if (a === "--dir") dir = resolve(v())
    else if (a === "--events") events = num(v(), a)
    else if (a === "--lookup-runs") lookupRuns = num(v(), a)
    else if (a === "--images") images = v()
    else if (a === "--no-stages") stages = false
    else usage(`unknown argument ${a}`)
  }
  const all = ["pull", "lookup", "log", "serve", "lazy"] as const
  // --quick (CI: scripts/bench-ci.sh) runs serve on the small image (~25 s on a busy machine) but
  // leaves out lazy (~70 s: it converts an image to zstd:chunked) unless --only names it
  const byDefault = quick ? all.filter((s) => s !== "lazy") : all
  const sections = new Set(only ? only.split(",").map((s) => (all.includes(s as never) ? (s as (typeof all)[number]) : usage(`--only: unknown section ${s}`))) : byDefault)
  return {
    quick,
    rounds: rounds ?? (quick ? 1 : 5),
    sections,
    // the quick run only prints, unless told where to write
    out: out === null ? undefined : out ?? (quick ? undefined : join(REPO_ROOT, "BENCHMARKS.md")),
    dir,
    events: events ?? (quick ? 100_000 : 1_000_000),
    lookupRuns: lookupRuns ?? (quick ? 15 : 50),
    stages,
    images: images === undefined ? undefined : new Set(images.split(",").map((i) => (IMAGE_NAMES.includes(i) ? i : usage(`--images: unknown image ${i} (${IMAGE_NAMES.join(", ")})`)))),
  }
}

const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)

let interrupted = false
const checkInterrupted = () => {
  if (interrupted) throw new Error("interrupted")
}

/** Push one built image and describe it for the report. */
const pushBench = async (
  registry: RegistryHandle,
  img: OciImage,
  name: string,
  description: string,
  compress: Compression = "gzip",
): Promise<BenchImage & { readonly firstLayer: string; readonly blobs: ReadonlyArray<BenchBlob> }> => {
  log(`pushing ${name}`)
  const pushed = await push(img, registry.host, `bench/${name}`, "1", { compress })
  return {
    name,
    description,
    ref: pushed.ref,
    layers: pushed.layers.length,
    compressedBytes: pushed.layers.reduce((a, l) => a + l.size, 0),
    zstd: compress.startsWith("zstd"),
    firstLayer: pushed.layers[0]!.digest,
    blobs: pushed.layers.map((l) => ({ digest: l.digest, size: l.size, compression: l.mediaType.includes("zstd") ? "zstd" as const : "gzip" as const })),
  }
}

const requireTools = () => {
  const missing = ["podman", "skopeo", "umoci", "docker-registry", "sync", "findmnt"].filter((t) => Bun.which(t) === null)
  if (!existsSync("/usr/bin/time")) missing.push("/usr/bin/time (apt-get install time)")
  if (missing.length > 0) throw new Error(`missing: ${missing.join(", ")} (bash scripts/install-deps.sh)`)
  if (!isRoot()) throw new Error("the benchmark runs as root: it drops the page cache and runs podman with its own graphroot")
}

const main = async (): Promise<void> => {
  const argv = process.argv.slice(2)
  const opts = parseOptions(argv)
  requireTools()
  const started = performance.now()
  const loadStart = loadAverage()
  const als = await alsCommand()
  if (als.length !== 1 || als[0] !== DIST_ALS) throw new Error(`could not build dist/als (the benchmark measures the compiled binary): ${als.join(" ")}`)
  mkdirSync(opts.dir, { recursive: true })
  // podman refuses a runroot longer than 50 characters: <dir>/alsb-XXXXXX/NNNp/als-podman-XXXXXX/run
  if (opts.dir.length > 20) throw new Error(`--dir ${opts.dir}: at most 20 characters (podman's runroot path limit)`)
  const workDir = mkdtempSync(join(opts.dir, "alsb-"))
  let registry: RegistryHandle | undefined
  const ctx: PullContext = { als: DIST_ALS, workDir, cachesDropped: true, log }
  try {
    log(`work dir ${workDir}; load average ${loadStart}`)
    registry = await startRegistry()

    // ---- images
    const images: Array<BenchImage & { readonly firstLayer: string; readonly blobs: ReadonlyArray<BenchBlob> }> = []
    let tinyLayers: (BenchImage & { readonly firstLayer: string }) | undefined
    if (opts.quick) {
      log("building (or reading from the cache) the quick image")
      const small = await buildManySmallFilesImage({ files: 900, layers: 3, maxFileSize: 2048 })
      images.push(await pushBench(registry, small, "small-900", "900 small files (≤ 2 KiB) in 3 gzip layers, hardlinks, symlinks, xattrs, whiteouts"))
    } else if (opts.sections.has("pull") || opts.sections.has("lookup")) {
      log("building (or reading from the cache) the benchmark images; the first build takes several minutes")
      // lookup runs on the first image: debian-gzip unless --images leaves it out
      const wanted = (name: string) => opts.sections.has("pull") && (opts.images === undefined || opts.images.has(name))
      if (wanted("debian-gzip") || wanted("debian-zstd") || !opts.sections.has("pull")) {
        const debian = await buildDebianImage()
        const what = "Debian bookworm minbase rootfs (debootstrap) in 3 layers: /usr; the rest; docs deleted (whiteouts)"
        if (wanted("debian-gzip") || !opts.sections.has("pull")) images.push(await pushBench(registry, debian, "debian-gzip", `${what}; gzip`))
        if (wanted("debian-zstd")) images.push(await pushBench(registry, debian, "debian-zstd", `${what}; zstd`, "zstd"))
      }
      if (wanted("small-50k")) {
        const small = await buildManySmallFilesImage({ files: 50_000, layers: 4 })
        images.push(await pushBench(registry, small, "small-50k", "50,000 small files (≤ 4 KiB) in 4 gzip layers, hardlinks, symlinks, xattrs, whiteouts"))
      }
      if (wanted("small-900")) {
        // about 1 MB: a small image, where start-up and per-command costs show
        const tiny = await buildManySmallFilesImage({ files: 900, layers: 3, maxFileSize: 2048 })
        images.push(await pushBench(registry, tiny, "small-900", "900 small files (≤ 2 KiB) in 3 gzip layers, hardlinks, symlinks, xattrs, whiteouts (≈ 1 MB)"))
      }
      if (wanted("large-1g")) {
        const large = await buildLargeImage()
        images.push(await pushBench(registry, large, "large-1g", "2 layers of 500 MiB: one random file (incompressible), one text file (≈ 4:1), gzip"))
        const tiny = await buildLargeImage([{ sizeMiB: 3, kind: "random" }, { sizeMiB: 3, kind: "text", files: 3 }])
        tinyLayers = await pushBench(registry, tiny, "large-6m", "large-1g's shape with 3 MiB layers (peak RSS against layer size)")
      }
    }

    // ---- pulls: round after round, every image in each round, the tools taking turns
    const runs: PullRun[] = []
    const stageRuns: StageRun[] = []
    const stageFiles = new Map<string, StageFiles>()
    if (opts.sections.has("pull") && opts.stages) {
      for (const image of images) {
        checkInterrupted()
        log(`stages: fetching and decompressing the blobs of ${image.name} once`)
        stageFiles.set(image.name, await prepareStages(join(workDir, "stage-files", image.name), image, image.blobs))
      }
    }
    let rssSmallLayers: BenchResults["rssSmallLayers"]
    if (opts.sections.has("pull")) {
      for (let round = 0; round < opts.rounds; round++) {
        for (const image of images) {
          checkInterrupted()
          runs.push(...(await pullRound(ctx, image, round)))
          const files = stageFiles.get(image.name)
          if (files) stageRuns.push(...(await stageRound(ctx, image, files, round)))
        }
        log(`round ${round + 1}/${opts.rounds} done; load average ${loadAverage()}`)
      }
      if (tinyLayers) {
        const rss: number[] = []
        for (let i = 0; i < 3; i++) {
          checkInterrupted()
          log(`als pull ${tinyLayers.name} (peak RSS) ${i + 1}/3`)
          rss.push((await alsPullOnce(ctx, tinyLayers)).maxRssKiB / 1024)
        }
        rssSmallLayers = { image: tinyLayers, rssMiB: median(rss) }
      }
    }

    // ---- lookup start-up
    let lookup: LookupBenchResult | undefined
    if (opts.sections.has("lookup")) {
      checkInterrupted()
      const image = images[0]!
      const root = join(workDir, "lookup-store")
      log(`lookup: filling a store with ${image.name}, building the hello-world floor`)
      await runOk([DIST_ALS, "pull", "--root", root, "--tls-verify=false", image.ref], { timeoutMs: 30 * 60_000 })
      const floor = await buildFloor(join(workDir, "floor"))
      log(`lookup: ${opts.lookupRuns} runs per variant`)
      lookup = await lookupBench({ als: DIST_ALS, floor, root, digest: image.firstLayer, ref: image.ref, runs: opts.lookupRuns })
      rmSync(root, { recursive: true, force: true })
    }

    // ---- event log
    let logRate: LogRateResult | undefined
    if (opts.sections.has("log")) {
      checkInterrupted()
      log(`event log: ${opts.events} events`)
      const r = await runOk([process.execPath, join(REPO_ROOT, "bench", "LogRate.ts"), "--events", String(opts.events), "--dir", workDir], {
        timeoutMs: 60 * 60_000,
      })
      logRate = JSON.parse(r.stdout.trim().split("\n").pop()!) as LogRateResult
    }

    const results: BenchResults = {
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      command: `bun run bench${argv.length > 0 ? ` ${argv.join(" ")}` : ""}`,
      quick: opts.quick,
      rounds: opts.sections.has("pull") ? opts.rounds : 0,
      machine: describeMachine(workDir, DIST_ALS),
      loadStart,
      loadEnd: loadAverage(),
      cachesDropped: ctx.cachesDropped,
      images: opts.sections.has("pull") ? images : [],
      runs,
      stageRuns,
      ...(rssSmallLayers ? { rssSmallLayers } : {}),
      ...(lookup ? { lookup } : {}),
      ...(logRate ? { log: logRate } : {}),
      durationSec: (performance.now() - started) / 1000,
    }
    // ---- als serve and lazy pulling (issues 13 and 14): their own sections after the report
    const extra: string[] = []
    const note = `${opts.quick ? "Quick mode (small images, " : "("}${opts.rounds} round(s)), load average ${loadAverage()}: the machine may be shared; the ratios within a round are the figures to trust.`
    if (opts.sections.has("serve")) {
      checkInterrupted()
      log("serve: podman pull through als serve against plain podman pull")
      const pushed = await serveImages(opts.quick, (img, name, what) => pushBench(registry!, img, name, what))
      const r = await serveBench({ workDir, log, cachesDropped: true }, pushed, { rounds: opts.rounds, lookupRuns: opts.quick ? 30 : 200, interrupted: checkInterrupted })
      extra.push(renderServe(r, note))
    }
    if (opts.sections.has("lazy")) {
      checkInterrupted()
      log("lazy: podman run through lazy als serve against a plain podman run")
      extra.push(renderLazy(await lazyBench({ workDir, log, cachesDropped: true }, registry, { quick: opts.quick, rounds: opts.rounds, interrupted: checkInterrupted }), note))
    }
    const report = [renderReport(results), ...extra].join("\n\n")
    process.stdout.write(`${report}\n`)
    if (opts.out) {
      writeReport(opts.out, report)
      log(`wrote ${opts.out}`)
    }
  } finally {
    await registry?.stop().catch(() => undefined)
    rmSync(workDir, { recursive: true, force: true })
  }
}

// Ctrl-C reaches the running tool too (same process group): its run fails, the finally blocks
// remove podman sessions, mounts and directories, and we exit 130. A signal sent to this
// process alone stops the benchmark at the next run.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130)
    interrupted = true
    log(`${sig}: stopping after cleanup (again to exit at once)`)
  })
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(interrupted ? 130 : 1)
  },
)
