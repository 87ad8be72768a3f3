// Run the `als` CLI from tests the way users run it: the compiled binary `dist/als` (built once
// per test process when missing or older than the sources), else `bun bin/als.ts`. Also reads a
// store's audit log as NDJSON through `als log --json`.
//
//   const r = await als(["pull", "--root", store, "--tls-verify=false", ref])   // never throws on exit != 0
//   const events = await alsLog(store)                                           // [{ type, offset, … }]

import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { run, runOk, type RunResult } from "./sh.ts"

export const REPO_ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..")
export const DIST_ALS = join(REPO_ROOT, "dist", "als")
const ENTRY = join(REPO_ROOT, "bin", "als.ts")

export interface AlsResult {
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  /** the command line that ran, for messages */
  readonly cmd: ReadonlyArray<string>
}

export interface AlsOptions {
  /** merged over process.env (undefined removes a variable) */
  readonly env?: Record<string, string | undefined>
  /** kill after this many ms (default 5 minutes) */
  readonly timeoutMs?: number
  readonly cwd?: string
}

/** Newest mtime (ms) of any file below `dir`. */
const newestMtime = (dir: string): number => {
  let newest = 0
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.isFile()) newest = Math.max(newest, statSync(p).mtimeMs)
    }
  }
  walk(dir)
  return newest
}

const sourcesMtime = (): number =>
  Math.max(
    newestMtime(join(REPO_ROOT, "src")),
    newestMtime(join(REPO_ROOT, "bin")),
    statSync(join(REPO_ROOT, "package.json")).mtimeMs,
  )

/** True when dist/als exists and is at least as new as every source file. */
export const distIsFresh = (): boolean => existsSync(DIST_ALS) && statSync(DIST_ALS).mtimeMs >= sourcesMtime()

/**
 * Build dist/als with the package's `build` script, writing a temporary file that is renamed
 * into place: another test process running the old binary, or building at the same time, never
 * sees a half-written executable.
 */
const build = async (): Promise<void> => {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts?: Record<string, string> }
  const script = pkg.scripts?.build
  if (!script || !/--outfile\s+dist\/als\b/.test(script)) throw new Error(`package.json has no "build" script writing dist/als: ${script}`)
  const tmp = `dist/als.tmp-${process.pid}-${Date.now()}`
  const cmd = script.replace(/--outfile\s+dist\/als\b/, `--outfile ${tmp}`).split(/\s+/).filter(Boolean)
  // The script starts with `bun`: run the pinned one through npx.
  const argv = cmd[0] === "bun" ? ["npx", ...cmd] : cmd
  try {
    await runOk(argv, { cwd: REPO_ROOT, timeoutMs: 5 * 60_000 })
    renameSync(join(REPO_ROOT, tmp), DIST_ALS)
  } finally {
    rmSync(join(REPO_ROOT, tmp), { force: true })
  }
}

let resolved: Promise<ReadonlyArray<string>> | undefined

/**
 * The command prefix that runs als: `[dist/als]`, building it first when it is missing or
 * older than src/ (once per test process); `[npx, bun, bin/als.ts]` when the build fails.
 * ALS_TEST_FROM_SOURCE=1 forces running from source.
 */
export const alsCommand = (): Promise<ReadonlyArray<string>> => {
  if (resolved) return resolved
  resolved = (async () => {
    if (process.env.ALS_TEST_FROM_SOURCE === "1") return ["npx", "bun", ENTRY]
    if (!distIsFresh()) {
      try {
        await build()
      } catch (e) {
        process.stderr.write(`test/lib/als.ts: building dist/als failed, running from source instead:\n${String(e)}\n`)
        return ["npx", "bun", ENTRY]
      }
    }
    return [DIST_ALS]
  })()
  return resolved
}

/** Run `als ARGS…`; resolves whatever the exit code (see alsOk). */
export const als = async (args: ReadonlyArray<string>, opts: AlsOptions = {}): Promise<AlsResult> => {
  const prefix = await alsCommand()
  const r: RunResult = await run([...prefix, ...args], {
    // A pipe, not a TTY, anyway; NO_COLOR keeps @effect/cli's help and errors plain.
    env: { NO_COLOR: "1", ...opts.env },
    timeoutMs: opts.timeoutMs ?? 5 * 60_000,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  })
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, cmd: r.cmd }
}

/** One readable block for assertion messages. */
export const describeResult = (r: AlsResult): string =>
  `$ ${r.cmd.join(" ")}\nexit ${r.exitCode}\n--- stdout ---\n${r.stdout.trimEnd()}\n--- stderr ---\n${r.stderr.trimEnd()}`

export class AlsFailed extends Error {
  override readonly name = "AlsFailed"
  constructor(readonly result: AlsResult) {
    super(describeResult(result))
  }
}

/** Run `als ARGS…` and throw (with its output) unless it exits 0. */
export const alsOk = async (args: ReadonlyArray<string>, opts: AlsOptions = {}): Promise<AlsResult> => {
  const r = await als(args, opts)
  if (r.exitCode !== 0) throw new AlsFailed(r)
  return r
}

/** One event of `als log --json`: its type and fields, plus offset, time, workflow, host, pid, id. */
export interface AlsLogEvent {
  readonly type: string
  readonly offset: number
  readonly time: string
  readonly workflow: string
  readonly [field: string]: unknown
}

/** The store's log as parsed NDJSON (`als log --json --root ROOT [extra filters]`). */
export const alsLog = async (root: string, extraArgs: ReadonlyArray<string> = []): Promise<AlsLogEvent[]> => {
  const r = await alsOk(["log", "--json", "--root", root, ...extraArgs])
  return r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l, i) => {
      try {
        return JSON.parse(l) as AlsLogEvent
      } catch {
        throw new Error(`als log --json line ${i + 1} is not JSON: ${l}\n${describeResult(r)}`)
      }
    })
}

/** Events of the given types, in log order. */
export const eventsOf = (events: ReadonlyArray<AlsLogEvent>, ...types: string[]): AlsLogEvent[] =>
  events.filter((e) => types.includes(e.type))
