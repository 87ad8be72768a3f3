// Class 1 (issue 11), issue 15 item 4: a command line that does not parse is a usage error
// (exit 2) before any side effect. Read-only commands on a directory that is not an als store
// exit 2 with "not an als store (als init DIR)" and create nothing, for --root and for the
// default root ($ALS_ROOT); unknown flags are never image names; out-of-range values are
// refused with their range. Run with the real binary (test/lib/als.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { als, alsLog, alsOk, describeResult, type AlsResult } from "../../lib/als.ts"

const D = `sha256:${"a".repeat(64)}`
let base: string
let store: string

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "als-cli-args-"))
  store = join(base, "store")
  await alsOk(["init", "--root", store])
}, 300_000)

afterAll(() => {
  rmSync(base, { recursive: true, force: true })
})

const usage = (r: AlsResult, text: string | RegExp) => {
  expect(r.exitCode, describeResult(r)).toBe(2)
  if (typeof text === "string") expect(r.stderr, describeResult(r)).toContain(text)
  else expect(r.stderr, describeResult(r)).toMatch(text)
}

/** Every command that needs a store, spelled to run against `--root` (added by the caller). */
const READ_ONLY: ReadonlyArray<ReadonlyArray<string>> = [
  ["ls"],
  ["log"],
  ["log", "--stats"],
  ["audit"],
  ["rm", "docker.io/library/alpine:3.19"],
  ["gc", "--dry-run"],
  ["lookup", D],
  ["lookup", D, "--ref", "docker.io/library/alpine:3.19"],
]

describe("a directory that is not an als store", () => {
  test("every read-only command exits 2 and creates nothing (absent dir, --root)", async () => {
    const missing = join(base, "typo")
    for (const cmd of READ_ONLY) {
      const r = await als([...cmd, "--root", missing])
      usage(r, "not an als store (als init DIR)")
      expect({ cmd, created: existsSync(missing) }).toEqual({ cmd, created: false })
    }
  }, 300_000)

  test("the lean lookup path and the full one answer the same", async () => {
    const missing = join(base, "typo-lookup")
    const lean = await als(["lookup", D, "--root", missing])
    const full = await als(["lookup", D, "--root", missing], { env: { ALS_FULL_CLI: "1" } })
    usage(lean, "not an als store (als init DIR)")
    usage(full, "not an als store (als init DIR)")
    expect(lean.stderr).toBe(full.stderr)
    expect(existsSync(missing)).toBe(false)
  }, 120_000)

  test("an existing directory that is not a store stays as it was", async () => {
    const dir = join(base, "plain")
    mkdirSync(dir)
    writeFileSync(join(dir, "keep.txt"), "mine\n")
    for (const cmd of READ_ONLY) {
      const r = await als([...cmd, "--root", dir])
      usage(r, "not an als store (als init DIR)")
      expect({ cmd, entries: readdirSync(dir) }).toEqual({ cmd, entries: ["keep.txt"] })
    }
  }, 300_000)

  test("the default root ($ALS_ROOT) is checked the same way", async () => {
    const missing = join(base, "default-root")
    for (const cmd of READ_ONLY) {
      const r = await als(cmd, { env: { ALS_ROOT: missing } })
      usage(r, `${missing}: not an als store (als init DIR)`)
      expect({ cmd, created: existsSync(missing) }).toEqual({ cmd, created: false })
    }
    // and an unknown flag with the default root creates no store either (issue 15)
    const bogus = await als(["pull", "--bogus", "docker.io/library/alpine:3.19"], { env: { ALS_ROOT: missing } })
    usage(bogus, "unknown flag --bogus")
    expect(existsSync(missing)).toBe(false)
  }, 300_000)

  test("replay --root refuses a non-empty directory that is not a store", async () => {
    const dir = join(base, "replay-plain")
    mkdirSync(dir)
    writeFileSync(join(dir, "keep.txt"), "mine\n")
    const r = await als(["replay", "--root", dir, join(base, "no-recording")])
    usage(r, "not an als store (als init DIR)")
    expect(readdirSync(dir)).toEqual(["keep.txt"])
  }, 120_000)
})

describe("the hint is a command that works", () => {
  test("`als init DIR`, as the not-a-store message spells it, makes the store the other commands then use", async () => {
    const dir = join(base, "hinted")
    const refused = await als(["ls", "--root", dir])
    usage(refused, "not an als store (als init DIR)")
    const made = await als(["init", dir])
    expect(made.exitCode, describeResult(made)).toBe(0)
    expect(made.stdout).toContain(`Created ${dir}`)
    const ls = await als(["ls", "--root", dir])
    expect(ls.exitCode, describeResult(ls)).toBe(0)
    expect((await alsLog(dir)).map((e) => e.type)).toEqual(["StoreInitialized"])
    // again: nothing changes; given both ways at once, or as a word that does not parse: exit 2
    expect((await als(["init", dir])).stdout).toContain(`Already a store: ${dir}`)
    usage(await als(["init", "--root", dir, dir]), "the store is given twice")
    const cwd = mkdtempSync(join(base, "cwd-init-"))
    for (const word of ["", " ", ".", "..", "/"]) {
      const r = await als(["init", word], { cwd })
      usage(r, /DIR "[^"]*" (is empty|is only whitespace|names the)/)
    }
    expect(readdirSync(cwd)).toEqual([])
  }, 120_000)
})

