// Class 8 (issue 11) and issue 15 items 4-5: what reaches a terminal.
// - A registry whose error message carries ESC sequences, a bidi override and a 60 KB string:
//   stderr gets them escaped and cut, never raw; `--json` keeps the value exact.
// - Help has no colour codes in a pipe, or on a terminal with NO_COLOR; it lists exit
//   statuses 130 and 143.
// - `als pull A B C` tries every ref, says each failure, ends with a summary, and exits with
//   the first failure's status.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { als, alsLog, describeResult, DIST_ALS, alsCommand } from "../../lib/als.ts"
import { run } from "../../lib/sh.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { gzipLayer, MIN, pushTestImage, refOf, type TestImage } from "../crash/support.ts"

const HOSTILE = "\x1b[2J\x1b]0;pwned\x07\x1b[31mred\u202eevil\x9b1m"
// the registry client reads at most 64 KiB of an error body (src/registry/Http.ts): a 60 KB message
// gets through whole, and must be cut before a terminal sees it
const HUGE = "A".repeat(60_000)

let base: string
let hostile: ReturnType<typeof Bun.serve>
let registry: RegistryHandle
let one: TestImage
let two: TestImage

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "als-cli-out-"))
  // a registry that answers /v2/ and then refuses every manifest with a hostile message
  hostile = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      const url = new URL(req.url)
      if (url.pathname === "/v2/" || url.pathname === "/v2") {
        return new Response("{}", { headers: { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" } })
      }
      return new Response(
        JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: `${HOSTILE} ${HUGE}`, detail: HOSTILE }] }),
        { status: 404, headers: { "content-type": "application/json" } },
      )
    },
  })
  registry = await startRegistry()
  one = await pushTestImage(registry.url, "out/one", "1", [gzipLayer([{ name: "etc/one", content: "one\n" }])])
  two = await pushTestImage(registry.url, "out/two", "1", [gzipLayer([{ name: "etc/two", content: "two\n" }])])
}, 2 * MIN)

afterAll(async () => {
  hostile?.stop(true)
  await registry?.stop()
  rmSync(base, { recursive: true, force: true })
}, MIN)

const hostileRef = () => `127.0.0.1:${hostile.port}/evil/app:1`
/** No raw control character of any kind (newline and tab aside), no bidi override. */
const RAW = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/

describe("a registry's hostile error message", () => {
  test("reaches stderr escaped and cut, never raw", async () => {
    const root = join(base, "hostile")
    const r = await als(["pull", "--root", root, "--tls-verify=false", hostileRef()])
    expect(r.exitCode, describeResult(r)).not.toBe(0)
    expect(r.stderr).not.toMatch(RAW)
    expect(r.stderr).not.toContain("\x1b")
    // the message is shown, visibly escaped, and cut far below its 60 KB
    expect(r.stderr).toContain("\\x1b[2J")
    expect(r.stderr).toContain("\\u202e")
    expect(r.stderr.length).toBeLessThan(16 << 10)
    expect(r.stderr).toMatch(/…\(\+\d+ bytes\)/)

    // the log's table, the grouped view and the stats print it safe too
    for (const args of [["log"], ["log", "--ref", hostileRef()], ["log", "--stats"], ["ls"], ["audit"]]) {
      const out = await als([...args, "--root", root])
      expect({ args, raw: RAW.test(out.stdout + out.stderr) }).toEqual({ args, raw: false })
      expect(out.stdout.length).toBeLessThan(64 << 10)
    }
    const table = await als(["log", "--root", root])
    expect(table.stdout).toContain("PullFailed")
    expect(table.stdout).toContain("\\x1b[2J")
  }, 2 * MIN)

  test("--json stays exact JSON: the value is kept as the registry sent it", async () => {
    const root = join(base, "hostile-json")
    const r = await als(["pull", "--root", root, "--tls-verify=false", "--json", hostileRef()])
    expect(r.exitCode, describeResult(r)).not.toBe(0)
    // JSON.stringify escapes control characters: stdout has none raw
    expect(r.stdout).not.toContain("\x1b")
    const failed = r.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as { type: string; reason?: { message: string } })
      .find((e) => e.type === "PullFailed")
    expect(failed, r.stdout.slice(0, 2000)).toBeDefined()
    expect(failed!.reason!.message).toContain(HOSTILE)
    const logged = (await alsLog(root)).find((e) => e.type === "PullFailed") as { reason: { message: string } } | undefined
    expect(logged!.reason.message).toContain(HOSTILE)
  }, 2 * MIN)
})

