/**
 * `als pull --record DIR` against a real docker-registry on 127.0.0.1, then `als replay DIR`
 * offline (the registry stopped): the whole loop, with and without credentials.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Exchange, RecordingManifest } from "../../src/replay/Recording.ts"
import { replayRecording } from "../../src/replay/Replay.ts"
import { als, describeResult, REPO_ROOT } from "../lib/als.ts"
import { pushLayout, type RegistryHandle, startRegistry } from "../lib/registry.ts"

const HELLO = join(REPO_ROOT, "test/fixtures/hello")
const temps: Array<string> = []
const temp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix))
  temps.push(d)
  return d
}
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true })
})

/** Every file below `dir` as text (binary bodies included, as latin1). */
const allText = (dir: string): string => {
  let out = ""
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else out += readFileSync(p, "latin1") + "\n"
    }
  }
  walk(dir)
  return out
}

describe("record, then replay offline", () => {
  let registry: RegistryHandle
  let ref: string
  const rec = join(temp("als-rec-"), "hello")
  beforeAll(async () => {
    registry = await startRegistry()
    await pushLayout(HELLO, "latest", `${registry.host}/test/hello:1`)
    ref = `${registry.host}/test/hello:1`
  }, 60_000)
  afterAll(async () => {
    await registry?.stop()
  })

  test("als pull --record writes the exchanges, bodies (each once), inputs, events and trees", async () => {
    const root = temp("als-rec-root-")
    const r = await als(["pull", "--root", root, "--tls-verify=false", "--record", rec, ref])
    expect(r.exitCode, describeResult(r)).toBe(0)
    expect(r.stderr).toMatch(/recorded \d+ registry exchanges, 17 events and 2 layer trees/)
    const manifest = JSON.parse(readFileSync(join(rec, "recording.json"), "utf8")) as RecordingManifest
    expect(manifest.options).toEqual({ refs: [ref], platform: "linux/amd64", jobs: 4, tlsVerify: false })
    expect(manifest.storeRoot).toBe(root)
    const exchanges = readFileSync(join(rec, "exchanges.ndjson"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Exchange)
    // https first (--tls-verify=false tries it), then plain HTTP: the failure is part of the recording
    expect(exchanges[0]!.request.url).toBe(`https://${registry.host}/v2/`)
    expect(exchanges[0]!.error).toBeDefined()
    const layerBlob = exchanges.find((x) => x.response?.body.size === 1084374)!
    expect(layerBlob.response!.body.complete).toBe(true)
    expect(statSync(join(rec, "blobs", layerBlob.response!.body.digest!.replace(":", "-"))).size).toBe(1084374)
    // bodies are content-addressed: as many files as distinct digests
    const digests = new Set(exchanges.flatMap((x) => (x.response?.body.digest ? [x.response.body.digest] : [])))
    expect(readdirSync(join(rec, "blobs")).sort()).toEqual([...digests].map((d) => d.replace(":", "-")).sort())
    const inputs = JSON.parse(readFileSync(join(rec, "inputs.json"), "utf8")) as { clock: number[]; ids: string[] }
    expect(inputs.ids.length).toBeGreaterThanOrEqual(18) // 17 events + 1 workflow id
    expect(inputs.clock.length).toBeGreaterThan(0)
    expect(readFileSync(join(rec, "events.ndjson"), "utf8").trim().split("\n")).toHaveLength(17)
  }, 120_000)

  test("with the registry gone, the replay answers every request from the recording and matches", async () => {
    await registry.stop()
    const report = await Effect.runPromise(replayRecording(rec))
    expect(report.exchanges.unrecorded).toEqual([])
    expect(report.ok).toBe(true)
    // and into a kept store, through the command
    const root = temp("als-replay-root-")
    const r = await als(["replay", "--root", root, rec])
    expect(r.exitCode, describeResult(r)).toBe(0)
    expect(r.stdout).toContain(`store:     ${root}`)
    expect(existsSync(join(root, "sha256:aba938b9c8e0b2950c2915ee8e044b7b5396fc6487937375cef7615e8121c743", "diff", "bin", "busybox"))).toBe(true)
    // replaying into that store again finds the layers: the events differ, and the replay says so
    const again = await als(["replay", "--root", root, rec])
    expect(again.exitCode).toBe(1)
    expect(again.stdout).toMatch(/recorded event #\d+ PoolProbed, replayed event #\d+ LayerFound\): recorded "PoolProbed", replayed "LayerFound"/)
    expect(again.stdout).toContain("found: recorded 0, replayed 2")
  }, 120_000)

  test("--record refuses a non-empty directory and --pool, as usage errors", async () => {
    const root = temp("als-rec-root-")
    const full = await als(["pull", "--root", root, "--tls-verify=false", "--record", rec, ref])
    expect(full.exitCode).toBe(2)
    expect(full.stderr).toContain("the directory is not empty")
    const pooled = await als(["pull", "--root", root, "--tls-verify=false", "--record", join(temp("als-rec-"), "x"), "--pool", root, ref])
    expect(pooled.exitCode).toBe(2)
    expect(pooled.stderr).toContain("--record with --pool")
  }, 60_000)
})

describe("a recording of an authenticated pull", () => {
  const user = "alice"
  const pass = "s3cret-Pa55word"
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { user, pass } })
    await pushLayout(HELLO, "latest", `${registry.host}/test/hello:1`, { creds: `${user}:${pass}` })
  }, 60_000)
  afterAll(async () => {
    await registry?.stop()
  })

  test("holds no credentials, says they were used, and replays with placeholders", async () => {
    const rec = join(temp("als-rec-"), "auth")
    const root = temp("als-rec-root-")
    const r = await als(["pull", "--root", root, "--tls-verify=false", "--creds", `${user}:${pass}`, "--record", rec, `${registry.host}/test/hello:1`])
    expect(r.exitCode, describeResult(r)).toBe(0)
    const text = allText(rec)
    expect(text).not.toContain(pass)
    expect(text).not.toContain(Buffer.from(`${user}:${pass}`).toString("base64"))
    const manifest = JSON.parse(readFileSync(join(rec, "recording.json"), "utf8")) as RecordingManifest
    expect(manifest.credentials).toEqual({ used: true, identityToken: false })
    expect(text).toContain(`"auth":"basic"`)
    await registry.stop()
    const report = await Effect.runPromise(replayRecording(rec))
    expect(report.exchanges.unrecorded).toEqual([])
    expect(report.ok).toBe(true)
  }, 120_000)
})
