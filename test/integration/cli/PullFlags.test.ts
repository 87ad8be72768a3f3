// Issue 15 item 4: podman's pull flags on `als pull`, against a real docker-registry.
// - --os/--arch/--variant pick an index entry as podman does; --platform with --os/--arch is
//   a usage error before the store exists.
// - -q/--quiet: nothing on stderr when all is well, each pulled image's manifest digest on stdout.
// - --creds USER asks for the password on a terminal (a pty through script(1)) without echo;
//   with no terminal it is a usage error before the store exists.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { als, alsCommand, describeResult } from "../../lib/als.ts"
import { buildLayer, pushLayout, startRegistry, writeOciIndex, writeOciImage, type BuiltImage, type RegistryHandle } from "../../lib/registry.ts"

const MIN = 60_000
let base: string
let registry: RegistryHandle
let authed: RegistryHandle
let index: Awaited<ReturnType<typeof pushIndex>>
let single: BuiltImage
const USER = "alice"
const PASS = "s3cret-pa55"

const PLATFORMS = [
  { os: "linux", architecture: "amd64" },
  { os: "linux", architecture: "arm64", variant: "v8" },
  { os: "linux", architecture: "arm", variant: "v6" },
  { os: "linux", architecture: "arm", variant: "v7" },
  { os: "windows", architecture: "amd64" },
] as const

const pushIndex = async (host: string) => {
  // under base: removed with it in afterAll
  const layout = join(mkdtempSync(join(base, "layout-")), "l")
  const images = await Promise.all(PLATFORMS.map(async (platform) => ({
    platform,
    layers: [await buildLayer({ [`etc/${platform.os}-${platform.architecture}-${"variant" in platform ? platform.variant : ""}`]: "x\n" })],
  })))
  const built = writeOciIndex(layout, "multi", images)
  await pushLayout(layout, "multi", `${host}/flags/multi:1`, { all: true })
  const digestOf = (os: string, arch: string, variant?: string) =>
    built.images.find((i) => i.platform.os === os && i.platform.architecture === arch && (i.platform.variant ?? "") === (variant ?? ""))!.manifestDigest
  return { ref: `${host}/flags/multi:1`, digestOf }
}

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), "als-cli-flags-"))
  ;[registry, authed] = await Promise.all([startRegistry(), startRegistry({ htpasswd: { user: USER, pass: PASS } })])
  index = await pushIndex(registry.host)
  const layout = join(mkdtempSync(join(base, "one-")), "l")
  single = writeOciImage(layout, "one", { os: "linux", architecture: "amd64" }, [await buildLayer({ "etc/one": "one\n" })])
  await pushLayout(layout, "one", `${authed.host}/flags/one:1`, { creds: `${USER}:${PASS}` })
  await pushLayout(layout, "one", `${registry.host}/flags/one:1`)
  await alsCommand()
}, 5 * MIN)

afterAll(async () => {
  await Promise.all([registry?.stop(), authed?.stop()])
  rmSync(base, { recursive: true, force: true })
}, MIN)

let n = 0
const freshRoot = () => join(base, `store-${++n}`)

/** `als pull -q FLAGS REF` into a fresh store: the digest it printed. */
const quietPull = async (flags: ReadonlyArray<string>, ref = index.ref) => {
  const r = await als(["pull", "--root", freshRoot(), "--tls-verify=false", "-q", ...flags, ref])
  expect(r.exitCode, describeResult(r)).toBe(0)
  expect(r.stderr, describeResult(r)).toBe("")
  return r.stdout
}

describe("--os, --arch, --variant", () => {
  test("each picks the index entry podman picks", async () => {
    const rows: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [["--arch", "arm64"], index.digestOf("linux", "arm64", "v8")],
      [["--arch", "aarch64"], index.digestOf("linux", "arm64", "v8")],
      [["--arch", "arm"], index.digestOf("linux", "arm", "v7")],
      [["--arch", "arm", "--variant", "v6"], index.digestOf("linux", "arm", "v6")],
      [["--platform", "linux/arm", "--variant", "v6"], index.digestOf("linux", "arm", "v6")],
      // a variant written in --platform wins over --variant, as in podman
      [["--platform", "linux/arm/v7", "--variant", "v6"], index.digestOf("linux", "arm", "v7")],
      [["--os", "windows"], index.digestOf("windows", "amd64")],
      [["--os", "linux", "--arch", "amd64"], index.digestOf("linux", "amd64")],
    ]
    for (const [flags, want] of rows) expect({ flags, got: await quietPull(flags) }).toEqual({ flags, got: `${want}\n` })
  }, 5 * MIN)

  test("--platform with --arch or --os, or a malformed part, is a usage error and creates nothing", async () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["--platform", "linux/arm64", "--arch", "arm64"], /--platform option can not be specified with --arch or --os/],
      [["--platform", "linux/arm64", "--os", "linux"], /--platform option can not be specified with --arch or --os/],
      [["--arch", "arm/v7"], /--arch "arm\/v7"/],
      [["--os", "li nux"], /--os "li nux"/],
      [["--variant", "v7*"], /--variant/],
      [["--arch"], /--arch needs a value/],
    ]
    for (const [flags, message] of cases) {
      const root = freshRoot()
      const r = await als(["pull", "--root", root, "--tls-verify=false", index.ref, ...flags])
      expect({ flags, exit: r.exitCode, message: message.test(r.stderr), created: existsSync(root) }, describeResult(r))
        .toEqual({ flags, exit: 2, message: true, created: false })
    }
  }, 5 * MIN)
})

