// Issue 14's speed target: `podman run --rm IMAGE cat <one small file>` of a ~0.5 GB
// zstd:chunked image, from start to exit, through `als serve --lazy=true` on an empty store
// against a plain `podman run` that pulls the image first. Both go through a counting proxy in
// front of the registry (the bytes each fetched before exit), caches dropped before each, the
// two taking turns, same round. The image and the proxy are the e2e test's
// (test/e2e/lazySupport.ts, test/lib/countingProxy.ts).

import { appendFileSync, mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { buildBigLazyImage } from "../test/e2e/lazySupport.ts"
import { startServe } from "../test/e2e/serveSupport.ts"
import { type CountingProxy, startCountingProxy } from "../test/lib/countingProxy.ts"
import { push } from "../test/lib/images.ts"
import { createPodman, type Podman, RUNC } from "../test/lib/podman.ts"
import type { RegistryHandle } from "../test/lib/registry.ts"
import { dropCaches, measure, pairedRatio, type Sample } from "./lib/Measure.ts"
import { processCpu } from "./ServeBench.ts"

export const LAZY_TARGET_RATIO = 0.3

export type LazyTool = "podman run" | "podman run + lazy als serve"

export interface LazyRun {
  readonly round: number
  readonly order: number
  readonly tool: LazyTool
  readonly run: Sample
  /** blob bytes the proxy sent before the run exited */
  readonly fetched: number
  /** CPU seconds of the serving process during the run */
  readonly serveCpu?: number
}

export interface LazyBenchResult {
  readonly image: { readonly ref: string; readonly layers: number; readonly compressedBytes: number; readonly file: string }
  readonly rounds: number
  readonly runs: ReadonlyArray<LazyRun>
}

export interface LazyContext {
  readonly workDir: string
  readonly log: (line: string) => void
  cachesDropped: boolean
}

const TIMEOUT = 30 * 60_000
let counter = 0
const freshDir = (ctx: LazyContext, label: string) => {
  const dir = join(ctx.workDir, `z${String(++counter).padStart(3, "0")}${label}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

const podmanArgv = (p: Podman, args: ReadonlyArray<string>): string[] => [
  "podman", "--root", p.graphRoot, "--runroot", p.runRoot, "--tmpdir", join(p.dir, "libpod-tmp"),
  "--storage-driver", "overlay", "--runtime", RUNC, ...args,
]

/** One timed `podman run --rm`, in a fresh podman session that trusts the (plain HTTP) proxy. */
const timedRun = async (
  ctx: LazyContext,
  proxy: CountingProxy,
  ref: string,
  file: string,
  expected: string,
  mnt: string | undefined,
  servePid: number | undefined,
): Promise<{ run: Sample; fetched: number; serveCpu?: number }> => {
  const p = await createPodman({ baseDir: freshDir(ctx, "p") })
  try {
    appendFileSync(join(p.dir, "registries.conf"), `\n[[registry]]\nlocation = "${proxy.host}"\ninsecure = true\n`)
    await p.podman(["images"])
    if (!(await dropCaches())) ctx.cachesDropped = false
    const before = await proxy.blobBytes()
    const cpu0 = servePid === undefined ? 0 : processCpu(servePid)
    const run = await measure(
      podmanArgv(p, [...(mnt ? ["--storage-opt", `overlay.additionallayerstore=${mnt}:ref`] : []), "run", "--rm", "--network", "none", ref, "/bin/cat", file]),
      { env: p.env, timeoutMs: TIMEOUT },
    )
    const fetched = (await proxy.blobBytes()) - before
    if (run.stdout !== expected) throw new Error(`podman run printed ${JSON.stringify(run.stdout.slice(0, 200))}, not the file`)
    if (mnt && p.additionalLayers().length === 0) ctx.log("  WARNING: podman took no layer from the store")
    return { run, fetched, ...(servePid === undefined ? {} : { serveCpu: processCpu(servePid) - cpu0 }) }
  } finally {
    await p.cleanup()
    rmSync(join(p.dir, ".."), { recursive: true, force: true })
  }
}

export const lazyBench = async (
  ctx: LazyContext,
  registry: RegistryHandle,
  opts: { readonly quick: boolean; readonly rounds: number; readonly interrupted: () => void },
): Promise<LazyBenchResult> => {
  ctx.log(`lazy: building (or reading from the cache) the ${opts.quick ? "16 MiB" : "0.5 GB"} image, pushing it as zstd:chunked`)
  const big = opts.quick ? await buildBigLazyImage(2, 8) : await buildBigLazyImage()
  const pushed = await push(big, registry.host, "bench/lazy", "1", { compress: "zstd:chunked" })
  const proxy = await startCountingProxy(registry.url)
  const ref = pushed.ref.replace(registry.host, proxy.host)
  const runs: LazyRun[] = []
  try {
    for (let round = 0; round < opts.rounds; round++) {
      const order: LazyTool[] = round % 2 === 0 ? ["podman run + lazy als serve", "podman run"] : ["podman run", "podman run + lazy als serve"]
      for (const [n, tool] of order.entries()) {
        opts.interrupted()
        ctx.log(`  lazy round ${round + 1}: ${tool}`)
        if (tool === "podman run") {
          runs.push({ round, order: n, tool, ...(await timedRun(ctx, proxy, ref, big.smallFile, big.smallContent, undefined, undefined)) })
          continue
        }
        const dir = freshDir(ctx, "l")
        const mnt = join(dir, "mnt")
        mkdirSync(mnt)
        // the background pull must not start while the run is timed
        const server = await startServe(join(dir, "store"), mnt, ["--lazy=true", "--lazy-delay", "3600"])
        try {
          runs.push({ round, order: n, tool, ...(await timedRun(ctx, proxy, ref, big.smallFile, big.smallContent, mnt, server.pid)) })
        } finally {
          const code = await server.stop("SIGTERM")
          if (code !== 0) ctx.log(`  WARNING: als serve exited ${code}:\n${server.stderr().slice(-2000)}`)
          await Bun.spawn(["umount", "-l", mnt], { stderr: "ignore" }).exited
          rmSync(dir, { recursive: true, force: true })
        }
      }
    }
  } finally {
    await proxy.stop()
  }
  return {
    image: { ref: pushed.ref, layers: pushed.layers.length, compressedBytes: pushed.layers.reduce((a, l) => a + l.size, 0), file: big.smallFile },
    rounds: opts.rounds,
    runs,
  }
}

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–")
const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`

export const lazyRatio = (res: LazyBenchResult): number => {
  const of = (tool: LazyTool) => {
    const out: Array<number | undefined> = new Array(res.rounds).fill(undefined)
    for (const r of res.runs) if (r.tool === tool) out[r.round] = r.run.wall
    return out
  }
  return pairedRatio(of("podman run + lazy als serve"), of("podman run"))
}

/** The lazy section of BENCHMARKS.md (Markdown). */
export const renderLazy = (res: LazyBenchResult, note: string): string => {
  const r = lazyRatio(res)
  return [
    "### Lazy pulling (issue 14)",
    "",
    note,
    "",
    `\`podman run --rm IMAGE /bin/cat ${res.image.file}\`, IMAGE zstd:chunked, ${res.image.layers} layers, ${mb(res.image.compressedBytes)} compressed, through a counting proxy; ` +
      `lazy \`als serve\` on an empty store against a plain \`podman run\` that pulls first. ` +
      `Target ≤ ${LAZY_TARGET_RATIO}×: measured ${Number.isFinite(r) ? `${r.toFixed(2)}×` : "–"} (median of the per-round ratios), ${Number.isFinite(r) && r <= LAZY_TARGET_RATIO ? "met" : "**missed**"}.`,
    "",
    "| round | # | run | wall s | podman CPU s | serve CPU s | blob bytes fetched at exit | of the image |",
    "|---|---:|---|---:|---:|---:|---:|---:|",
    ...res.runs.map((x) =>
      `| ${x.round + 1} | ${x.order + 1} | ${x.tool} | ${f2(x.run.wall)} | ${f2(x.run.cpu)} | ${x.serveCpu === undefined ? "" : f2(x.serveCpu)} | ${mb(x.fetched)} | ${(100 * x.fetched / res.image.compressedBytes).toFixed(1)} % |`),
  ].join("\n")
}
