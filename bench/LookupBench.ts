// `als lookup` as the seed runs it: a whole process per layer, so what counts is the time
// from exec to exit. Hyperfine-style: warm-up runs, then many runs, median; variants take
// turns run by run. The compiled binary's lean lookup path, the same binary with the full
// command tree (ALS_FULL_CLI=1, what every lookup paid before), and a compiled Bun
// hello-world (the floor: what any compiled Bun program pays to start).

import { mkdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { runOk } from "../test/lib/sh.ts"
import { median, quantile } from "./lib/Measure.ts"

export interface StartupStats {
  readonly runs: number
  /** ms */
  readonly wallMedian: number
  readonly wallP90: number
  readonly wallMin: number
  /** ms of CPU (user + sys) */
  readonly cpuMedian: number
}

export interface LookupBenchResult {
  readonly lean: StartupStats
  readonly full: StartupStats
  readonly floor: StartupStats
  readonly command: string
}

interface Variant {
  readonly name: keyof Omit<LookupBenchResult, "command">
  readonly cmd: ReadonlyArray<string>
  readonly env?: Record<string, string>
  /** what stdout must be (a wrong answer fast is no result) */
  readonly stdout?: string
}

const once = async (v: Variant): Promise<{ wall: number; cpu: number }> => {
  const t0 = performance.now()
  const proc = Bun.spawn([...v.cmd], { env: { ...process.env, ...v.env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" })
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  const wall = performance.now() - t0
  if (code !== 0 || (v.stdout !== undefined && out.trim() !== v.stdout)) {
    throw new Error(`${v.name}: ${v.cmd.join(" ")} exited ${code}, printed ${JSON.stringify(out.trim())}${err ? `, stderr: ${err.trim()}` : ""}`)
  }
  const usage = proc.resourceUsage()
  return { wall, cpu: usage ? Number(usage.cpuTime.total) / 1000 : NaN }
}

const stats = (xs: ReadonlyArray<{ wall: number; cpu: number }>): StartupStats => ({
  runs: xs.length,
  wallMedian: median(xs.map((x) => x.wall)),
  wallP90: quantile(xs.map((x) => x.wall), 0.9),
  wallMin: Math.min(...xs.map((x) => x.wall)),
  cpuMedian: median(xs.map((x) => x.cpu)),
})

/** The compiled hello-world, built once into `dir` (the floor of any compiled Bun program). */
export const buildFloor = async (dir: string): Promise<string> => {
  mkdirSync(dir, { recursive: true })
  const out = join(dir, "hello")
  const src = join(dirname(new URL(import.meta.url).pathname), "floor", "Hello.ts")
  await runOk(["npx", "bun", "build", "--compile", "--bytecode", "--format=cjs", "--minify", src, "--outfile", out], { timeoutMs: 5 * 60_000 })
  return out
}

/**
 * `als lookup DIGEST --ref REF --root ROOT` on a layer the store has, `runs` times per variant
 * after 3 warm-up runs each (binary and store in the page cache, as for the seed's lookups).
 */
export const lookupBench = async (opts: {
  readonly als: string
  readonly floor: string
  readonly root: string
  readonly digest: string
  readonly ref: string
  readonly runs: number
}): Promise<LookupBenchResult> => {
  const args = ["lookup", opts.digest, "--ref", opts.ref, "--root", opts.root]
  const expected = join(opts.root, opts.digest)
  const variants: Variant[] = [
    { name: "lean", cmd: [opts.als, ...args], stdout: expected },
    { name: "full", cmd: [opts.als, ...args], env: { ALS_FULL_CLI: "1" }, stdout: expected },
    { name: "floor", cmd: [opts.floor] },
  ]
  for (const v of variants) for (let i = 0; i < 3; i++) await once(v)
  const samples = new Map<string, Array<{ wall: number; cpu: number }>>(variants.map((v) => [v.name, []]))
  for (let i = 0; i < opts.runs; i++) for (const v of variants) samples.get(v.name)!.push(await once(v))
  return {
    lean: stats(samples.get("lean")!),
    full: stats(samples.get("full")!),
    floor: stats(samples.get("floor")!),
    command: `als ${args.join(" ")}`,
  }
}
