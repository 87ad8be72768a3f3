#!/usr/bin/env bun
/**
 * Runtime entry only: provides the platform (Node APIs, which both Bun and Deno implement),
 * runs the CLI, and turns failures into one readable line and an exit status.
 *
 * Modules are loaded on demand (`import()`): `als lookup`, which the seed runs once per layer,
 * takes a lean path (src/cli/LookupLean.ts) that never loads @effect/cli, the platform layer
 * or the registry code; any other command line, or a lookup spelled in a way only the full
 * parser knows, loads the whole command tree. ALS_FULL_CLI=1 forces the full path (to compare).
 * Start-up figures and how they were measured: BENCHMARKS.md.
 */
// first: hides process.stdout from effect while effect initialises (see the module)
import { restoreProcess } from "../src/cli/hideStdout.ts"
import { Cause, Effect, Exit, Fiber, Option } from "effect"
import { ExitCode, exitCode, signalIsNormalEnd } from "../src/cli/exit.ts"

restoreProcess()

interface BunRuntime {
  gc(full: boolean): void
  unsafe?: { setJITPolicy?(scale: number): void }
}
const bun = (globalThis as { Bun?: BunRuntime }).Bun

/**
 * Start-up code runs once: compiling it to machine code costs more than interpreting it. A
 * tier-up threshold 16 times the normal one keeps module initialisation and a lookup in the
 * interpreter; commands that do real work restore the normal policy once their modules are
 * loaded, before their hot loops start. The binary should start with it too
 * (`bun build --compile-jit-policy=16`): this call comes only after `effect` is initialised.
 */
const STARTUP_JIT_POLICY = 16
const setJitPolicy = (scale: number): void => bun?.unsafe?.setJITPolicy?.(scale)
setJitPolicy(STARTUP_JIT_POLICY)

/**
 * JavaScriptCore sizes its heap from the machine's RAM: with 24 GB it lets 40-70 MB of dead
 * 64-128 KiB download and zlib buffers pile up before it collects, so a pull's peak RSS grew
 * with layer size (88 MiB for 3 MiB layers, 150-170 MiB for 500 MiB ones). A full collection
 * every half second keeps it near 120 MiB. A collection's cost grows with the live heap (16-48
 * ms on a pull of 50,000 files, 13% of the main thread at a fixed 500 ms), so the next one waits
 * at least 20 times as long as the last took: never more than ~5% of the thread. Commands that
 * end sooner (lookup) never reach the first one; the timer does not keep the process alive.
 */
const collectGarbagePeriodically = (): void => {
  if (!bun) return
  const collect = () => {
    const t = performance.now()
    bun.gc(true)
    setTimeout(collect, Math.max(500, 20 * (performance.now() - t))).unref()
  }
  setTimeout(collect, 500).unref()
}

const args = process.argv.slice(2).map((a) => (a === "--tls-verify" ? "--tls-verify=true" : a))

/**
 * SIGINT and SIGTERM interrupt the command: its finalizers run (a pull removes its staging,
 * releases its locks and logs PullFailed "interrupted"), then als exits 130 or 143 with one
 * line on stderr. Clean-up that takes longer than CLEANUP_BOUND_MS, or a second signal, ends
 * the process at once with the same status.
 */
const SIGNAL_STATUS = { SIGINT: ExitCode.interrupted, SIGTERM: ExitCode.terminated } as const
type CaughtSignal = keyof typeof SIGNAL_STATUS
const CLEANUP_BOUND_MS = 5_000
let caught: CaughtSignal | undefined

const runMain = (program: Effect.Effect<unknown, unknown>): Promise<Exit.Exit<unknown, unknown>> =>
  new Promise((resolve) => {
    const fiber = Effect.runFork(program)
    const onSignal = (signal: CaughtSignal) => {
      if (caught !== undefined) {
        process.stderr.write(`als: ${signal} again: exiting without waiting for clean-up\n`)
        return process.exit(SIGNAL_STATUS[caught])
      }
      caught = signal
      // not unref'd: this timer is what ends a clean-up that hangs
      setTimeout(() => {
        process.stderr.write(`als: interrupted (${signal}); clean-up took over ${CLEANUP_BOUND_MS / 1000} s, exiting anyway\n`)
        process.exit(SIGNAL_STATUS[signal])
      }, CLEANUP_BOUND_MS)
      Effect.runFork(Fiber.interrupt(fiber))
    }
    process.on("SIGINT", onSignal)
    process.on("SIGTERM", onSignal)
    fiber.addObserver(resolve)
  })

const runFull = async (): Promise<Exit.Exit<unknown, unknown>> => {
  collectGarbagePeriodically()
  const [{ cliEnvironment }, { runCli }] = await Promise.all([import("../src/cli/CliEnvironment.ts"), import("../src/cli/Main.ts")])
  setJitPolicy(1)
  return runMain(runCli(["als", "als", ...args]).pipe(Effect.provide(cliEnvironment)))
}

const run = async (): Promise<Exit.Exit<unknown, unknown>> => {
  if (args[0] === "lookup" && !process.env.ALS_FULL_CLI) {
    const lean = await import("../src/cli/LookupLean.ts")
    const parsed = lean.parseLookupArgs(args.slice(1))
    if (parsed) return runMain(lean.lookupProgram(parsed))
  }
  return runFull()
}

const finish = async (exit: Exit.Exit<unknown, unknown>): Promise<never> => {
  if (caught !== undefined) {
    if (signalIsNormalEnd()) return process.exit(ExitCode.ok) // als serve: a signal is how it stops
    // whatever the command ended with: it ended because of the signal
    process.stderr.write(`als: interrupted (${caught})\n`)
    return process.exit(SIGNAL_STATUS[caught])
  }
  if (Exit.isSuccess(exit)) return process.exit(exitCode())
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const { describeFailure } = await import("../src/cli/render.ts")
    const { message, code } = describeFailure(failure.value)
    if (message) process.stderr.write(`als: ${message}\n`)
    return process.exit(code)
  }
  if (Cause.isInterruptedOnly(exit.cause)) return process.exit(ExitCode.interrupted)
  const { safeLines } = await import("../src/domain/SafeText.ts")
  process.stderr.write(`als: internal error (please report it):\n${safeLines(Cause.pretty(exit.cause))}\n`)
  return process.exit(ExitCode.internal)
}

// no top-level await: the compiled binary is built with --bytecode, which needs a plain script
void run().then(finish)
