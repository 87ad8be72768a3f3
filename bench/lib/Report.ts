// The benchmark's figures as Markdown: a summary against the targets, the tables, every run,
// and how they were taken. BENCHMARKS.md keeps its hand-written part: only the text between
// the two markers below is replaced by a run.

import { existsSync, readFileSync, writeFileSync } from "node:fs"
import type { LogRateResult } from "../LogRate.ts"
import type { LookupBenchResult, StartupStats } from "../LookupBench.ts"
import { roundLimit, STAGES, type StageRun } from "../PipelineLimit.ts"
import type { BenchImage, PullRun, Tool } from "../PullBench.ts"
import type { Machine } from "./Machine.ts"
import { median, pairedRatio } from "./Measure.ts"

export const BEGIN = "<!-- bench:begin (written by `bun run bench`; edit outside these markers) -->"
export const END = "<!-- bench:end -->"

export interface Targets {
  readonly pullRatio: number
  readonly pullRatioAim: number
  readonly rssMiB: number
  readonly storeRatio: number
  readonly lookupMs: number
  readonly foldPerSec: number
}

export const TARGETS: Targets = { pullRatio: 1.0, pullRatioAim: 0.8, rssMiB: 150, storeRatio: 0.2, lookupMs: 60, foldPerSec: 500_000 }

/** Issue 16: als / podman wall per image (by name prefix), als / pipeline limit, the 1 MB image. */
export const PIPELINE_TARGETS = {
  podmanRatio: [["debian", 0.4], ["small-50k", 0.45], ["large-1g", 0.5], ["small-900", 0.5]] as ReadonlyArray<readonly [string, number]>,
  limitRatio: 1.5,
}

export interface BenchResults {
  readonly date: string
  readonly command: string
  readonly quick: boolean
  readonly rounds: number
  readonly machine: Machine
  readonly loadStart: string
  readonly loadEnd: string
  readonly cachesDropped: boolean
  readonly images: ReadonlyArray<BenchImage>
  readonly runs: ReadonlyArray<PullRun>
  /** each stage of a pull alone, same rounds and blobs (bench/PipelineLimit.ts) */
  readonly stageRuns?: ReadonlyArray<StageRun>
  /** als pull's peak RSS (MiB, median) on an image with tiny layers: RSS must not follow layer size */
  readonly rssSmallLayers?: { readonly image: BenchImage; readonly rssMiB: number }
  readonly lookup?: LookupBenchResult
  readonly log?: LogRateResult
  readonly durationSec: number
}

