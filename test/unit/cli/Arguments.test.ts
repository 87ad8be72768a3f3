// Class 1 (issue 11): every value from the command line is parsed before a command acts;
// what does not parse is refused with what is valid (src/cli/Arguments.ts, ArgvGuard.ts).
import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import {
  parseDigestArg,
  parseEventTypes,
  parseJobs,
  parseLayerFilter,
  parseRefArg,
  parseRootArg,
  parseSinceArg,
  parseSourceArg,
  parseTimeout,
} from "../../../src/cli/Arguments.ts"
import { checkArgv, flagTable } from "../../../src/cli/ArgvGuard.ts"
import { als } from "../../../src/cli/Main.ts"
import { parseStoreRoot } from "../../../src/cli/StoreRoot.ts"

const refused = <A>(p: Either.Either<A, string>): string => {
  if (Either.isRight(p)) throw new Error(`expected a refusal, got ${JSON.stringify(p.right)}`)
  return p.left
}
const value = <A>(p: Either.Either<A, string>): A => {
  if (Either.isLeft(p)) throw new Error(`expected a value, got: ${p.left}`)
  return p.right
}
const D = `sha256:${"a".repeat(64)}`

describe("store roots", () => {
  test("empty, blank, padded, control characters and dot-only paths are refused", () => {
    for (const bad of ["", " ", "\t", " /var/lib/als", "/var/lib/als ", ".", "..", "./", "../..", "./..", "/", "//", "/.", "/x\x1b[2J"]) {
      expect({ bad, msg: refused(parseRootArg(bad)).length > 0 }).toEqual({ bad, msg: true })
    }
    expect(refused(parseRootArg(".."))).toContain("current directory or a parent")
    expect(refused(parseRootArg("/"))).toContain("filesystem root")
  })

  test("a path is made absolute; $ALS_ROOT is parsed like --root", () => {
    expect(value(parseRootArg("/var/lib/als"))).toBe("/var/lib/als")
    expect(value(parseRootArg("store"))).toBe(`${process.cwd()}/store`)
    expect(value(parseRootArg("../x/store"))).toMatch(/\/x\/store$/)
    expect(refused(parseStoreRoot(undefined, { ALS_ROOT: "  " }))).toContain("$ALS_ROOT")
    expect(value(parseStoreRoot(undefined, { ALS_ROOT: "/srv/als" }))).toBe("/srv/als")
    expect(value(parseStoreRoot("/a", { ALS_ROOT: "/srv/als" }))).toBe("/a")
  })
})

describe("refs, sources and digests", () => {
  test("refs go through the reference parser and come out normalized", () => {
    expect(value(parseRefArg("alpine:3.19"))).toBe("docker.io/library/alpine:3.19")
    for (const bad of ["", " ", ".", "..", "--bogus", "Alpine", "a b", "x\u202e", "alpine:"]) {
      expect({ bad, refused: Either.isLeft(parseRefArg(bad)) }).toEqual({ bad, refused: true })
    }
  })

  test("pull sources: registry refs parsed, local transports need a path", () => {
    expect(value(parseSourceArg("quay.io/x/y:1"))).toEqual({ kind: "registry", ref: "quay.io/x/y:1" })
    expect(value(parseSourceArg("oci:./layout:1.0"))).toMatchObject({ kind: "oci", path: "./layout" })
    for (const bad of ["", "  ", "..", "oci:", "dir:/x", "-x", "UPPER/case"]) {
      expect({ bad, refused: Either.isLeft(parseSourceArg(bad)) }).toEqual({ bad, refused: true })
    }
  })

  test("digests: algorithm and hex of the right length", () => {
    expect(value(parseDigestArg(D)) as string).toBe(D)
    for (const bad of ["", "sha256:abc", `sha256:${"A".repeat(64)}`, ` ${D}`, `${D}\n`, "..", `md5:${"a".repeat(32)}`]) {
      expect({ bad, refused: Either.isLeft(parseDigestArg(bad)) }).toEqual({ bad, refused: true })
    }
  })
})

