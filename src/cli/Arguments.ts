/**
 * Values from the command line, parsed before a command does anything: each function turns
 * the text a user typed into a typed value or refuses it with a message saying what is valid.
 * Pure (no IO); `asUsage` lifts a refusal into the command's UsageError (exit 2).
 */
import { Effect, Either } from "effect"
import * as path from "node:path"
import { type Digest, isDigest } from "../domain/Digest.ts"
import { formatReference, parseReference } from "../domain/Reference.ts"
import { isPlainText, safeText } from "../domain/SafeText.ts"
import { EventVersions, type EventType } from "../events/Events.ts"
import { parseSince } from "../events/LogQuery.ts"
import { parseSourceSpec, type SourceSpec } from "../sources/SourceSpec.ts"
import { UsageError } from "../domain/UsageError.ts"

export type Parsed<A> = Either.Either<A, string>

const refuse = (message: string): Parsed<never> => Either.left(message)
const shown = (s: string) => `"${safeText(s, 200)}"`

/** The faults every word shares: empty, blank, padded with blanks, or holding control characters. */
const wordFault = (s: string): string | undefined => {
  if (s === "") return "is empty"
  if (s.trim() === "") return "is only whitespace"
  if (s.trim() !== s) return "has leading or trailing whitespace"
  if (!isPlainText(s)) return "contains control characters"
  return undefined
}

/**
 * A store root (`--root`, `$ALS_ROOT`): an absolute path. Refused: the word faults, and a path
 * that names the filesystem root, the current directory or one of its parents only through
 * dots (`.`, `..`, `./..`): a typo there must not turn a working directory into a store.
 */
export const parseRootArg = (s: string, what = "--root"): Parsed<string> => {
  const fault = wordFault(s)
  if (fault) return refuse(`${what} ${shown(s)} ${fault}: expected a directory path, e.g. /var/lib/als`)
  if (s.split("/").every((p) => p === "" || p === "." || p === "..")) {
    return refuse(
      `${what} ${shown(s)} names ${s.startsWith("/") ? "the filesystem root" : "the current directory or a parent"}: ` +
        "expected a directory of its own, e.g. /var/lib/als",
    )
  }
  return Either.right(path.resolve(s))
}

/** An image reference for the registry, as `als pull` reads it; the normalized form. */
export const parseRefArg = (s: string, what = "REF"): Parsed<string> => {
  const fault = wordFault(s)
  if (fault) return refuse(`${what} ${shown(s)} ${fault}: expected an image reference, e.g. docker.io/library/alpine:3.19`)
  if (s === "." || s === "..") return refuse(`${what} ${shown(s)} is not an image reference`)
  try {
    return Either.right(formatReference(parseReference(s)))
  } catch (e) {
    return refuse(`${what}: ${safeText((e as Error).message, 400)}`)
  }
}

/** What `als pull` takes: a registry image (checked with the reference parser) or a local source. */
export const parseSourceArg = (s: string): Parsed<SourceSpec> => {
  const fault = wordFault(s)
  if (fault) return refuse(`REF ${shown(s)} ${fault}: expected an image reference or oci:DIR, oci-archive:FILE, docker-archive:FILE`)
  let spec: SourceSpec
  try {
    spec = parseSourceSpec(s)
  } catch (e) {
    return refuse(safeText((e as Error).message, 400))
  }
  if (spec.kind === "registry") return Either.map(parseRefArg(s), () => spec)
  if (spec.reference !== undefined && wordFault(spec.reference)) {
    return refuse(`${shown(s)}: the image name after the path ${wordFault(spec.reference)}`)
  }
  return Either.right(spec)
}

/** A layer digest (`als lookup DIGEST`): algorithm and hex of the right length. */
export const parseDigestArg = (s: string, what = "DIGEST"): Parsed<Digest> => {
  const fault = wordFault(s)
  if (fault) return refuse(`${what} ${shown(s)} ${fault}: expected sha256:<64 lowercase hex>`)
  return isDigest(s) ? Either.right(s) : refuse(`${what} ${shown(s)}: expected sha256:<64 lowercase hex>`)
}

/** `als log --layer`: a digest, or a prefix of its hex (at least 4 lowercase hex digits). */
export const parseLayerFilter = (s: string): Parsed<string> => {
  const fault = wordFault(s)
  const hex = s.replace(/^sha(256|512):/, "")
  return !fault && /^[0-9a-f]{4,128}$/.test(hex)
    ? Either.right(s)
    : refuse(`--layer ${shown(s)}: expected a digest (sha256:<hex>) or at least 4 of its hex digits`)
}

/** An integer flag within [min, max]. */
export const parseIntRange = (n: number, what: string, min: number, max: number): Parsed<number> =>
  Number.isInteger(n) && n >= min && n <= max
    ? Either.right(n)
    : refuse(`${what} ${n}: expected a whole number from ${min} to ${max}`)

export const JOBS_MAX = 64
export const TIMEOUT_MAX = 86_400

export const parseJobs = (n: number) => parseIntRange(n, "--jobs", 1, JOBS_MAX)
export const parseTimeout = (n: number) => parseIntRange(n, "--timeout", 1, TIMEOUT_MAX)

const EVENT_TYPES = Object.keys(EventVersions) as ReadonlyArray<EventType>

/** `--type` values (repeatable, comma-separated): each a known event type. */
export const parseEventTypes = (values: ReadonlyArray<string>): Parsed<ReadonlyArray<EventType>> => {
  const types = values.flatMap((t) => t.split(",")).map((t) => t.trim()).filter((t) => t !== "")
  const unknown = types.filter((t) => !(EVENT_TYPES as ReadonlyArray<string>).includes(t))
  if (unknown.length > 0) {
    return refuse(`--type ${unknown.map(shown).join(", ")}: unknown event type; one of ${EVENT_TYPES.join(", ")}`)
  }
  if (values.length > 0 && types.length === 0) return refuse(`--type is empty: one of ${EVENT_TYPES.join(", ")}`)
  return Either.right(types as ReadonlyArray<EventType>)
}

/** `--since`: a duration back from `now` or a date; epoch ms. */
export const parseSinceArg = (s: string, now: number): Parsed<number> => {
  const fault = wordFault(s)
  const t = fault ? undefined : parseSince(s, now)
  return t === undefined
    ? refuse(`--since ${shown(s)}: expected a duration like 90s, 90m, 2h, 3d, 1w or a date like 2026-11-29 or 2026-11-29T10:00:00Z`)
    : Either.right(t)
}

/** A path argument (a pool, a checkpoint file, a recording): the word faults only. */
export const parsePathArg = (s: string, what: string): Parsed<string> => {
  const fault = wordFault(s)
  return fault ? refuse(`${what} ${shown(s)} ${fault}: expected a path`) : Either.right(s)
}

/** A refusal as the command's usage error (exit 2). */
export const asUsage = <A>(p: Parsed<A>): Effect.Effect<A, UsageError> =>
  Either.match(p, { onLeft: (message) => Effect.fail(new UsageError({ message })), onRight: Effect.succeed })

/** Every value of a list, or the first refusal. */
export const all = <A>(ps: ReadonlyArray<Parsed<A>>): Parsed<ReadonlyArray<A>> => Either.all(ps)