const TOOLS: ReadonlyArray<Tool> = ["als", "podman", "skopeo+umoci", "podman+store"]

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–")
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–")
const ratio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–")
const mib = (kib: number) => kib / 1024
const thousands = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–")
const sizeMB = (bytes: number) => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(0)} MB`)

/** `left`: how many leading columns hold text (left-aligned); the others are figures. */
const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, left = 1): string =>
  [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i < left ? "---" : "---:")).join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n")

/** Per round (index = round), the value of one tool on one image. */
const perRound = (runs: ReadonlyArray<PullRun>, image: string, tool: Tool, rounds: number, f: (r: PullRun) => number) => {
  const out: Array<number | undefined> = new Array(rounds).fill(undefined)
  for (const r of runs) if (r.image === image && r.tool === tool) out[r.round] = f(r)
  return out
}

const defined = (xs: ReadonlyArray<number | undefined>) => xs.filter((x): x is number => x !== undefined)

export interface ImageRatios {
  readonly alsVsPodman: number
  readonly alsVsPodmanSync: number
  readonly alsSyncVsPodmanSync: number
  readonly alsVsSkopeoUmoci: number
  readonly storeVsPodman: number
}

export const imageRatios = (res: BenchResults, image: string): ImageRatios => {
  const w = (tool: Tool) => perRound(res.runs, image, tool, res.rounds, (r) => r.pull.wall)
  const ws = (tool: Tool) => perRound(res.runs, image, tool, res.rounds, (r) => r.pull.wall + r.sync.wall)
  return {
    alsVsPodman: pairedRatio(w("als"), w("podman")),
    alsVsPodmanSync: pairedRatio(w("als"), ws("podman")),
    alsSyncVsPodmanSync: pairedRatio(ws("als"), ws("podman")),
    alsVsSkopeoUmoci: pairedRatio(w("als"), w("skopeo+umoci")),
    storeVsPodman: pairedRatio(w("podman+store"), w("podman")),
  }
}

const largest = (res: BenchResults): BenchImage | undefined => [...res.images].sort((a, b) => b.compressedBytes - a.compressedBytes)[0]

const alsRssMiB = (res: BenchResults, image: string) =>
  median(defined(perRound(res.runs, image, "als", res.rounds, (r) => mib(r.pull.maxRssKiB))))

const verdict = (ok: boolean) => (ok ? "met" : "**missed**")

const summary = (res: BenchResults): string => {
  const rows: string[][] = []
  if (res.images.length > 0) {
    const per = res.images.map((i) => ({ i, r: imageRatios(res, i.name) }))
    const worst = Math.max(...per.map((p) => p.r.alsVsPodman))
    const worstSync = Math.max(...per.map((p) => p.r.alsVsPodmanSync))
    rows.push([
      `\`als pull\` wall ≤ ${TARGETS.pullRatio.toFixed(1)}× \`podman pull\` on every image (aim ${TARGETS.pullRatioAim}×)`,
      per.map((p) => `${p.i.name} ${ratio(p.r.alsVsPodman)}`).join(", "),
      verdict(worst <= TARGETS.pullRatio),
    ])
    rows.push([
      "the same against `podman pull` + `sync` (both durable)",
      per.map((p) => `${p.i.name} ${ratio(p.r.alsVsPodmanSync)}`).join(", "),
      verdict(worstSync <= TARGETS.pullRatio),
    ])
    const big = largest(res)
    if (big) {
      const rss = alsRssMiB(res, big.name)
      const small = res.rssSmallLayers
      rows.push([
        `peak RSS of \`als pull\` ≤ ${TARGETS.rssMiB} MB on the largest image, not growing with layer size`,
        `${f1(rss)} MiB on ${big.name} (${sizeMB(big.compressedBytes)})` +
          (small ? `; ${f1(small.rssMiB)} MiB on ${small.image.name} (${sizeMB(small.image.compressedBytes)})` : ""),
        verdict(rss <= TARGETS.rssMiB && (!small || rss <= small.rssMiB * 1.5)),
      ])
    }
    const worstStore = Math.max(...per.map((p) => p.r.storeVsPodman))
    rows.push([
      `\`podman pull\` with the store filled ≤ ${TARGETS.storeRatio}× without`,
      per.map((p) => `${p.i.name} ${ratio(p.r.storeVsPodman)}`).join(", "),
      verdict(worstStore <= TARGETS.storeRatio),
    ])
  }
  if (res.images.length > 0) {
    const per = res.images.map((i) => ({ i, r: imageRatios(res, i.name) }))
    const podmanTargets = per.flatMap((p) => {
      const t = PIPELINE_TARGETS.podmanRatio.find(([prefix]) => p.i.name.startsWith(prefix))
      return t ? [{ ...p, t: t[1] }] : []
    })
    if (podmanTargets.length > 0) {
      rows.push([
        "issue 16: `als pull` / `podman pull` wall ≤ 0.40× debian, 0.45× small-50k, 0.50× large-1g, 0.50× the 1 MB image (small-900)",
        podmanTargets.map((p) => `${p.i.name} ${ratio(p.r.alsVsPodman)} (≤ ${p.t.toFixed(2)})`).join(", "),
        verdict(podmanTargets.every((p) => p.r.alsVsPodman <= p.t)),
      ])
    }
    if (res.stageRuns && res.stageRuns.length > 0) {
      const lim = res.images.map((i) => ({ i, r: limitRatio(res, i.name) }))
      rows.push([
        `issue 16: \`als pull\` / pipeline limit (its slowest stage alone) ≤ ${PIPELINE_TARGETS.limitRatio}×`,
        lim.map((p) => `${p.i.name} ${ratio(p.r)}`).join(", "),
        verdict(lim.every((p) => p.r <= PIPELINE_TARGETS.limitRatio)),
      ])
    }
  }
  if (res.lookup) {
    rows.push([
      `compiled \`als lookup\`, whole process ≤ ${TARGETS.lookupMs} ms`,
      `median ${f1(res.lookup.lean.wallMedian)} ms wall, ${f1(res.lookup.lean.cpuMedian)} ms CPU (full CLI: ${f1(res.lookup.full.wallMedian)} ms)`,
      verdict(res.lookup.lean.wallMedian <= TARGETS.lookupMs),
    ])
  }
  if (res.log) {
    rows.push([
      `fold ≥ ${thousands(TARGETS.foldPerSec)} events/s`,
      `${thousands(res.log.foldCountPerSec)}/s wall, checksums on a second thread (${thousands(res.log.foldOneThreadPerSec)}/s on one thread; ${thousands(res.log.foldFirstPerSec)}/s for a fresh process's first fold); with the \`als ls\` projection ${thousands(res.log.foldProjectPerSec)}/s`,
      verdict(res.log.foldCountPerSec >= TARGETS.foldPerSec),
    ])
  }
  return table(["target", "measured", ""], rows, 3)
}

