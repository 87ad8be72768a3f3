#!/usr/bin/env bun
/**
 * Runtime entry only: provides the platform (Node APIs, which both Bun and Deno implement),
 * runs the CLI, and turns failures into one readable line and an exit status.
 *
 * Modules are loaded on demand (`import()`): `als lookup`, which the seed runs once per layer,
 * takes a lean path (src/cli/LookupLean.ts) that never loads @effect/cli, the platform layer
 * or the registry code; any other command line, or a lookup spelled in a way only the full
 * parser knows, loads the whole command tree. ALS_FULL_CLI=1 forces the full path (to compare).
 */
import { Cause, Effect, Exit, Option } from "effect"
import { ExitCode, exitCode } from "../src/cli/exit.ts"

const args = process.argv.slice(2).map((a) => (a === "--tls-verify" ? "--tls-verify=true" : a))

const runFull = async (): Promise<Exit.Exit<unknown, unknown>> => {
  const [{ NodeContext }, { runCli }] = await Promise.all([import("@effect/platform-node"), import("../src/cli/Main.ts")])
  return Effect.runPromiseExit(runCli(["als", "als", ...args]).pipe(Effect.provide(NodeContext.layer)))
}

const run = async (): Promise<Exit.Exit<unknown, unknown>> => {
  if (args[0] === "lookup" && !process.env.ALS_FULL_CLI) {
    const lean = await import("../src/cli/LookupLean.ts")
    const parsed = lean.parseLookupArgs(args.slice(1))
    if (parsed) return Effect.runPromiseExit(lean.lookupProgram(parsed))
  }
  return runFull()
}

const finish = async (exit: Exit.Exit<unknown, unknown>): Promise<never> => {
  if (Exit.isSuccess(exit)) return process.exit(exitCode())
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const { describeFailure } = await import("../src/cli/render.ts")
    const { message, code } = describeFailure(failure.value)
    if (message) process.stderr.write(`als: ${message}\n`)
    return process.exit(code)
  }
  if (Cause.isInterruptedOnly(exit.cause)) return process.exit(ExitCode.interrupted)
  process.stderr.write(`als: internal error (please report it):\n${Cause.pretty(exit.cause)}\n`)
  return process.exit(ExitCode.internal)
}

// no top-level await: the compiled binary is built with --bytecode, which needs a plain script
void run().then(finish)
