// `als pull` against `podman pull` and `skopeo copy` + `umoci unpack`, and podman pulling with
// the store filled against without: the same image from the same local registry, tools taking
// turns run by run, each run in a fresh directory with cold caches.

import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { createPodman, type Podman, RUNC } from "../test/lib/podman.ts"
import { dropCaches, measure, type Sample, sumSamples, syncFs } from "./lib/Measure.ts"
import { retire } from "./lib/Retire.ts"

export type Tool = "als" | "podman" | "skopeo+umoci" | "podman+store"

/** An image pushed to the benchmark registry. */
export interface BenchImage {
  /** short name for tables, e.g. "debian-gzip" */
  readonly name: string
  /** what it is, for the report */
  readonly description: string
  /** HOST/REPO:TAG */
  readonly ref: string
  readonly layers: number
  /** sum of the layer blobs' sizes */
  readonly compressedBytes: number
  /** umoci 0.4.7 reads no zstd: skopeo + umoci is not run on zstd images */
  readonly zstd: boolean
}

export interface PullRun {
  readonly image: string
  readonly round: number
  readonly tool: Tool
  /** position of the run within its round (0 first) */
  readonly order: number
  /** the pull itself */
  readonly pull: Sample
  /** `sync -f` right after it: what was left to make durable */
  readonly sync: Sample
  /** layers podman took from the store (podman+store only) */
  readonly storeLayers?: number
}

export interface PullContext {
  readonly als: string
  /** parent of every run's fresh directory */
  readonly workDir: string
  /** false when the page cache could not be dropped (not root): said in the report */
  cachesDropped: boolean
  readonly log: (line: string) => void
}

let runCounter = 0

/**
 * A new directory for one run, never reused: ext4 gets slower at creating many files right
 * after a similar tree was deleted (BENCHMARKING.md), so no run writes where another one did.
 * Names are short: podman refuses a runroot path longer than 50 characters.
 */
const freshDir = (ctx: PullContext, label: string): string => {
  const dir = join(ctx.workDir, `${String(++runCounter).padStart(3, "0")}${label}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

const coldStart = async (ctx: PullContext): Promise<void> => {
  if (!(await dropCaches())) ctx.cachesDropped = false
}

/** The podman command line of a session (test/lib/podman.ts's isolation flags), for GNU time. */
const podmanArgv = (p: Podman, args: ReadonlyArray<string>): string[] => [
  "podman",
  "--root",
  p.graphRoot,
  "--runroot",
  p.runRoot,
  "--tmpdir",
  join(p.dir, "libpod-tmp"),
  "--storage-driver",
  "overlay",
  "--runtime",
  RUNC,
  ...args,
]

const TIMEOUT = 30 * 60_000

const runAls = async (ctx: PullContext, image: BenchImage): Promise<{ pull: Sample; sync: Sample; store: string; dir: string }> => {
  const dir = freshDir(ctx, "a")
  const store = join(dir, "store")
  // an existing store, as on a machine that uses als: `init` is not part of the pull
  await measure([ctx.als, "init", "--root", store])
  await coldStart(ctx)
  const pull = await measure([ctx.als, "pull", "--root", store, "--tls-verify=false", image.ref], { timeoutMs: TIMEOUT })
  const sync = await syncFs(store)
  return { pull, sync, store, dir }
}

/** A podman session in a fresh directory whose store is initialised (as on a used machine). */
const podmanSession = async (ctx: PullContext, label: string): Promise<Podman> => {
  const p = await createPodman({ baseDir: freshDir(ctx, label) })
  await p.podman(["images"])
  return p
}

const runPodman = async (ctx: PullContext, image: BenchImage): Promise<{ pull: Sample; sync: Sample }> => {
  const p = await podmanSession(ctx, "p")
  try {
    await coldStart(ctx)
    const pull = await measure(podmanArgv(p, ["pull", "-q", "--tls-verify=false", image.ref]), { env: p.env, timeoutMs: TIMEOUT })
    const sync = await syncFs(p.graphRoot)
    return { pull, sync }
  } finally {
    await p.cleanup()
    retire(ctx.workDir, join(p.dir, ".."))
  }
}

const runPodmanWithStore = async (ctx: PullContext, image: BenchImage, store: string): Promise<{ pull: Sample; sync: Sample; storeLayers: number }> => {
  const p = await podmanSession(ctx, "s")
  try {
    await coldStart(ctx)
    const pull = await measure(
      podmanArgv(p, ["--storage-opt", `overlay.additionallayerstore=${store}:ref`, "pull", "-q", "--tls-verify=false", image.ref]),
      { env: p.env, timeoutMs: TIMEOUT },
    )
    const sync = await syncFs(p.graphRoot)
    return { pull, sync, storeLayers: p.additionalLayers().length }
  } finally {
    await p.cleanup()
    retire(ctx.workDir, join(p.dir, ".."))
  }
}

const runSkopeoUmoci = async (ctx: PullContext, image: BenchImage): Promise<{ pull: Sample; sync: Sample }> => {
  const dir = freshDir(ctx, "u")
  try {
    await coldStart(ctx)
    const copy = await measure(
      ["skopeo", "copy", "--quiet", "--src-tls-verify=false", `docker://${image.ref}`, `oci:${join(dir, "layout")}:bench`],
      { timeoutMs: TIMEOUT },
    )
    const unpack = await measure(["umoci", "unpack", "--image", `${join(dir, "layout")}:bench`, join(dir, "bundle")], { timeoutMs: TIMEOUT })
    const sync = await syncFs(dir)
    return { pull: sumSamples([copy, unpack]), sync }
  } finally {
    retire(ctx.workDir, dir)
  }
}