const pullTables = (res: BenchResults): string => {
  const out: string[] = []
  const rows: string[][] = []
  for (const img of res.images) {
    for (const tool of TOOLS) {
      const get = (f: (r: PullRun) => number) => defined(perRound(res.runs, img.name, tool, res.rounds, f))
      const walls = get((r) => r.pull.wall)
      if (walls.length === 0) continue
      rows.push([
        img.name,
        tool,
        f2(median(walls)),
        f2(median(get((r) => r.pull.wall + r.sync.wall))),
        f2(median(get((r) => r.pull.cpu))),
        f1(median(get((r) => mib(r.pull.maxRssKiB)))),
      ])
    }
  }
  out.push(table(["image", "tool", "wall s", "wall + sync s", "CPU s (user+sys)", "peak RSS MiB"], rows, 2))
  out.push("")
  out.push("Ratios, each the median over rounds of the ratio within a round (the tools ran back to back):")
  out.push("")
  out.push(
    table(
      ["image", "als / podman", "als / (podman + sync)", "(als + sync) / (podman + sync)", "als / (skopeo + umoci)", "podman with store / without"],
      res.images.map((img) => {
        const r = imageRatios(res, img.name)
        return [img.name, ratio(r.alsVsPodman), ratio(r.alsVsPodmanSync), ratio(r.alsSyncVsPodmanSync), img.zstd ? "n/a (umoci: no zstd)" : ratio(r.alsVsSkopeoUmoci), ratio(r.storeVsPodman)]
      }),
    ),
  )
  return out.join("\n")
}

/** Median over rounds of als's wall over the round's slowest stage. */
export const limitRatio = (res: BenchResults, image: string): number => {
  const als = perRound(res.runs, image, "als", res.rounds, (r) => r.pull.wall)
  const limit = als.map((_, round) => roundLimit(res.stageRuns ?? [], image, round)?.wall)
  return pairedRatio(als, limit)
}

const stageTable = (res: BenchResults): string => {
  const runs = res.stageRuns ?? []
  const rows: string[][] = []
  for (const img of res.images) {
    const med = (stage: string, f: (r: StageRun) => number) => median(runs.filter((r) => r.image === img.name && r.stage === stage).map(f))
    if (!runs.some((r) => r.image === img.name)) continue
    const limits = Array.from({ length: res.rounds }, (_, round) => roundLimit(runs, img.name, round)).filter((x) => x !== undefined)
    const slowest = STAGES.map((s) => [s, limits.filter((l) => l.stage === s).length] as const).sort((a, b) => b[1] - a[1])[0]![0]
    const als = median(defined(perRound(res.runs, img.name, "als", res.rounds, (r) => r.pull.wall)))
    rows.push([
      img.name,
      ...STAGES.map((s) => `${f2(med(s, (r) => r.sample.wall))} (${f2(med(s, (r) => r.sample.cpu))})`),
      `${f2(median(limits.map((l) => l.wall)))} (${slowest})`,
      f2(als),
      ratio(limitRatio(res, img.name)),
    ])
  }
  return table(["image", "download s (CPU s)", "decompress s (CPU s)", "GNU tar -x + sync s (CPU s)", "limit s (slowest stage)", "als pull s", "als / limit"], rows)
}

const startupRow = (name: string, s: StartupStats) => [name, f1(s.wallMedian), f1(s.wallP90), f1(s.wallMin), f1(s.cpuMedian), String(s.runs)]

const rawRuns = (res: BenchResults): string =>
  table(
    ["round", "image", "#", "tool", "wall s", "sync s", "CPU s", "RSS MiB", "layers from store"],
    [...res.runs]
      .sort((a, b) => a.round - b.round || res.images.findIndex((i) => i.name === a.image) - res.images.findIndex((i) => i.name === b.image) || a.order - b.order)
      .map((r) => [String(r.round + 1), r.image, String(r.order + 1), r.tool, f2(r.pull.wall), f2(r.sync.wall), f2(r.pull.cpu), f1(mib(r.pull.maxRssKiB)), r.storeLayers === undefined ? "" : String(r.storeLayers)]),
    4,
  )

