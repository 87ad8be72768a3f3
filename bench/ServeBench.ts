// `podman pull` through `als serve` (issue 13's speed targets): with an empty store against a
// plain `podman pull` of the same image (taking turns, caches dropped before every run, same
// round); again with the layers already in the store; a lookup answered from the store through
// the FUSE mount (one round trip per lookup, the kernel's dentries dropped before each); and
// the serving process's peak RSS (VmHWM) while it pulls. Serve runs with `--lazy=false`: lazy
// serving has its own bench (LazyBench.ts).

import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import { encodeRef } from "../src/domain/StorePaths.ts"
import { type Serving, startServe } from "../test/e2e/serveSupport.ts"
import { createPodman, type Podman, RUNC } from "../test/lib/podman.ts"
import { dropCaches, measure, median, pairedRatio, quantile, type Sample } from "./lib/Measure.ts"
import type { BenchImage } from "./PullBench.ts"
import { buildDebianImage, buildLargeImage, buildManySmallFilesImage, type OciImage } from "../test/lib/images.ts"

/** The targets. */
export const SERVE_TARGETS = { emptyRatio: 0.8, filledRatio: 0.1, lookupMs: 2, rssMiB: 150 } as const

export type ServeTool = "podman" | "podman+serve" | "podman+serve (filled)"

export interface ServeRun {
  readonly image: string
  readonly round: number
  readonly tool: ServeTool
  readonly order: number
  /** podman's own process tree (GNU time) */
  readonly pull: Sample
  /** CPU seconds the serving process spent during the pull (utime + stime from /proc) */
  readonly serveCpu?: number
  /** the serving process's peak RSS (VmHWM) after the pull, KiB */
  readonly serveHwmKiB?: number
  /** layers podman took from the store (its `additionallayer` files) */
  readonly storeLayers?: number
}

export interface LookupStats {
  readonly image: string
  readonly path: string
  readonly runs: number
  readonly medianMs: number
  readonly p90Ms: number
  readonly minMs: number
}

export interface ServeBenchResult {
  readonly images: ReadonlyArray<BenchImage>
  readonly rounds: number
  readonly runs: ReadonlyArray<ServeRun>
  readonly lookup?: LookupStats
}

export interface ServeContext {
  readonly workDir: string
  readonly log: (line: string) => void
  /** false once a cache drop failed (not root) */
  cachesDropped: boolean
}