describe("help", () => {
  test("piped help has no colour codes (NO_COLOR unset) and lists exit statuses 130 and 143", async () => {
    for (const args of [["--help"], ["pull", "--help"], ["log", "--help"], ["ls", "--help"]]) {
      const r = await als(args, { env: { NO_COLOR: undefined } })
      expect({ args, exit: r.exitCode, esc: r.stdout.includes("\x1b") || r.stderr.includes("\x1b") }).toEqual({ args, exit: 0, esc: false })
    }
    // help is wrapped: the statuses may be cut between words
    const flat = (s: string) => s.replace(/\s+/g, " ")
    const root = await als(["--help"], { env: { NO_COLOR: undefined } })
    expect(flat(root.stdout)).toMatch(/130 interrupted \(SIGINT[^)]*\); 143 terminated \(SIGTERM\)/)
    const pull = await als(["pull", "--help"], { env: { NO_COLOR: undefined } })
    expect(flat(pull.stdout)).toContain("130 interrupted (SIGINT); 143 terminated (SIGTERM)")
    // a usage error's help is plain too
    const bad = await als(["ls", "extra"], { env: { NO_COLOR: undefined } })
    expect(bad.exitCode).toBe(2)
    expect(bad.stdout + bad.stderr).not.toContain("\x1b")
  }, 2 * MIN)

  test("a usage error @effect/cli finds says where the usage is, as podman does", async () => {
    for (const [args, see] of [[["pull"], "als pull"], [["ls", "extra"], "als ls"], [["bogus"], "als"]] as const) {
      const r = await als(args)
      expect({ args, exit: r.exitCode, see: r.stderr.includes(`See '${see} --help'.`), stdout: r.stdout }).toEqual({ args, exit: 2, see: true, stdout: "" })
    }
  }, 2 * MIN)

  test("on a terminal, NO_COLOR turns the colours of a usage error off (and they are there without it); help is plain", async () => {
    const prefix = await alsCommand()
    const bin = prefix[0] === DIST_ALS ? DIST_ALS : `${prefix.join(" ")}`
    const tty = (args: string, env: Record<string, string | undefined>) => run(["script", "-qec", `${bin} ${args}`, "/dev/null"], { env, timeoutMs: MIN })
    const coloured = await tty("ls extra", { NO_COLOR: undefined, TERM: "xterm" })
    expect(coloured.stdout).toContain("\x1b[")
    const plain = await tty("ls extra", { NO_COLOR: "1", TERM: "xterm" })
    expect(plain.stdout).toContain("extra")
    expect(plain.stdout).not.toContain("\x1b")
    // als's own help has no styles, on a terminal too
    const help = await tty("--help", { NO_COLOR: undefined, TERM: "xterm" })
    expect(help.stdout).toContain("Exit status")
    expect(help.stdout.replace(/^[^\n]*?als /, "als ")).not.toContain("\x1b[0;1m")
  }, 2 * MIN)
})

describe("several refs", () => {
  test("one good, one missing, one good: both good pulled, the failure said, a summary, its exit status", async () => {
    const missing = `${registry.host}/out/missing:1`
    // the status a pull of the missing ref alone ends with
    const alone = await als(["pull", "--root", join(base, "alone"), "--tls-verify=false", missing])
    expect(alone.exitCode, describeResult(alone)).not.toBe(0)

    const root = join(base, "several")
    const r = await als(["pull", "--root", root, "--tls-verify=false", refOf(registry.host, one), missing, refOf(registry.host, two)])
    expect(r.exitCode, describeResult(r)).toBe(alone.exitCode)
    const log = await alsLog(root)
    const completed = log.filter((e) => e.type === "PullCompleted").map((e) => e.ref)
    expect(completed).toEqual([refOf(registry.host, one), refOf(registry.host, two)])
    expect(log.filter((e) => e.type === "PullFailed").map((e) => e.ref)).toEqual([missing])
    // the failure is said where it happened, and the summary names it
    expect(r.stderr).toContain(`als: ${missing}`)
    expect(r.stderr).toContain(`pulled 2 of 3 images; failed: ${missing} (exit ${alone.exitCode})`)
  }, 3 * MIN)

  test("all good: a summary that says so, exit 0", async () => {
    const r = await als(["pull", "--root", join(base, "all-good"), "--tls-verify=false", refOf(registry.host, one), refOf(registry.host, two)])
    expect(r.exitCode, describeResult(r)).toBe(0)
    expect(r.stderr).toContain("pulled all 2 images")
  }, 3 * MIN)
})