describe("ranges and filters", () => {
  test("--jobs and --timeout are refused outside their range, which the message names", () => {
    expect(refused(parseJobs(0))).toBe("--jobs 0: expected a whole number from 1 to 64")
    expect(refused(parseJobs(-1))).toContain("from 1 to 64")
    expect(refused(parseJobs(65))).toContain("from 1 to 64")
    expect(value(parseJobs(4))).toBe(4)
    expect(refused(parseTimeout(0))).toContain("from 1 to 86400")
    expect(value(parseTimeout(30))).toBe(30)
  })

  test("--type names known event types only and lists them", () => {
    expect(value(parseEventTypes(["PullFailed,LayerLinked", "RefIndexed"]))).toEqual(["PullFailed", "LayerLinked", "RefIndexed"])
    const msg = refused(parseEventTypes(["PullFailed,Nope"]))
    expect(msg).toContain('"Nope"')
    expect(msg).toContain("PullCompleted")
    expect(Either.isLeft(parseEventTypes([","]))).toBe(true)
  })

  test("--since: durations and dates only", () => {
    expect(value(parseSinceArg("2h", 10_000_000))).toBe(10_000_000 - 7_200_000)
    expect(refused(parseSinceArg("yesterday-ish", 0))).toContain("90m")
    expect(Either.isLeft(parseSinceArg("", 0))).toBe(true)
  })

  test("--layer: a digest or at least 4 hex digits", () => {
    expect(value(parseLayerFilter("abcd"))).toBe("abcd")
    expect(value(parseLayerFilter(D))).toBe(D)
    for (const bad of ["", "ab", "xyz1", "sha256:", " abcd"]) expect(Either.isLeft(parseLayerFilter(bad))).toBe(true)
  })
})

describe("the command line before @effect/cli", () => {
  const table = flagTable(als)

  test("the flag table is read from the command tree", () => {
    expect(table.get("pull")?.get("--jobs")).toBe(true)
    expect(table.get("pull")?.get("--json")).toBe(false)
    expect(table.get("log")?.get("-f")).toBe(false)
    expect(table.get("rm")?.get("--root")).toBe(true)
    expect(table.get("rm")?.has("--jobs")).toBe(false)
  })

  test("an unknown flag is a usage error, never an image name", () => {
    expect(checkArgv(table, ["rm", "--bogus", "x"])).toBe("unknown flag --bogus for `als rm` (see als rm --help)")
    expect(checkArgv(table, ["pull", "alpine", "--bogus=1"])).toContain("unknown flag --bogus")
    expect(checkArgv(table, ["ls", "-x"])).toContain("unknown flag -x")
    // a flag's value is not a flag, even when it starts with '-'
    expect(checkArgv(table, ["pull", "--jobs", "-1", "alpine"])).toBeUndefined()
    expect(checkArgv(table, ["pull", "--root=/x", "--tls-verify=false", "alpine"])).toBeUndefined()
    expect(checkArgv(table, ["log", "-f", "--type", "PullFailed"])).toBeUndefined()
    // after "--" every word is an argument
    expect(checkArgv(table, ["rm", "--", "--x"])).toBeUndefined()
    // help and unknown commands are @effect/cli's to answer
    expect(checkArgv(table, ["rm", "--bogus", "--help"])).toBeUndefined()
    expect(checkArgv(table, ["nosuch", "--bogus"])).toBeUndefined()
  })

  test("a flag that needs a value and has none, or an empty one, is refused", () => {
    expect(checkArgv(table, ["ls", "--root"])).toContain("--root needs a value")
    expect(checkArgv(table, ["pull", "--pool", "", "alpine"])).toContain('--pool "" is empty')
    expect(checkArgv(table, ["pull", "--pool=", "alpine"])).toContain('--pool "" is empty')
    expect(checkArgv(table, ["ls", "--root", "  "])).toContain('--root "  " is only whitespace')
  })

  test("control characters in any word are refused, shown escaped", () => {
    const msg = checkArgv(table, ["ls", "\x1b[2Jx"])!
    expect(msg).toContain("\\x1b[2Jx")
    expect(msg).not.toContain("\x1b")
    expect(checkArgv(table, ["pull", "a\u202eb"])).toContain("\\u202e")
  })
})
