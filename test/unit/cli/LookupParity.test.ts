// Issue 12 item 7 / issue 11 class 1: `als lookup`'s lean start-up parser (LookupLean.ts) must
// agree with the full command's one option definition (LookupCommand.ts lookupOptions). The
// same argument vectors go to both: where the lean parser answers, @effect/cli must parse the
// same values; where @effect/cli refuses, the lean parser must not answer (it hands the command
// line to the full CLI, whose errors stay the only ones). The checks after parsing are one
// function (checkLookup) on both paths.
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { describe, expect, test } from "bun:test"
import { Console, Effect, Exit, HashMap } from "effect"
import { lookupInput, lookupOptions } from "../../../src/cli/LookupCommand.ts"
import { checkLookup, parseLookupArgs } from "../../../src/cli/LookupLean.ts"

const D = `sha256:${"a".repeat(64)}`
const E = `sha256:${"b".repeat(64)}`

type Full = { readonly ok: true; readonly input: ReturnType<typeof lookupInput>; readonly root: string | undefined } | { readonly ok: false }

const silent = new Proxy({} as Console.Console, {
  get: (_, k) => (k === "unsafe" ? console : k === Console.TypeId ? Console.TypeId : () => Effect.void),
})

/** What @effect/cli makes of `als lookup ARGS…` with the command's own options. */
const fullParse = async (args: ReadonlyArray<string>): Promise<Full> => {
  let got: Full = { ok: false }
  const lookup = Command.make("lookup", lookupOptions, (a) =>
    Effect.sync(() => {
      got = { ok: true, input: lookupInput(a), root: a.root._tag === "Some" ? a.root.value : undefined }
    }))
  const run = Command.run(Command.make("als").pipe(Command.withSubcommands([lookup])), { name: "als", version: "0" })
  const exit = await Effect.runPromiseExit(
    run(["als", "als", "lookup", ...args]).pipe(Effect.provide(NodeContext.layer), Effect.withConsole(silent)),
  )
  return Exit.isSuccess(exit) ? got : { ok: false }
}

const vectors: ReadonlyArray<ReadonlyArray<string>> = [
  [D],
  [D, "--json"],
  ["--json", D],
  [D, "--ref", "docker.io/library/alpine:3.19"],
  ["--ref", "docker.io/library/alpine:3.19", D, "--root", "/var/lib/als"],
  [D, "--pool", "/mnt/a", "--pool", "/mnt/b"],
  [D, "--annotation", "k=v"],
  [D, "--annotation", "k=v", "--annotation", "k2=v2", "--annotation", "k=w"],
  [D, "--annotation", "k=v=w"],
  [D, "--annotation", "=v"],
  [D, "--annotation", "k="],
  [D, "--ref"],
  [D, "--ref", "a", "--ref", "b"],
  [D, "--root", "/a", "--root", "/b"],
  [D, E],
  [],
  ["--json"],
  [D, "--json", "true"],
  [D, "--json", "--json"],
  [D, "--bogus"],
  [D, "--ref=docker.io/library/alpine:3.19"],
  [D, "--root", "-x"],
  [D, "--pool", ""],
  [D, "--root", " /a"],
  ["", "--json"],
  [D, "--help"],
  ["k=v"],
]

describe("als lookup: the lean parser and the full command agree", () => {
  test("every vector the lean parser answers, @effect/cli parses to the same values; none it refuses", async () => {
    let answered = 0
    for (const v of vectors) {
      const lean = parseLookupArgs(v)
      const full = await fullParse(v)
      if (lean === undefined) continue
      answered++
      expect({ v, fullParsed: full.ok }).toEqual({ v, fullParsed: true })
      if (!full.ok) continue
      const leanAnnotations = Object.fromEntries(HashMap.toEntries(HashMap.fromIterable(lean.annotations)))
      expect({ v, lean: { digest: lean.digest, ref: lean.ref, annotations: leanAnnotations, pools: lean.pools, json: lean.json, root: lean.root } })
        .toEqual({ v, lean: { ...full.input, root: full.root } })
    }
    // the plain spellings are the lean path's to answer: the comparison covered them
    expect(answered).toBeGreaterThanOrEqual(8)
  }, 60_000)

  test("both paths refuse the same bad values with the same check", async () => {
    const bad = [
      { digest: "sha256:abc", ref: undefined },
      { digest: D, ref: "Not/A/Ref" },
      { digest: D, ref: ".." },
    ]
    for (const b of bad) {
      const r = await Effect.runPromiseExit(checkLookup({ ...b, annotations: {}, pools: [], json: false }))
      expect({ b, refused: Exit.isFailure(r) }).toEqual({ b, refused: true })
    }
    const ok = await Effect.runPromise(checkLookup({ digest: D, ref: "alpine:3.19", annotations: {}, pools: [], json: false }))
    expect(ok.ref).toBe("docker.io/library/alpine:3.19")
  })
})
