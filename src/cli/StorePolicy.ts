/**
 * Which commands need an existing store, checked before a command's handler runs (and so
 * before it opens the log, which would create `<root>/.als`).
 *
 * `init` and `pull` create a store; `doctor` examines whatever is there; `replay --root`
 * replays into a new or existing store (never into some other non-empty directory); every
 * other command with `--root` needs a store and exits 2 otherwise, creating nothing.
 */
import { Command } from "@effect/cli"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import { safeText } from "../domain/SafeText.ts"
import { isStore, notAStore, rootToCreate, existingStore } from "./StoreRoot.ts"
import { UsageError } from "../domain/UsageError.ts"
import { asUsage, parseRootArg } from "./Arguments.ts"

type Policy = "create" | "existing" | "replay"

const POLICY: Readonly<Record<string, Policy>> = {
  init: "create",
  pull: "create",
  serve: "create",
  doctor: "create",
  replay: "replay",
  ls: "existing",
  log: "existing",
  audit: "existing",
  rm: "existing",
  gc: "existing",
  lookup: "existing",
}

const emptyOrAbsent = (dir: string): boolean => {
  try {
    return fs.readdirSync(dir).length === 0
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT"
  }
}

/** The check `policy` asks for on the command's `--root` value. */
export const checkRoot = (policy: Policy, given: Option.Option<string>): Effect.Effect<void, UsageError> => {
  switch (policy) {
    case "create":
      return Effect.asVoid(rootToCreate(given))
    case "existing":
      return Effect.asVoid(existingStore(given))
    case "replay":
      // without --root the replay uses a scratch store of its own
      if (Option.isNone(given)) return Effect.void
      return Effect.flatMap(rootToCreate(given), (root) =>
        isStore(root) || emptyOrAbsent(root)
          ? Effect.void
          : Effect.fail(new UsageError({ message: `${notAStore(root).message}; or give an empty directory (${safeText(root, 400)} has files)` })))
  }
}

/** `command` with its root checked first, per the table; a command not in it is unchanged. */
export const withStorePolicy = <C>(command: C): C => {
  const c = command as unknown as Command.Command<string, never, never, { readonly root?: Option.Option<string>; readonly dir?: Option.Option<string> }>
  const policy = POLICY[[...Command.getNames(c)][0] ?? ""]
  if (policy === undefined) return command
  return Command.transformHandler(c, (handler, config) =>
    Effect.zipRight(Effect.flatMap(givenRoot(config.root, config.dir), (root) => checkRoot(policy, root)), handler)) as unknown as C
}

/** `--root DIR`, or the store as a word (`als init DIR`); both at once is a usage error. */
export const givenRoot = (
  flag: Option.Option<string> = Option.none(),
  word: Option.Option<string> = Option.none(),
): Effect.Effect<Option.Option<string>, UsageError> =>
  Option.isSome(flag) && Option.isSome(word)
    ? Effect.fail(new UsageError({ message: `the store is given twice (--root ${safeText(flag.value, 200)} and ${safeText(word.value, 200)}): give one` }))
    : Option.isSome(word)
    ? Effect.as(asUsage(parseRootArg(word.value, "DIR")), word)
    : Effect.succeed(flag)
