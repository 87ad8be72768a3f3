/**
 * `als audit` on stores filled by real pulls from docker-registry on 127.0.0.1: clean after a
 * pull; a pool-linked layer whose pool copy went away; a damaged log; checkpoints kept across
 * later pulls, then a truncation.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { als, alsLog, alsOk, describeResult, REPO_ROOT } from "../../lib/als.ts"
import { pushLayout, type RegistryHandle, startRegistry } from "../../lib/registry.ts"

const HELLO = join(REPO_ROOT, "test/fixtures/hello")
const BASE = "sha256:aba938b9c8e0b2950c2915ee8e044b7b5396fc6487937375cef7615e8121c743"

let registry: RegistryHandle
let ref: string
let work: string
beforeAll(async () => {
  registry = await startRegistry()
  await pushLayout(HELLO, "latest", `${registry.host}/test/hello:1`)
  ref = `${registry.host}/test/hello:1`
  work = mkdtempSync(join(tmpdir(), "als-audit-it-"))
}, 60_000)
afterAll(async () => {
  await registry?.stop()
  rmSync(work, { recursive: true, force: true })
})

const pull = (root: string, ...extra: string[]) => alsOk(["pull", "--root", root, "--tls-verify=false", ...extra, ref])

describe("als audit after real pulls", () => {
  test("a pulled store is clean (exit 0); a pool-linked store loses its pool copy (exit 1, LinkBroken)", async () => {
    const a = join(work, "a")
    const b = join(work, "b")
    await pull(a)
    const clean = await als(["audit", "--root", a, "--deep"])
    expect(clean.exitCode, describeResult(clean)).toBe(0)
    expect(clean.stdout).toContain("clean: the log is intact and the store is what the log says")

    await pull(b, "--pool", a)
    expect((await alsLog(b)).filter((e) => e.type === "LayerLinked")).toHaveLength(2)
    expect((await als(["audit", "--root", b])).exitCode).toBe(0)

    rmSync(join(a, BASE, "diff"), { recursive: true })
    const broken = await als(["audit", "--root", b, "--json"])
    expect(broken.exitCode, describeResult(broken)).toBe(1)
    const report = JSON.parse(broken.stdout) as { ok: boolean; problems: Array<{ code: string; layer?: string; path?: string }> }
    expect(report.ok).toBe(false)
    expect(report.problems).toContainEqual(expect.objectContaining({ code: "LinkBroken", layer: BASE, path: join(b, BASE, "diff") }))
    // and the pool store itself now misses a part of that layer
    const a2 = await als(["audit", "--root", a])
    expect(a2.exitCode).toBe(1)
    expect(a2.stdout).toContain(`LayerIncomplete: layer ${BASE} (${join(a, BASE, "diff")}): no diff`)
  }, 180_000)

  test("a flipped byte in the log is named by frame and byte", async () => {
    const c = join(work, "c")
    await pull(c)
    const log = join(c, ".als", "log")
    const bytes = readFileSync(log)
    bytes[2000]! ^= 0x10
    writeFileSync(log, bytes)
    const r = await als(["audit", "--root", c])
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout).toMatch(/LogChecksum: log frame \d+ at byte \d+: checksum mismatch/)
  }, 120_000)

  test("--checkpoint, then --since after another pull (grew), then after a truncation (fails)", async () => {
    const d = join(work, "d")
    const cp = join(work, "d.checkpoint")
    await pull(d)
    const first = await als(["audit", "--root", d, "--checkpoint", cp])
    expect(first.exitCode, describeResult(first)).toBe(0)
    const saved = JSON.parse(readFileSync(cp, "utf8")) as { size: number; hash: string; frames: number }
    expect(saved.size).toBe(statSync(join(d, ".als", "log")).size)
    expect(saved.frames).toBe((await alsLog(d)).length)

    await pull(d) // finds both layers: more events
    const grew = await als(["audit", "--root", d, "--since", cp])
    expect(grew.exitCode, describeResult(grew)).toBe(0)
    expect(grew.stdout).toMatch(/since: the log only grew since .*: \+\d+ frames, \+\d+ bytes/)

    truncateSync(join(d, ".als", "log"), saved.size - 200)
    const cut = await als(["audit", "--root", d, "--since", cp])
    expect(cut.exitCode).toBe(1)
    expect(cut.stdout).toContain("CheckpointTruncated")
  }, 180_000)

  test("a directory that is not a store is a usage error", async () => {
    const r = await als(["audit", "--root", join(work, "nowhere")])
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain("not an als store (als init DIR)")
  })
})
