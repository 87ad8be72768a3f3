/**
 * `als pull`'s command line checked before the store is created or anything is fetched, and
 * several refs pulled as podman users expect: every one tried, each failure said, a summary
 * at the end, and the first failure's exit status.
 */
import { Effect, Option } from "effect"
import { detectHostPlatform, type Platform } from "../domain/Platform.ts"
import { safeText } from "../domain/SafeText.ts"
import { all, asUsage, parseJobs, parsePathArg, parseRefArg, parseSourceArg, parseTimeout } from "./Arguments.ts"
import { errLine } from "./errLine.ts"
import { setExitCode } from "./exit.ts"
import { platformFromFlags } from "./PlatformFlags.ts"
import { describeFailure } from "./render.ts"
import { UsageError } from "../domain/UsageError.ts"

export interface PullArgsInput {
  readonly refs: ReadonlyArray<string>
  readonly name: Option.Option<string>
  readonly pool: ReadonlyArray<string>
  readonly platform: Option.Option<string>
  readonly os: Option.Option<string>
  readonly arch: Option.Option<string>
  readonly variant: Option.Option<string>
  readonly jobs: number
  readonly timeout: Option.Option<number>
  readonly record: Option.Option<string>
}

/**
 * Every argument of a pull parsed, or the usage error (exit 2) before any side effect; the
 * platform to pick, from --platform/--os/--arch/--variant (PlatformFlags.ts).
 */
export const checkPullArgs = (a: PullArgsInput, host: Platform = detectHostPlatform()): Effect.Effect<Platform, UsageError> =>
  Effect.gen(function*() {
    yield* asUsage(all(a.refs.map(parseSourceArg)))
    if (Option.isSome(a.name)) {
      yield* asUsage(parseRefArg(a.name.value, "--name"))
      if (a.refs.length > 1) return yield* new UsageError({ message: "--name names one image: pull the local images one at a time" })
    }
    yield* asUsage(parseJobs(a.jobs))
    if (Option.isSome(a.timeout)) yield* asUsage(parseTimeout(a.timeout.value))
    for (const p of a.pool) yield* asUsage(parsePathArg(p, "--pool"))
    if (Option.isSome(a.record)) yield* asUsage(parsePathArg(a.record.value, "--record"))
    return yield* asUsage(platformFromFlags({
      platform: Option.getOrUndefined(a.platform),
      os: Option.getOrUndefined(a.os),
      arch: Option.getOrUndefined(a.arch),
      variant: Option.getOrUndefined(a.variant),
    }, host))
  })

/**
 * Runs `one` for each ref. One ref: its failure is the command's. Several: each is tried,
 * each failure printed when it happens, then one summary line; the command succeeds and
 * exits with the first failure's status. An interruption (a signal) stops them all.
 * Returns whether any ref was pulled. `quiet`: no summary when every ref was pulled.
 */
export const pullEach = <E, R>(
  refs: ReadonlyArray<string>,
  one: (ref: string) => Effect.Effect<void, E, R>,
  opts: { readonly quiet?: boolean } = {},
): Effect.Effect<boolean, E, R> =>
  refs.length === 1
    ? Effect.as(one(refs[0]!), true)
    : Effect.gen(function*() {
      const failed: Array<{ readonly ref: string; readonly code: number }> = []
      for (const ref of refs) {
        const result = yield* Effect.either(one(ref))
        if (result._tag === "Left") {
          const { message, code } = describeFailure(result.left)
          yield* errLine(`als: ${message || `${safeText(ref)}: failed`}`)
          failed.push({ ref, code })
        }
      }
      const ok = refs.length - failed.length
      // quiet (-q, --json): the summary only when something failed
      if (opts.quiet && failed.length === 0) return true
      yield* errLine(
        failed.length === 0
          ? `pulled all ${refs.length} images`
          : `pulled ${ok} of ${refs.length} images; failed: ${failed.map((f) => `${safeText(f.ref, 400)} (exit ${f.code})`).join(", ")}`,
      )
      if (failed.length > 0) setExitCode(failed[0]!.code)
      return ok > 0
    })
