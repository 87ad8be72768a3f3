#!/usr/bin/env bun
/**
 * Runtime entry only: provides the platform (Node APIs, which both Bun and Deno implement),
 * runs the CLI, and turns failures into one readable line and an exit status.
 */
import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Exit, Option } from "effect"
import { ExitCode, exitCode } from "../src/cli/exit.ts"
import { runCli } from "../src/cli/Main.ts"
import { describeFailure } from "../src/cli/render.ts"

const args = process.argv.slice(2).map((a) => (a === "--tls-verify" ? "--tls-verify=true" : a))
const argv = ["als", "als", ...args]

const program = runCli(argv).pipe(Effect.provide(NodeContext.layer))

const finish = (exit: Exit.Exit<unknown, unknown>): never => {
  if (Exit.isSuccess(exit)) return process.exit(exitCode())
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const { message, code } = describeFailure(failure.value)
    if (message) process.stderr.write(`als: ${message}\n`)
    return process.exit(code)
  }
  if (Cause.isInterruptedOnly(exit.cause)) return process.exit(ExitCode.interrupted)
  process.stderr.write(`als: internal error (please report it):\n${Cause.pretty(exit.cause)}\n`)
  return process.exit(ExitCode.internal)
}

// no top-level await: the compiled binary is built with --bytecode, which needs a plain script
void Effect.runPromiseExit(program).then(finish)
