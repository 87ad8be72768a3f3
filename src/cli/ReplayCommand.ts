import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { renderReport, replayRecording } from "../replay/Replay.ts"
import { safeLines } from "../domain/SafeText.ts"
import { asUsage, parsePathArg } from "./Arguments.ts"
import { ExitCode, setExitCode } from "./exit.ts"
import * as opt from "./options.ts"

const dir = Args.text({ name: "DIR" }).pipe(Args.withDescription("a recording made with `als pull --record DIR`"))
const root = Options.text("root").pipe(
  Options.withDescription("replay into this store and keep it (default: a scratch store, removed afterwards)"),
  Options.optional,
)

export const replayCommand = Command.make("replay", { dir, root, json: opt.json }, (a) =>
  Effect.gen(function*() {
    const dir = yield* asUsage(parsePathArg(a.dir, "DIR"))
    const report = yield* replayRecording(dir, { root: Option.getOrUndefined(a.root) })
    // a recording is outside data: what it holds reaches the terminal safe (SafeText.ts)
    yield* Console.log(a.json ? JSON.stringify(report, null, 2) : safeLines(renderReport(report), undefined, Infinity))
    if (!report.ok) setExitCode(ExitCode.notFound)
  })).pipe(Command.withDescription(
    "Run a recorded pull again with no network and compare: the same events (ids, times, durations aside),\n" +
      "layer digests, DiffIDs and extracted trees. Exit 1 on any difference.\n" +
      "Example: als replay events/feature-gzip",
  ))
