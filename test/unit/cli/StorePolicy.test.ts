// Which roots a command accepts (src/cli/StorePolicy.ts, StoreRoot.ts) and when colour codes
// are dropped (src/cli/Colour.ts): the checks, on real directories, without the binary.
import { afterAll, describe, expect, test } from "bun:test"
import { Effect, Exit, Option } from "effect"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { stripStyles, wantsPlain } from "../../../src/cli/Colour.ts"
import { checkRoot } from "../../../src/cli/StorePolicy.ts"
import { isStore } from "../../../src/cli/StoreRoot.ts"

const base = mkdtempSync(join(tmpdir(), "als-policy-"))
afterAll(() => rmSync(base, { recursive: true, force: true }))

const store = join(base, "store")
mkdirSync(join(store, ".als"), { recursive: true })
writeFileSync(join(store, ".als", "log"), "")
const plain = join(base, "plain")
mkdirSync(plain)
writeFileSync(join(plain, "file"), "x")
const empty = join(base, "empty")
mkdirSync(empty)
const halfway = join(base, "halfway") // .als without a log
mkdirSync(join(halfway, ".als"), { recursive: true })

const outcome = async (policy: Parameters<typeof checkRoot>[0], root: string | undefined) => {
  const exit = await Effect.runPromiseExit(checkRoot(policy, Option.fromNullable(root)))
  return Exit.isSuccess(exit) ? "ok" : JSON.stringify(exit.cause).includes("not an als store") ? "not a store" : "refused"
}

describe("store policy", () => {
  test("a store is a directory with .als/log", () => {
    expect([store, plain, empty, halfway, join(base, "absent")].map(isStore)).toEqual([true, false, false, false, false])
  })

  test("existing: only a store; create: any parsable root; replay: a store, an empty or a new directory", async () => {
    const absent = join(base, "absent")
    expect(await Promise.all([store, plain, empty, halfway, absent].map((r) => outcome("existing", r))))
      .toEqual(["ok", "not a store", "not a store", "not a store", "not a store"])
    expect(await Promise.all([store, plain, empty, absent].map((r) => outcome("create", r)))).toEqual(["ok", "ok", "ok", "ok"])
    expect(await Promise.all([store, plain, empty, absent].map((r) => outcome("replay", r))))
      .toEqual(["ok", "not a store", "ok", "ok"])
    expect(await outcome("replay", undefined)).toBe("ok")
    for (const p of ["existing", "create", "replay"] as const) expect(await outcome(p, "")).toBe("refused")
    // checking creates nothing
    expect(existsSync(absent)).toBe(false)
    expect(readdirSync(empty)).toEqual([])
  })
})

describe("colour codes", () => {
  test("dropped when the stream is not a terminal, with NO_COLOR, or TERM=dumb", () => {
    expect(wantsPlain({ isTTY: false }, {})).toBe(true)
    expect(wantsPlain({}, {})).toBe(true)
    expect(wantsPlain({ isTTY: true }, {})).toBe(false)
    expect(wantsPlain({ isTTY: true }, { NO_COLOR: "1" })).toBe(true)
    expect(wantsPlain({ isTTY: true }, { NO_COLOR: "" })).toBe(false)
    expect(wantsPlain({ isTTY: true }, { TERM: "dumb" })).toBe(true)
  })

  test("only the styles go: the text stays", () => {
    expect(stripStyles("\x1b[0;1m\x1b[0;37;1mals\x1b[0;1m\x1b[0m usage")).toBe("als usage")
  })
})