describe("roots that do not parse", () => {
  test('--root "", blanks and dot-only forms are refused on every command, nothing created', async () => {
    const cwd = mkdtempSync(join(base, "cwd-"))
    for (const root of ["", " ", "  /x", ".", "..", "./..", "/"]) {
      for (const cmd of [["init"], ["pull", "docker.io/library/alpine:3.19"], ["ls"], ["log"], ["gc"], ["doctor"]]) {
        const r = await als([...cmd, "--root", root], { cwd })
        expect({ root, cmd, exit: r.exitCode }).toEqual({ root, cmd, exit: 2 })
        expect(r.stderr).toMatch(/--root "[^"]*" (is empty|is only whitespace|has leading or trailing whitespace|names the)/)
      }
    }
    expect(readdirSync(cwd)).toEqual([])
    const env = await als(["ls"], { cwd, env: { ALS_ROOT: " " } })
    usage(env, '$ALS_ROOT " " is only whitespace')
  }, 300_000)
})

describe("a root that is not a directory", () => {
  test("init, pull and serve on a --root that is a regular file: exit 2 before anything, the file unchanged", async () => {
    const file = join(base, "a-file")
    writeFileSync(file, "mine\n")
    for (const cmd of [["init"], ["pull", "--tls-verify=false", "127.0.0.1:1/never/contacted:1"], ["serve", join(base, "no-mount")]]) {
      const r = await als([...cmd, "--root", file])
      usage(r, `${file}: it is a regular file, not a directory`)
    }
    expect(readFileSync(file, "utf8")).toBe("mine\n")
  }, 120_000)
})

describe("KEY=VALUE flags", () => {
  test("lookup --annotation without a key or without = says what it expects", async () => {
    for (const v of ["noeq", "=v"]) {
      usage(await als(["lookup", "--root", store, "--annotation", v, D]), `--annotation ${v}: expected KEY=VALUE with a non-empty key`)
    }
  }, 120_000)
})

describe("unknown flags and bad values", () => {
  test("an unknown flag is a usage error, never an image name: rm removes nothing", async () => {
    const r = await als(["rm", "--root", store, "--bogus", "docker.io/library/alpine:3.19"])
    usage(r, "unknown flag --bogus for `als rm`")
    const after = await als(["rm", "--root", store, "docker.io/library/alpine:3.19", "--bogus"])
    usage(after, "unknown flag --bogus")
    expect((await alsLog(store)).filter((e) => e.type !== "StoreInitialized")).toEqual([])
  }, 120_000)

  test("pull refuses out-of-range and malformed values before creating the store", async () => {
    const fresh = join(base, "pull-fresh")
    const ref = "127.0.0.1:1/never/contacted:1"
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--jobs", "0"], "--jobs 0: expected a whole number from 1 to 64"],
      [["--jobs", "-1"], "--jobs -1: expected a whole number from 1 to 64"],
      [["--jobs", "1000"], "from 1 to 64"],
      [["--timeout", "0"], "--timeout 0: expected a whole number from 1 to 86400"],
      [["--platform", "a/b/c/d"], "--platform"],
      [["--name", "Bad Name"], "--name"],
      [["--pool", ""], "--pool"],
    ]
    for (const [flags, text] of cases) {
      const r = await als(["pull", "--root", fresh, "--tls-verify=false", ...flags, ref])
      usage(r, text)
      expect({ flags, created: existsSync(fresh) }).toEqual({ flags, created: false })
    }
    for (const bad of ["", " ", ".", "..", "UPPER/case:1", "a b"]) {
      const r = await als(["pull", "--root", fresh, bad])
      expect({ bad, exit: r.exitCode }).toEqual({ bad, exit: 2 })
      expect(existsSync(fresh)).toBe(false)
    }
    // one bad ref among good ones: nothing is tried
    const mixed = await als(["pull", "--root", fresh, "--tls-verify=false", ref, "..", ref])
    usage(mixed, 'REF ".." is not an image reference')
    expect(existsSync(fresh)).toBe(false)
  }, 300_000)

  test("log refuses an unknown --type, a bad --since and a bad --layer with what is valid", async () => {
    usage(await als(["log", "--root", store, "--type", "PullFailed,Nope"]), /--type "Nope": unknown event type; one of .*PullCompleted/)
    usage(await als(["log", "--root", store, "--since", "soon"]), "expected a duration like 90s, 90m, 2h, 3d, 1w or a date")
    usage(await als(["log", "--root", store, "--layer", "zz"]), "--layer")
    usage(await als(["log", "--root", store, "--ref", "Not A Ref"]), "--ref")
    // the good spellings still work
    expect((await als(["log", "--root", store, "--type", "StoreInitialized", "--since", "1h"])).exitCode).toBe(0)
  }, 120_000)

  test("lookup refuses a bad digest or ref on both paths, before anything is written", async () => {
    const before = (await alsLog(store)).length
    for (const env of [{}, { ALS_FULL_CLI: "1" }]) {
      usage(await als(["lookup", "--root", store, "sha256:abc"], { env }), "expected sha256:<64 lowercase hex>")
      usage(await als(["lookup", "--root", store, D, "--ref", "Bad Ref"], { env }), "--ref")
      usage(await als(["lookup", "--root", store, D, "--ref", ".."], { env }), "--ref")
    }
    expect((await alsLog(store)).length).toBe(before)
  }, 120_000)

  test("rm refuses a ref that does not parse instead of using it as given", async () => {
    usage(await als(["rm", "--root", store, ".."]), 'REF ".." is not an image reference')
    usage(await als(["rm", "--root", store, ""]), 'REF "" is empty')
  }, 60_000)

  test("arguments with control characters are refused, shown escaped", async () => {
    const r = await als(["ls", "--root", store, "\x1b[2J\x1b]0;pwned\x07"])
    usage(r, "contains control characters")
    expect(r.stderr).not.toContain("\x1b")
    expect(r.stderr).toContain("\\x1b[2J")
  }, 60_000)
})