const TIMEOUT = 30 * 60_000
let counter = 0
/** A directory never used before (ext4's allocator after deletes, BENCHMARKING.md); short for podman's runroot limit. */
const freshDir = (ctx: ServeContext, label: string) => {
  const dir = join(ctx.workDir, `v${String(++counter).padStart(3, "0")}${label}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

const cold = async (ctx: ServeContext) => {
  if (!(await dropCaches())) ctx.cachesDropped = false
}

const podmanArgv = (p: Podman, args: ReadonlyArray<string>): string[] => [
  "podman", "--root", p.graphRoot, "--runroot", p.runRoot, "--tmpdir", join(p.dir, "libpod-tmp"),
  "--storage-driver", "overlay", "--runtime", RUNC, ...args,
]

const session = async (ctx: ServeContext, label: string): Promise<Podman> => {
  const p = await createPodman({ baseDir: freshDir(ctx, label) })
  await p.podman(["images"]) // an initialised store, as on a used machine
  return p
}

const endSession = async (p: Podman) => {
  await p.cleanup()
  rmSync(join(p.dir, ".."), { recursive: true, force: true })
}

/** utime + stime of a process, seconds (fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s). */
export const processCpu = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Peak resident set of a live process, KiB (/proc/PID/status VmHWM). */
export const peakRssKiB = (pid: number): number => {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? Number(m[1]) : NaN
}

const pullArgs = (image: BenchImage, mnt?: string) => [
  ...(mnt ? ["--storage-opt", `overlay.additionallayerstore=${mnt}:ref`] : []),
  "pull", "-q", "--tls-verify=false", image.ref,
]

const plainPull = async (ctx: ServeContext, image: BenchImage): Promise<Sample> => {
  const p = await session(ctx, "p")
  try {
    await cold(ctx)
    return await measure(podmanArgv(p, pullArgs(image)), { env: p.env, timeoutMs: TIMEOUT })
  } finally {
    await endSession(p)
  }
}

/** One podman pull through the mount, in a fresh podman session, with the server's CPU and peak RSS. */
const servedPull = async (ctx: ServeContext, image: BenchImage, server: Serving): Promise<Omit<ServeRun, "image" | "round" | "tool" | "order">> => {
  const p = await session(ctx, "s")
  try {
    await cold(ctx)
    const cpu0 = processCpu(server.pid)
    const pull = await measure(podmanArgv(p, pullArgs(image, server.mountpoint)), { env: p.env, timeoutMs: TIMEOUT })
    return { pull, serveCpu: processCpu(server.pid) - cpu0, serveHwmKiB: peakRssKiB(server.pid), storeLayers: p.additionalLayers().length }
  } finally {
    await endSession(p)
  }
}

/**
 * Lookups answered from the store: `stat MNT/<b64 ref>/<key>/info`, the path containers/storage
 * looks at. The kernel keeps FUSE dentries for a minute, so each lookup first drops the
 * dentry and inode caches (`echo 2`, outside the timing): every timed stat is a LOOKUP of the
 * ref directory, the layer directory and its entry through the server, then the store's file.
 */
const lookupRoundTrips = async (ctx: ServeContext, image: BenchImage, mnt: string, key: string, runs: number): Promise<LookupStats> => {
  const b64 = encodeRef(image.ref)
  // a ref whose base64 holds `/` has no directory name; the store's own form then
  const path = b64.includes("/") ? join(mnt, key, "info") : join(mnt, b64, key, "info")
  const ms: number[] = []
  for (let i = 0; i < runs + 3; i++) {
    await Bun.write("/proc/sys/vm/drop_caches", "2\n").catch(() => (ctx.cachesDropped = false))
    const t0 = performance.now()
    statSync(path)
    const t = performance.now() - t0
    if (i >= 3) ms.push(t) // 3 warm-up lookups: the server's code paths compiled
  }
  return { image: image.name, path: path.replace(mnt, "MNT"), runs, medianMs: median(ms), p90Ms: quantile(ms, 0.9), minMs: Math.min(...ms) }
}

/**
 * One round on one image: plain podman and podman through a fresh `als serve` on an empty store
 * take turns (the order alternates by round), then podman again through the same server with
 * the store filled. The server starts before the cache drop: only the pull is timed.
 */
const serveRound = async (
  ctx: ServeContext,
  image: BenchImage,
  round: number,
  lookupRuns: number,
): Promise<{ runs: ServeRun[]; lookup?: LookupStats }> => {
  const runs: ServeRun[] = []
  let lookup: LookupStats | undefined
  const order: Array<"podman" | "serve"> = round % 2 === 0 ? ["serve", "podman"] : ["podman", "serve"]
  let n = 0
  for (const tool of order) {
    ctx.log(`  serve round ${round + 1} ${image.name}: ${tool === "serve" ? "podman through als serve (empty store, then filled)" : "plain podman"}`)
    if (tool === "podman") {
      runs.push({ image: image.name, round, tool: "podman", order: n++, pull: await plainPull(ctx, image) })
      continue
    }
    const dir = freshDir(ctx, "v")
    const store = join(dir, "store")
    const mnt = join(dir, "mnt")
    mkdirSync(mnt)
    const server = await startServe(store, mnt, ["--lazy=false"])
    try {
      const empty = await servedPull(ctx, image, server)
      runs.push({ image: image.name, round, tool: "podman+serve", order: n++, ...empty })
      const filled = await servedPull(ctx, image, server)
      runs.push({ image: image.name, round, tool: "podman+serve (filled)", order: n++, ...filled })
      for (const r of [empty, filled]) {
        if (r.storeLayers !== image.layers) ctx.log(`  WARNING: podman took ${r.storeLayers} of ${image.layers} layers from the store`)
      }
      if (lookupRuns > 0) {
        const key = (image as BenchImage & { firstLayer?: string }).firstLayer
        if (key) lookup = await lookupRoundTrips(ctx, image, mnt, key, lookupRuns)
      }
    } finally {
      const code = await server.stop("SIGTERM")
      if (code !== 0) ctx.log(`  WARNING: als serve exited ${code}:\n${server.stderr().slice(-2000)}`)
      // never rm -rf through a mount left behind
      await Bun.spawn(["umount", "-l", mnt], { stderr: "ignore" }).exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return { runs, ...(lookup ? { lookup } : {}) }
}

export const serveBench = async (
  ctx: ServeContext,
  images: ReadonlyArray<BenchImage & { readonly firstLayer: string }>,
  opts: { readonly rounds: number; readonly lookupRuns: number; readonly interrupted: () => void },
): Promise<ServeBenchResult> => {
  const runs: ServeRun[] = []
  let lookup: LookupStats | undefined
  for (let round = 0; round < opts.rounds; round++) {
    for (const [i, image] of images.entries()) {
      opts.interrupted()
      // lookups on the first image, in the last round
      const r = await serveRound(ctx, image, round, round === opts.rounds - 1 && i === 0 ? opts.lookupRuns : 0)
      runs.push(...r.runs)
      lookup ??= r.lookup
    }
  }
  return { images, rounds: opts.rounds, runs, ...(lookup ? { lookup } : {}) }
}

type Pushed = BenchImage & { readonly firstLayer: string }

/**
 * The images: debian, 50k files and 1 GB (built and cached by test/lib/images.ts, as the pull
 * bench builds them); `quick`: the 900-file image alone. `push` is run.ts's (registry, report fields).
 */
export const serveImages = async (
  quick: boolean,
  push: (img: OciImage, name: string, description: string) => Promise<Pushed>,
): Promise<Pushed[]> => {
  if (quick) {
    const small = await buildManySmallFilesImage({ files: 900, layers: 3, maxFileSize: 2048 })
    return [await push(small, "small-900", "900 small files (≤ 2 KiB) in 3 gzip layers")]
  }
  return [
    await push(await buildDebianImage(), "debian-gzip", "Debian bookworm minbase rootfs (debootstrap) in 3 gzip layers"),
    await push(await buildManySmallFilesImage({ files: 50_000, layers: 4 }), "small-50k", "50,000 small files (≤ 4 KiB) in 4 gzip layers"),
    await push(await buildLargeImage(), "large-1g", "2 layers of 500 MiB (random, text), gzip"),
  ]
}

// ---- report ------------------------------------------------------------------------------------

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–")
const rx = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–")
const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) =>
  [`| ${head.join(" | ")} |`, `|---|${head.slice(1).map(() => "---:").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n")

const perRound = (res: ServeBenchResult, image: string, tool: ServeTool, f: (r: ServeRun) => number | undefined) => {
  const out: Array<number | undefined> = new Array(res.rounds).fill(undefined)
  for (const r of res.runs) if (r.image === image && r.tool === tool) out[r.round] = f(r)
  return out
}

export interface ServeRatios {
  readonly empty: number
  readonly filled: number
  /** the same in CPU seconds (podman's + the server's against podman's), which load does not change */
  readonly emptyCpu: number
  readonly filledCpu: number
  /** MiB, the largest over rounds */
  readonly hwmMiB: number
}

export const serveRatios = (res: ServeBenchResult, image: string): ServeRatios => {
  const plain = perRound(res, image, "podman", (r) => r.pull.wall)
  const plainCpu = perRound(res, image, "podman", (r) => r.pull.cpu)
  const cpu = (r: ServeRun) => r.pull.cpu + (r.serveCpu ?? 0)
  return {
    emptyCpu: pairedRatio(perRound(res, image, "podman+serve", cpu), plainCpu),
    filledCpu: pairedRatio(perRound(res, image, "podman+serve (filled)", cpu), plainCpu),
    empty: pairedRatio(perRound(res, image, "podman+serve", (r) => r.pull.wall), plain),
    filled: pairedRatio(perRound(res, image, "podman+serve (filled)", (r) => r.pull.wall), plain),
    hwmMiB: Math.max(...res.runs.filter((r) => r.image === image && r.serveHwmKiB !== undefined).map((r) => r.serveHwmKiB! / 1024)),
  }
}

const met = (ok: boolean) => (ok ? "met" : "**missed**")

/** The serve section of BENCHMARKS.md (Markdown). */
export const renderServe = (res: ServeBenchResult, note: string): string => {
  const t = SERVE_TARGETS
  const ratios = res.images.map((i) => [i, serveRatios(res, i.name)] as const)
  const largest = [...res.images].sort((a, b) => b.compressedBytes - a.compressedBytes)[0]
  const rssOf = largest ? serveRatios(res, largest.name).hwmMiB : NaN
  const lines = [
    "### `als serve` (issue 13)",
    "",
    note,
    "",
    table(["target", "measured", ""], [
      [`podman pull through \`als serve\`, empty store ≤ ${t.emptyRatio}× a plain podman pull`, ratios.map(([i, r]) => `${i.name} ${rx(r.empty)} (CPU ${rx(r.emptyCpu)})`).join(", "), met(ratios.every(([, r]) => r.empty <= t.emptyRatio))],
      [`the same with the layers in the store ≤ ${t.filledRatio}×`, ratios.map(([i, r]) => `${i.name} ${rx(r.filled)} (CPU ${rx(r.filledCpu)})`).join(", "), met(ratios.every(([, r]) => r.filled <= t.filledRatio))],
      [`a lookup answered from the store (FUSE round trip) ≤ ${t.lookupMs} ms`, res.lookup ? `median ${f2(res.lookup.medianMs)} ms, p90 ${f2(res.lookup.p90Ms)} ms (${res.lookup.runs} lookups)` : "not run", res.lookup ? met(res.lookup.medianMs <= t.lookupMs) : ""],
      [`RSS of the serving process ≤ ${t.rssMiB} MiB while pulling the largest image`, largest ? `${f2(rssOf)} MiB (VmHWM) on ${largest.name}` : "–", met(rssOf <= t.rssMiB)],
    ]),
    "",
    table(["image", "round", "#", "run", "wall s", "podman CPU s", "serve CPU s", "serve VmHWM MiB", "layers from store"],
      res.runs.map((r) => [r.image, String(r.round + 1), String(r.order + 1), r.tool, f2(r.pull.wall), f2(r.pull.cpu), r.serveCpu === undefined ? "" : f2(r.serveCpu), r.serveHwmKiB === undefined ? "" : f2(r.serveHwmKiB / 1024), r.storeLayers === undefined ? "" : String(r.storeLayers)])),
  ]
  if (res.lookup) {
    lines.push("", `Lookup: \`stat ${res.lookup.path}\` (a layer the store has), dentries and inodes dropped before each (\`echo 2 > /proc/sys/vm/drop_caches\`, not timed): median ${f2(res.lookup.medianMs)} ms, p90 ${f2(res.lookup.p90Ms)} ms, min ${f2(res.lookup.minMs)} ms over ${res.lookup.runs}.`)
  }
  return lines.join("\n")
}
