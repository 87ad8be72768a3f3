/** Options every command shares, spelled as podman and skopeo users expect. */
import { Options } from "@effect/cli"
import { Either, Option } from "effect"
import * as os from "node:os"
import { defaultRoot } from "../domain/StorePaths.ts"
import { parseStoreRoot } from "./StoreRoot.ts"

export const root = Options.text("root").pipe(
  Options.withDescription("store root (default: $ALS_ROOT, else /var/lib/als as root, $XDG_DATA_HOME/als otherwise)"),
  Options.optional,
)

/**
 * The root a command works on. Main.ts has refused a root that does not parse before any
 * handler runs (StorePolicy.ts); the fallback only keeps this total.
 */
export const resolveRoot = (o: Option.Option<string>): string =>
  Either.getOrElse(
    parseStoreRoot(Option.getOrUndefined(o)),
    () => Option.getOrElse(o, () => defaultRoot(process.env, process.getuid?.() ?? 0, os.homedir())),
  )

export const json = Options.boolean("json").pipe(Options.withDescription("machine-readable output (JSON / NDJSON)"))
