/**
 * `als log` for reviewers: --follow while another process appends, the grouped view of a
 * pull, and --stats, on stores filled by real pulls from docker-registry on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { als, alsCommand, alsOk, describeResult, REPO_ROOT } from "../../lib/als.ts"
import { pushLayout, type RegistryHandle, startRegistry } from "../../lib/registry.ts"

const HELLO = join(REPO_ROOT, "test/fixtures/hello")
const BLOBS = 1084374 + 206 // the two layers of test/fixtures/hello

let work: string
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "als-log-it-"))
})
afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

const appendWith = async (root: string, writer: string, count: number) => {
  const p = Bun.spawn(["npx", "bun", join(REPO_ROOT, "test/lib/logWriter.ts"), root, writer, String(count), "3"], { stdout: "ignore", stderr: "pipe" })
  const code = await p.exited
  if (code !== 0) throw new Error(`logWriter failed: ${await new Response(p.stderr).text()}`)
}

describe("als log --follow", () => {
  test("prints what is there, then what another process appends, and stops on SIGINT with exit 130", async () => {
    const root = join(work, "follow")
    await appendWith(root, "1", 4)
    const proc = Bun.spawn([...(await alsCommand()), "log", "--follow", "--json", "--root", root], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1" },
    })
    const lines: Array<string> = []
    let buffered = ""
    const reading = (async () => {
      for await (const chunk of proc.stdout) {
        buffered += new TextDecoder().decode(chunk)
        const parts = buffered.split("\n")
        buffered = parts.pop()!
        lines.push(...parts.filter((l) => l.trim() !== ""))
      }
    })()
    const waitFor = async (n: number) => {
      const deadline = Date.now() + 20_000
      while (lines.length < n && Date.now() < deadline) await Bun.sleep(50)
      return lines.length
    }
    try {
      expect(await waitFor(4)).toBe(4)
      await appendWith(root, "2", 6)
      expect(await waitFor(10)).toBe(10)
      await Bun.sleep(500) // nothing more comes
      expect(lines).toHaveLength(10)
      const events = lines.map((l) => JSON.parse(l) as { type: string; annotations: { writer: string; seq: string } })
      expect(events.map((e) => `${e.annotations.writer}:${e.annotations.seq}`)).toEqual([
        "1:0", "1:1", "1:2", "1:3",
        "2:0", "2:1", "2:2", "2:3", "2:4", "2:5",
      ])
    } finally {
      proc.kill("SIGINT")
    }
    // Ctrl-C ends --follow as it ends any command: exit 130 (issue 11 class 7)
    expect(await proc.exited).toBe(130)
    await reading
  }, 60_000)
})

describe("als log on real pulls", () => {
  let registry: RegistryHandle
  let ref: string
  const a = () => join(work, "a")
  const b = () => join(work, "b")
  beforeAll(async () => {
    registry = await startRegistry()
    await pushLayout(HELLO, "latest", `${registry.host}/test/hello:1`)
    ref = `${registry.host}/test/hello:1`
    await alsOk(["pull", "--root", a(), "--tls-verify=false", ref])
    await alsOk(["pull", "--root", a(), "--tls-verify=false", ref]) // both layers found
    const missing = await als(["pull", "--root", a(), "--tls-verify=false", `${registry.host}/test/hello:nope`])
    expect(missing.exitCode).toBe(3)
    await alsOk(["pull", "--root", b(), "--tls-verify=false", "--pool", a(), ref]) // both linked
  }, 120_000)
  afterAll(async () => {
    await registry?.stop()
  })

  test("--ref groups each pull under a headline, steps at +ms, layers indented with their duration", async () => {
    const r = await alsOk(["log", "--root", a(), "--ref", ref])
    const blocks = r.stdout.trim().split("\n\n")
    expect(blocks).toHaveLength(2)
    const [first, second] = blocks.map((blk) => blk.split("\n"))
    expect(first![0]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d [\\d:.]+  pull ${ref.replace(/[.]/g, "\\.")} \\(linux/amd64\\)  ok: 0 found, 0 linked, 2 pulled, 1\\.0 MiB fetched  in \\d+ ms  \\(workflow [0-9a-f-]{8}\\)$`))
    expect(first![1]).toMatch(/^ +\+0 ms  PullRequested$/)
    expect(first!.filter((l) => /^ +\+\d+ ms    [0-9a-f]{12}  LayerCommitted +committed \(pull\)  \(layer done in \d+ ms\)$/.test(l))).toHaveLength(2)
    expect(first!.at(-1)).toMatch(/^ +\+\d+ ms  PullCompleted +ok: 0 found, 0 linked, 2 pulled$/)
    // the second pull found both layers
    expect(second![0]).toContain("ok: 2 found, 0 linked, 0 pulled, 0 B fetched")
    expect(second!.filter((l) => l.includes("LayerFound") && l.includes("(layer done in"))).toHaveLength(2)
    // --flat: the table instead
    const flat = await alsOk(["log", "--root", a(), "--ref", ref, "--flat"])
    expect(flat.stdout.split("\n")[0]).toMatch(/^TIME +EVENT +LAYER +REF +OUTCOME$/)
  }, 60_000)

  test("--stats: pulls, bytes fetched against bytes served from the store or pools, failures by reason", async () => {
    const r = await alsOk(["log", "--root", a(), "--stats"])
    expect(r.stdout).toContain("pulls:     3 requested, 2 completed, 1 failed")
    expect(r.stdout).toContain("layers:    2 pulled, 0 linked from pools, 2 found in the store, 0 removed")
    expect(r.stdout).toContain("failures:  NotFound 1")
    const j = JSON.parse((await alsOk(["log", "--root", a(), "--stats", "--json"])).stdout)
    expect(j.bytes).toEqual({ fetched: BLOBS, found: BLOBS, linked: 0 })
    expect(j.failuresByCode).toEqual({ NotFound: 1 })
    const linked = JSON.parse((await alsOk(["log", "--root", b(), "--stats", "--json"])).stdout)
    expect(linked.layers.linked).toBe(2)
    expect(linked.bytes).toEqual({ fetched: 0, found: 0, linked: BLOBS })
    // --since in the future: nothing counted
    const none = JSON.parse((await alsOk(["log", "--root", a(), "--stats", "--json", "--since", "2999-01-01"])).stdout)
    expect(none.pulls).toEqual({ requested: 0, completed: 0, failed: 0 })
    const bad = await als(["log", "--root", a(), "--stats", "--ref", ref])
    expect(bad.exitCode, describeResult(bad)).toBe(2)
  }, 60_000)
})
