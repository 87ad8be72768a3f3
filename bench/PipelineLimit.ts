// The pipeline limit of a pull (issue 16): each stage of `als pull` alone, on the same blobs,
// in the same rounds as the pulls: the download from the loopback registry, decompression to
// nowhere, and GNU tar writing the decompressed layers plus `sync -f`. A pull cannot beat its
// slowest stage; `als pull / limit` says how far above that floor it is.
//
// Every stage runs with the page cache dropped, into a directory never used before (ext4's
// allocator trap, BENCHMARKING.md), with the layers in parallel as `als pull` does them.

import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { REPO_ROOT } from "../test/lib/als.ts"
import { runOk } from "../test/lib/sh.ts"
import { dropCaches, measure, type Sample } from "./lib/Measure.ts"
import { retire } from "./lib/Retire.ts"
import type { BenchImage, PullContext } from "./PullBench.ts"

export type Stage = "download" | "decompress" | "tar+sync"
export const STAGES: ReadonlyArray<Stage> = ["download", "decompress", "tar+sync"]

export interface StageRun {
  readonly image: string
  readonly round: number
  readonly stage: Stage
  readonly sample: Sample
  /** decompress: which decoder was faster this round */
  readonly how?: string
}

/** A layer of a pushed image, as the stages need it. */
export interface BenchBlob {
  readonly digest: string
  readonly size: number
  readonly compression: "gzip" | "zstd"
}

/** The blobs and their decompressed tars on local disk, made once per image (not timed). */
export interface StageFiles {
  readonly urls: ReadonlyArray<string>
  readonly blobs: ReadonlyArray<{ readonly path: string; readonly compression: "gzip" | "zstd" }>
  readonly tars: ReadonlyArray<string>
}

const blobUrl = (image: BenchImage, digest: string): string => {
  const slash = image.ref.indexOf("/")
  const host = image.ref.slice(0, slash)
  const repo = image.ref.slice(slash + 1, image.ref.lastIndexOf(":"))
  return `http://${host}/v2/${repo}/blobs/${digest}`
}

export const prepareStages = async (dir: string, image: BenchImage, blobs: ReadonlyArray<BenchBlob>): Promise<StageFiles> => {
  mkdirSync(dir, { recursive: true })
  const urls = blobs.map((b) => blobUrl(image, b.digest))
  const files = blobs.map((b, i) => ({ path: join(dir, `${i}.${b.compression}`), compression: b.compression, tar: join(dir, `${i}.tar`) }))
  for (let i = 0; i < blobs.length; i++) {
    await runOk(["curl", "-sSf", "-o", files[i]!.path, urls[i]!], { timeoutMs: 10 * 60_000 })
    const tool = files[i]!.compression === "gzip" ? "gzip" : "zstd"
    await runOk(["sh", "-c", `${tool} -dc < "$1" > "$2"`, "sh", files[i]!.path, files[i]!.tar], { timeoutMs: 10 * 60_000 })
  }
  return { urls, blobs: files.map((f) => ({ path: f.path, compression: f.compression })), tars: files.map((f) => f.tar) }
}

const TIMEOUT = 30 * 60_000
let stageCounter = 0

/** `sh -c` running one command per argument in parallel, failing if any does. */
const parallel = (perItem: string, items: ReadonlyArray<string>, after = ""): string[] => [
  "sh",
  "-c",
  `set -e; pids=""; for x in "$@"; do ${perItem} & pids="$pids $!"; done; for p in $pids; do wait $p; done; ${after}`,
  "sh",
  ...items,
]

const download = async (files: StageFiles): Promise<Sample> => {
  await dropCaches()
  return measure(parallel(`curl -sSf -o /dev/null "$x"`, files.urls), { timeoutMs: TIMEOUT })
}

/** The faster of node:zlib streams (what als uses) and gzip/zstd -dc, all layers at once. */
const decompress = async (files: StageFiles): Promise<{ sample: Sample; how: string }> => {
  await dropCaches()
  const zlib = await measure(
    [process.execPath, join(REPO_ROOT, "bench", "tools", "Decompress.ts"), ...files.blobs.map((b) => `${b.compression}:${b.path}`)],
    // a runtime without a zstd stream decoder fails here: the CLI's figure stands alone
    { timeoutMs: TIMEOUT, allowFailure: true },
  )
  await dropCaches()
  const cli = await measure(
    parallel(`case "$x" in *.zstd) zstd -qdc "$x" >/dev/null;; *) gzip -dc "$x" >/dev/null;; esac`, files.blobs.map((b) => b.path)),
    { timeoutMs: TIMEOUT },
  )
  return zlib.exitCode === 0 && zlib.wall <= cli.wall ? { sample: zlib, how: "node:zlib" } : { sample: cli, how: "gzip/zstd -dc" }
}

/** GNU tar -x of every layer into its own fresh directory (as als does), then syncfs. */
const tarSync = async (ctx: PullContext, files: StageFiles): Promise<Sample> => {
  const dir = join(ctx.workDir, `${String(++stageCounter).padStart(3, "0")}t`)
  mkdirSync(dir, { recursive: true })
  try {
    await dropCaches()
    return await measure(
      parallel(`d="${dir}/$(basename "$x" .tar)"; mkdir "$d"; tar --xattrs --xattrs-include='*' -xpf "$x" -C "$d"`, files.tars, `sync -f "${dir}"`),
      { timeoutMs: TIMEOUT },
    )
  } finally {
    retire(ctx.workDir, dir)
  }
}

/** One round of the three stages on one image (the order rotates with the round). */
export const stageRound = async (ctx: PullContext, image: BenchImage, files: StageFiles, round: number): Promise<StageRun[]> => {
  const out: StageRun[] = []
  const k = round % STAGES.length
  for (const stage of [...STAGES.slice(k), ...STAGES.slice(0, k)]) {
    ctx.log(`  round ${round + 1} ${image.name}: stage ${stage}`)
    if (stage === "download") out.push({ image: image.name, round, stage, sample: await download(files) })
    else if (stage === "decompress") {
      const r = await decompress(files)
      out.push({ image: image.name, round, stage, sample: r.sample, how: r.how })
    } else out.push({ image: image.name, round, stage, sample: await tarSync(ctx, files) })
  }
  return out
}

/** The limit of a round: its slowest stage's wall time. */
export const roundLimit = (runs: ReadonlyArray<StageRun>, image: string, round: number): { wall: number; stage: Stage } | undefined => {
  let best: { wall: number; stage: Stage } | undefined
  for (const r of runs) {
    if (r.image !== image || r.round !== round) continue
    if (best === undefined || r.sample.wall > best.wall) best = { wall: r.sample.wall, stage: r.stage }
  }
  return best
}