/** The tools of a round in turn; the order rotates from round to round so no tool always goes first. */
export const toolOrder = (image: BenchImage, round: number): Array<Exclude<Tool, "podman+store">> => {
  const tools: Array<Exclude<Tool, "podman+store">> = image.zstd ? ["als", "podman"] : ["als", "podman", "skopeo+umoci"]
  const k = round % tools.length
  return [...tools.slice(k), ...tools.slice(0, k)]
}

/**
 * One round on one image: als, podman and skopeo + umoci in (rotating) turn, then podman with
 * the store als just filled. Every run starts after `sync` and a cache drop, in its own
 * directory, which is deleted after the run (the store after podman has used it).
 */
export const pullRound = async (ctx: PullContext, image: BenchImage, round: number): Promise<PullRun[]> => {
  const runs: PullRun[] = []
  let alsStore: { store: string; dir: string } | undefined
  try {
    let order = 0
    for (const tool of toolOrder(image, round)) {
      ctx.log(`  round ${round + 1} ${image.name}: ${tool}`)
      if (tool === "als") {
        const r = await runAls(ctx, image)
        alsStore = { store: r.store, dir: r.dir }
        runs.push({ image: image.name, round, tool, order: order++, pull: r.pull, sync: r.sync })
      } else if (tool === "podman") {
        const r = await runPodman(ctx, image)
        runs.push({ image: image.name, round, tool, order: order++, ...r })
      } else {
        const r = await runSkopeoUmoci(ctx, image)
        runs.push({ image: image.name, round, tool, order: order++, ...r })
      }
    }
    if (alsStore) {
      ctx.log(`  round ${round + 1} ${image.name}: podman+store`)
      const r = await runPodmanWithStore(ctx, image, alsStore.store)
      if (r.storeLayers !== image.layers) {
        ctx.log(`  WARNING: podman took ${r.storeLayers} of ${image.layers} layers from the store`)
      }
      runs.push({ image: image.name, round, tool: "podman+store", order: order++, ...r })
    }
  } finally {
    if (alsStore) retire(ctx.workDir, alsStore.dir)
  }
  return runs
}

/** One `als pull` on its own (peak RSS on images with small and big layers). */
export const alsPullOnce = async (ctx: PullContext, image: BenchImage): Promise<Sample> => {
  const r = await runAls(ctx, image)
  retire(ctx.workDir, r.dir)
  return r.pull
}