describe("-q / --quiet", () => {
  test("one ref: stdout is its manifest digest, stderr is empty", async () => {
    const r = await als(["pull", "--root", freshRoot(), "--tls-verify=false", "--quiet", `${registry.host}/flags/one:1`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    expect(r.stdout).toBe(`${single.manifestDigest}\n`)
    expect(r.stderr).toBe("")
    // without -q the same pull talks on stderr and prints nothing on stdout
    const loud = await als(["pull", "--root", freshRoot(), "--tls-verify=false", `${registry.host}/flags/one:1`])
    expect(loud.exitCode, describeResult(loud)).toBe(0)
    expect(loud.stdout).toBe("")
    expect(loud.stderr).not.toBe("")
  }, 5 * MIN)

  test("several refs: a digest per pulled ref; a failure is said on stderr with the summary", async () => {
    const missing = `${registry.host}/flags/missing:1`
    const r = await als(["pull", "--root", freshRoot(), "--tls-verify=false", "-q", `${registry.host}/flags/one:1`, missing, index.ref, "--arch", "arm64"])
    expect(r.exitCode, describeResult(r)).toBe(3)
    expect(r.stdout).toBe(`${single.manifestDigest}\n${index.digestOf("linux", "arm64", "v8")}\n`)
    expect(r.stderr).toContain("flags/missing:1")
    expect(r.stderr).toMatch(/pulled 2 of 3 images; failed: .*flags\/missing:1 \(exit 3\)/)
    const ok = await als(["pull", "--root", freshRoot(), "--tls-verify=false", "-q", `${registry.host}/flags/one:1`, index.ref])
    expect(ok.exitCode, describeResult(ok)).toBe(0)
    expect(ok.stderr).toBe("")
    expect(ok.stdout.trim().split("\n")).toHaveLength(2)
  }, 5 * MIN)
})

/** `als ARGS` on a pseudo-terminal (script(1)); `answer` is typed once `Password: ` shows. */
const onTerminal = async (args: ReadonlyArray<string>, answer: string) => {
  const cmd = [...(await alsCommand()), ...args].map((w) => `'${w.replace(/'/g, "'\\''")}'`).join(" ")
  const proc = Bun.spawn(["script", "-qefc", cmd, "/dev/null"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", TERM: "dumb" },
  })
  let out = ""
  let typed = false
  const decoder = new TextDecoder()
  for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
    out += decoder.decode(chunk, { stream: true })
    if (!typed && out.includes("Password: ")) {
      typed = true
      // after the prompt: raw mode is on, nothing typed is echoed
      proc.stdin.write(answer + "\r")
      proc.stdin.flush()
    }
  }
  proc.stdin.end()
  const exitCode = await proc.exited
  return { exitCode, out, typed }
}

describe("--creds USER", () => {
  test("asks for the password on a terminal, without echo, and pulls with it", async () => {
    const root = freshRoot()
    const r = await onTerminal(["pull", "--root", root, "--tls-verify=false", "--creds", USER, `${authed.host}/flags/one:1`], PASS)
    expect(r.typed, r.out).toBe(true)
    expect(r.exitCode, r.out).toBe(0)
    expect(r.out).not.toContain(PASS)
    const ls = await als(["ls", "--root", root, "--json"])
    expect(ls.stdout, describeResult(ls)).toContain(single.layers[0]!.digest)
    // a wrong password is the registry's refusal (exit 3), not a hang or a usage error
    const wrong = await onTerminal(["pull", "--root", freshRoot(), "--tls-verify=false", "--creds", USER, `${authed.host}/flags/one:1`], "nope")
    expect(wrong.exitCode, wrong.out).toBe(3)
  }, 5 * MIN)

  test("without a terminal it is a usage error naming USER:PASSWORD, and creates nothing", async () => {
    const root = freshRoot()
    const r = await als(["pull", "--root", root, "--tls-verify=false", "--creds", USER, `${authed.host}/flags/one:1`])
    expect(r.exitCode, describeResult(r)).toBe(2)
    expect(r.stderr).toContain("--creds USER needs a terminal to ask for the password; pass USER:PASSWORD")
    expect(existsSync(root)).toBe(false)
    const whole = await als(["pull", "--root", root, "--tls-verify=false", "-q", "--creds", `${USER}:${PASS}`, `${authed.host}/flags/one:1`])
    expect(whole.exitCode, describeResult(whole)).toBe(0)
    expect(whole.stdout).toBe(`${single.manifestDigest}\n`)
  }, 5 * MIN)
})