export const renderReport = (res: BenchResults): string => {
  const m = res.machine
  const out: string[] = []
  out.push(`Measured ${res.date} with \`${res.command}\`${res.quick ? " (quick: one small image, one round; not for conclusions)" : ""}, ${res.rounds} round(s), in ${Math.round(res.durationSec / 60)} min.`)
  out.push("")
  out.push(
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.memoryGiB} GiB RAM, kernel ${m.kernel}, runs on ${m.disk}. ` +
      `Load average (1, 5, 15 min) ${res.loadStart} at the start, ${res.loadEnd} at the end` +
      `${Number(res.loadStart.split(" ")[0]) > m.cpus / 2 ? ": the machine was shared and busy, so absolute times are inflated; the ratios within a round are the figures to trust" : ""}.`,
  )
  out.push("")
  out.push(`Tools: ${Object.entries(m.tools).map(([k, v]) => `${k} \`${v}\``).join(", ")}.`)
  if (!res.cachesDropped) out.push("\n**The page cache could not be dropped (not root): runs after the first read warm caches.**")
  out.push("")
  out.push("### Against the targets")
  out.push("")
  out.push(summary(res))
  if (res.images.length > 0) {
    out.push("")
    out.push("### Pull")
    out.push("")
    out.push(table(["image", "what", "layers", "compressed"], res.images.map((i) => [i.name, i.description, String(i.layers), sizeMB(i.compressedBytes)]), 2))
    out.push("")
    out.push(pullTables(res))
    if (res.stageRuns && res.stageRuns.length > 0) {
      out.push("")
      out.push(
        "Pipeline limit: each stage of a pull alone on the same blobs, in the same rounds, cache dropped, layers in parallel " +
          "(download: curl from the registry to /dev/null; decompress: the faster of node:zlib and gzip/zstd -dc, to nowhere; " +
          "GNU tar -xp of the decompressed layers, each into a fresh directory, then `sync -f`). Medians over rounds; " +
          "als / limit is the median of the ratio within each round:",
      )
      out.push("")
      out.push(stageTable(res))
    }
    if (res.rssSmallLayers) {
      out.push("")
      out.push(`Peak RSS of \`als pull\` on ${res.rssSmallLayers.image.name} (${res.rssSmallLayers.image.description}): ${f1(res.rssSmallLayers.rssMiB)} MiB (median of 3).`)
    }
  }
  if (res.lookup) {
    out.push("")
    out.push("### `als lookup` start-up (whole process, a layer the store has)")
    out.push("")
    out.push(`\`${res.lookup.command}\`, binary and store in the page cache, variants taking turns:`)
    out.push("")
    out.push(
      table(["variant", "median ms", "p90 ms", "min ms", "CPU ms (median)", "runs"], [
        startupRow("`dist/als lookup` (lean path)", res.lookup.lean),
        startupRow("`ALS_FULL_CLI=1 dist/als lookup` (whole command tree)", res.lookup.full),
        startupRow("compiled Bun hello-world (the floor)", res.lookup.floor),
      ]),
    )
  }
  if (res.log) {
    const l = res.log
    out.push("")
    out.push("### Event log")
    out.push("")
    out.push(
      `${thousands(l.events)} events (the mix of \`als pull\` runs: 15 events per 3-layer image, ${Math.round(l.logBytes / l.events)} bytes per event on disk) ` +
        `appended in batches of ${l.batch} with fdatasync off, then folded:`,
    )
    out.push("")
    out.push(
      table(["operation", "events/s (wall)", "events/s per CPU-second"], [
        ["append (batched, no fdatasync)", thousands(l.appendPerSec), thousands(l.appendPerCpuSec)],
        ["fold, counting by type (read, check checksums and chain, decode): as `als` folds, checksums on a second thread", thousands(l.foldCountPerSec), thousands(l.foldCountPerCpuSec)],
        ["the same fold on one thread", thousands(l.foldOneThreadPerSec), thousands(l.foldOneThreadPerCpuSec)],
        ["the first fold of the process (two threads, reader not yet compiled: what `als ls` sees)", thousands(l.foldFirstPerSec), ""],
        ["fold with `Projection.evolve` (what `als ls` does)", thousands(l.foldProjectPerSec), thousands(l.foldProjectPerCpuSec)],
      ]),
    )
    out.push("")
    out.push(`Heap growth during the first fold: ${l.foldHeapGrowthMB} MB.`)
  }
  if (res.runs.length > 0) {
    out.push("")
    out.push("<details><summary>Every pull run</summary>")
    out.push("")
    out.push(rawRuns(res))
    out.push("")
    out.push("</details>")
  }
  return out.join("\n")
}

const SKELETON = (generated: string) => `# Benchmarks

\`bun run bench\` builds the benchmark images (cached), serves them from a local
docker-registry on 127.0.0.1 and measures \`als\` against podman and skopeo + umoci; see
"How it is measured" below. \`bun run bench --quick\` is the small version CI runs
(\`scripts/bench-ci.sh\`).

${BEGIN}
${generated}
${END}
`

/** Writes `generated` into `path` between the markers (a fresh file when there are none). */
export const writeReport = (path: string, generated: string): void => {
  if (existsSync(path)) {
    const text = readFileSync(path, "utf8")
    const a = text.indexOf(BEGIN)
    const b = text.indexOf(END)
    if (a >= 0 && b > a) {
      writeFileSync(path, `${text.slice(0, a + BEGIN.length)}\n${generated}\n${text.slice(b)}`)
      return
    }
  }
  writeFileSync(path, SKELETON(generated))
}
