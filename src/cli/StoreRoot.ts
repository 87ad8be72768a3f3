/**
 * Which store a command works on, decided before it touches anything.
 *
 * `init` and `pull` create a store; every other command needs one that exists: on a directory
 * that is not an als store they stop with a usage error and create nothing (opening the log
 * would otherwise make `<root>/.als`, and a typo'd `--root` would become a new, empty store).
 */
import { Effect, Either, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { defaultRoot } from "../domain/StorePaths.ts"
import { safeText } from "../domain/SafeText.ts"
import { asUsage, type Parsed, parseRootArg } from "./Arguments.ts"
import { UsageError } from "../domain/UsageError.ts"
import { fileKind } from "../sys/RegularFile.ts"

/** The root from `--root`, else $ALS_ROOT, else the default; parsed (see parseRootArg). */
export const parseStoreRoot = (given: string | undefined, env: NodeJS.ProcessEnv = process.env): Parsed<string> => {
  if (given !== undefined) return parseRootArg(given)
  if (env.ALS_ROOT !== undefined && env.ALS_ROOT !== "") return parseRootArg(env.ALS_ROOT, "$ALS_ROOT")
  return Either.right(defaultRoot(env, process.getuid?.() ?? 0, os.homedir()))
}

/**
 * A store is a directory holding `.als/` with a log in it (whatever the log's state: a damaged
 * or refused log is the log reader's to report).
 */
export const isStore = (root: string): boolean => {
  try {
    if (!fs.statSync(path.join(root, ".als")).isDirectory()) return false
    fs.lstatSync(path.join(root, ".als", "log"))
    return true
  } catch {
    return false
  }
}

export const notAStore = (root: string) =>
  new UsageError({ message: `${safeText(root, 400)}: not an als store (als init DIR)` })

/** Why `root` cannot hold a store although it parses (it exists and is no directory), or undefined. */
const notADirectory = (root: string): string | undefined => {
  let st: fs.Stats
  try {
    st = fs.statSync(root)
  } catch {
    return undefined // missing (made later), or a failure the store's own open reports
  }
  return st.isDirectory() ? undefined : `${safeText(root, 400)}: it is ${fileKind(st)}, not a directory: a store is a directory (als init DIR)`
}

/** For `init` and `pull`: the root to create or use (absent, or a directory). */
export const rootToCreate = (given: Option.Option<string> | string | undefined): Effect.Effect<string, UsageError> =>
  Effect.flatMap(asUsage(parseStoreRoot(Option.isOption(given) ? Option.getOrUndefined(given) : given)), (root) => {
    const problem = notADirectory(root)
    return problem === undefined ? Effect.succeed(root) : Effect.fail(new UsageError({ message: problem }))
  })

/** For every other command: the root of an existing store, or exit 2 with nothing created. */
export const existingStore = (given: Option.Option<string> | string | undefined): Effect.Effect<string, UsageError> =>
  Effect.flatMap(rootToCreate(given), (root) => (isStore(root) ? Effect.succeed(root) : Effect.fail(notAStore(root))))
