// How one benchmark run is measured: wall time (performance.now around the process), CPU
// (user + sys) and peak RSS from GNU time's rusage of the command and the children it waited
// for; plus the page-cache drop before a run and the statistics of a series.

import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { shellQuote } from "../../test/lib/sh.ts"

export interface Sample {
  /** seconds */
  readonly wall: number
  /** seconds, user + sys, of the command and the children it waited for */
  readonly cpu: number
  /** KiB: the largest resident set of one process in the tree (GNU time %M) */
  readonly maxRssKiB: number
}

export interface Measured extends Sample {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
}

export class CommandFailed extends Error {
  override readonly name = "CommandFailed"
  constructor(readonly cmd: ReadonlyArray<string>, readonly result: Measured) {
    super(
      `benchmark command failed (exit ${result.exitCode}): ${shellQuote(cmd)}\n` +
        `--- stderr ---\n${result.stderr.slice(-4000)}\n--- stdout ---\n${result.stdout.slice(-2000)}`,
    )
  }
}

const GNU_TIME = "/usr/bin/time"

export interface MeasureOptions {
  readonly env?: Record<string, string>
  readonly cwd?: string
  readonly timeoutMs?: number
  /** resolve with the failure instead of throwing */
  readonly allowFailure?: boolean
}

/**
 * Runs `cmd` under GNU time. Wall time is taken here around the spawn (GNU time's %e has only
 * 10 ms resolution); the few ms GNU time itself adds are the same for every tool.
 */
export const measure = async (cmd: ReadonlyArray<string>, opts: MeasureOptions = {}): Promise<Measured> => {
  const dir = mkdtempSync(join(tmpdir(), "als-bench-time-"))
  const out = join(dir, "rusage")
  try {
    const t0 = performance.now()
    const proc = Bun.spawn([GNU_TIME, "-f", "%U %S %M", "-o", out, ...cmd], {
      env: { ...process.env, ...opts.env },
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      ...(opts.timeoutMs ? { timeout: opts.timeoutMs, killSignal: "SIGKILL" as const } : {}),
    })
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ])
    const wall = (performance.now() - t0) / 1000
    // GNU time writes "Command exited with non-zero status N" before the figures on failure
    const line = readFileSync(out, "utf8").trim().split("\n").pop() ?? ""
    const [user, sys, rss] = line.split(" ").map(Number)
    const r: Measured = { wall, cpu: (user ?? NaN) + (sys ?? NaN), maxRssKiB: rss ?? NaN, exitCode, stdout, stderr }
    if (exitCode !== 0 && !opts.allowFailure) throw new CommandFailed(cmd, r)
    return r
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Several commands one after the other, as one tool run: times and CPU add up, RSS is the max. */
export const sumSamples = (parts: ReadonlyArray<Sample>): Sample => ({
  wall: parts.reduce((a, s) => a + s.wall, 0),
  cpu: parts.reduce((a, s) => a + s.cpu, 0),
  maxRssKiB: Math.max(...parts.map((s) => s.maxRssKiB)),
})

export const isRoot = (): boolean => process.getuid?.() === 0

/**
 * Flush dirty pages and drop the page cache, dentries and inodes (`echo 3`, a superset of the
 * page-cache drop `echo 1`): every run starts with cold caches, and no inode state of the
 * previous run's (deleted) tree is left in memory. Returns false when not allowed (not root).
 */
export const dropCaches = async (): Promise<boolean> => {
  await Bun.spawn(["sync"]).exited
  if (!isRoot()) return false
  try {
    await Bun.write("/proc/sys/vm/drop_caches", "3\n")
    return true
  } catch {
    return false
  }
}

/** `sync -f DIR`: syncfs(2) on DIR's filesystem, what `als pull` does before it commits a layer. */
export const syncFs = async (dir: string): Promise<Sample> => measure(["sync", "-f", dir])

// ---- statistics --------------------------------------------------------------------------------

export const median = (xs: ReadonlyArray<number>): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const m = Math.floor(v.length / 2)
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2
}

export const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!
}

/** Median of the per-round ratios a[i] / b[i] (rounds where either is missing are skipped). */
export const pairedRatio = (a: ReadonlyArray<number | undefined>, b: ReadonlyArray<number | undefined>): number => {
  const r: number[] = []
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]
    const y = b[i]
    if (x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y) && y > 0) r.push(x / y)
  }
  return median(r)
}

export const loadAverage = (): string => {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")
  } catch {
    return "?"
  }
}
