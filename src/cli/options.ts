/** Options every command shares, spelled as podman and skopeo users expect. */
import { Options } from "@effect/cli"
import { Option } from "effect"
import * as os from "node:os"
import { defaultRoot } from "../domain/StorePaths.ts"

export const root = Options.text("root").pipe(
  Options.withDescription("store root (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise)"),
  Options.optional,
)

export const resolveRoot = (o: Option.Option<string>): string =>
  Option.getOrElse(o, () => defaultRoot(process.env, process.getuid?.() ?? 0, os.homedir()))

export const json = Options.boolean("json").pipe(Options.withDescription("machine-readable output (JSON / NDJSON)"))
