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

const exit = await Effect.runPromiseExit(program)
if (Exit.isSuccess(exit)) {
  process.exit(exitCode())
}
const failure = Cause.failureOption(exit.cause)
if (Option.isSome(failure)) {
  const { message, code } = describeFailure(failure.value)
  if (message) process.stderr.write(`als: ${message}\n`)
  process.exit(code)
}
if (Cause.isInterruptedOnly(exit.cause)) process.exit(130)
process.stderr.write(`als: internal error (please report it):\n${Cause.pretty(exit.cause)}\n`)
process.exit(70)
void ExitCode
