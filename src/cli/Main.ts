/** The command tree. Each command lives in its own thin file. */
import { Command } from "@effect/cli"
import { ALS_VERSION } from "../version.ts"
import { initCommand } from "./InitCommand.ts"
import { logCommand } from "./LogCommand.ts"
import { lookupCommand } from "./LookupCommand.ts"
import { lsCommand } from "./LsCommand.ts"
import { pullCommand } from "./PullCommand.ts"

export const als = Command.make("als").pipe(
  Command.withDescription(
    "An Additional Layer Store for podman, buildah and CRI-O: fills a store directory with image layers\n" +
      "that containers/storage uses without pulling them.\n\n" +
      "Exit status: 0 ok; 1 not found / problems found; 2 usage; 3 registry; 4 layer rejected; 5 store I/O; 6 log damaged.",
  ),
  Command.withSubcommands([initCommand, pullCommand, lookupCommand, lsCommand, logCommand]),
)

export const runCli = Command.run(als, { name: "als", version: ALS_VERSION })
