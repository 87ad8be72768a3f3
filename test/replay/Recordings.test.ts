/**
 * Every recording in events/ replays (offline, into a scratch store) to the same events,
 * layer digests, DiffIDs and trees; a recording that was tampered with does not, and the
 * report says where.
 */
import { afterAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { renderReport, type ReplayReport, replayRecording } from "../../src/replay/Replay.ts"
import type { Exchange, RecordingManifest } from "../../src/replay/Recording.ts"
import { als, describeResult, REPO_ROOT } from "../lib/als.ts"

const EVENTS = join(REPO_ROOT, "events")
const recordings = readdirSync(EVENTS, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(EVENTS, d.name, "recording.json")))
  .map((d) => d.name)
  .sort()

const temps: Array<string> = []
afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true })
})

const replay = (dir: string): Promise<ReplayReport> => Effect.runPromise(replayRecording(dir))

/** A copy of a recording to damage. */
const copyOf = (name: string): string => {
  const dir = mkdtempSync(join(tmpdir(), "als-replay-test-"))
  temps.push(dir)
  cpSync(join(EVENTS, name), join(dir, name), { recursive: true })
  return join(dir, name)
}

const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, "recording.json"), "utf8")) as RecordingManifest
const exchangesOf = (dir: string) =>
  readFileSync(join(dir, "exchanges.ndjson"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Exchange)

describe("the recordings in events/", () => {
  test("there are at least the three the project promises: whiteouts, zstd:chunked, a multi-arch index", () => {
    expect(recordings).toEqual(expect.arrayContaining(["hello-whiteout", "feature-zstd-chunked", "multiarch-index"]))
    const chunked = manifestOf(join(EVENTS, "feature-zstd-chunked"))
    expect(chunked.layers.length).toBe(4)
    expect(chunked.layers.every((l) => l.tocDigest?.startsWith("sha256:"))).toBe(true)
    const multi = manifestOf(join(EVENTS, "multiarch-index"))
    expect(multi.options.platform).toBe("linux/arm64")
    const index = exchangesOf(join(EVENTS, "multiarch-index")).find((x) => x.response?.headers["content-type"]?.includes("index"))
    expect(index).toBeDefined()
    const whiteouts = readFileSync(join(EVENTS, "hello-whiteout", manifestOf(join(EVENTS, "hello-whiteout")).layers[1]!.tree), "utf8")
    expect(whiteouts).toContain(`"type":"char","mode":"0000","uid":0,"gid":0,"rdev":"0,0"`)
  })

  for (const name of recordings) {
    test(`${name} replays to the same events, digests, DiffIDs and trees`, async () => {
      const report = await replay(join(EVENTS, name))
      expect(renderReport(report)).toContain("OK: same events")
      expect(report.ok).toBe(true)
      expect(report.events.replayed).toBe(report.events.recorded)
      expect(report.exchanges.answered).toBe(report.exchanges.recorded)
      expect(report.layers.length).toBe(manifestOf(join(EVENTS, name)).layers.length)
      // the scratch store is gone
      expect(existsSync(report.root)).toBe(false)
    }, 60_000)
  }
})

describe("a tampered recording", () => {
  test("a flipped byte in a recorded layer blob: the pull fails where it did not, and the blob is named", async () => {
    const dir = copyOf("multiarch-index")
    const layer = manifestOf(dir).layers[1]!.layer
    const file = join(dir, "blobs", layer.replace(":", "-"))
    const bytes = readFileSync(file)
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01
    writeFileSync(file, bytes)
    const report = await replay(dir)
    expect(report.ok).toBe(false)
    expect(report.failure).toContain(layer)
    const text = renderReport(report)
    expect(text).toContain("DIFFERENT")
    expect(text).toMatch(/recorded event #\d+ RefIndexed, replayed event #\d+ PullFailed\): recorded "RefIndexed", replayed "PullFailed"/)
    expect(text).toContain(`recording damaged: blobs/${layer.replace(":", "-")} does not hash to its name`)
  }, 60_000)

  test("an edited event: exactly that field of that event is named, recorded against replayed", async () => {
    const dir = copyOf("hello-whiteout")
    const file = join(dir, "events.ndjson")
    const lines = readFileSync(file, "utf8").split("\n")
    const i = lines.findIndex((l) => l.includes('"_tag":"LayerExtracted"'))
    const files = JSON.parse(lines[i]!).event.files as number
    lines[i] = lines[i]!.replace(`"files":${files}`, `"files":${files + 1}`)
    writeFileSync(file, lines.join("\n"))
    const report = await replay(dir)
    expect(report.ok).toBe(false)
    expect(report.differences).toHaveLength(1)
    expect(report.differences[0]).toMatchObject({ recordedIndex: i, field: "files", recorded: files + 1, replayed: files })
    expect(renderReport(report)).toContain(`(recorded event #${i} LayerExtracted, replayed event #`)
    expect(renderReport(report)).toContain(`LayerExtracted): files: recorded ${files + 1}, replayed ${files}`)
  }, 60_000)

  test("a removed exchange: the request it answered fails loudly as unrecorded", async () => {
    const dir = copyOf("multiarch-index")
    const exchanges = exchangesOf(dir)
    const resolved = readFileSync(join(dir, "events.ndjson"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).event)
      .find((e) => e._tag === "ManifestResolved")
    const config = exchanges.find((x) => x.request.url.endsWith(`/blobs/${resolved.configDigest}`))!
    writeFileSync(
      join(dir, "exchanges.ndjson"),
      exchanges.filter((x) => x !== config).map((x) => JSON.stringify(x)).join("\n") + "\n",
    )
    const report = await replay(dir)
    expect(report.ok).toBe(false)
    expect(report.exchanges.unrecorded).toEqual([`GET ${config.request.url}`])
    expect(report.failure).toContain("the recording has no answer for GET")
    expect(renderReport(report)).toContain(`unrecorded request: GET ${config.request.url}`)
  }, 60_000)

  test("an edited tree: the path and what differs are named", async () => {
    const dir = copyOf("hello-whiteout")
    const tree = join(dir, manifestOf(dir).layers[1]!.tree)
    const lines = readFileSync(tree, "utf8").split("\n").filter(Boolean)
    const i = lines.findIndex((l) => l.includes('"type":"char"'))
    const path = JSON.parse(lines[i]!).path as string
    lines[i] = lines[i]!.replace('"mode":"0000"', '"mode":"0644"')
    writeFileSync(tree, lines.join("\n") + "\n")
    const report = await replay(dir)
    expect(report.ok).toBe(false)
    const problems = report.layers.flatMap((l) => l.problems)
    expect(problems).toContain(`tree: ${path}: mode recorded "0644", replayed "0000"`)
    expect(problems.some((p) => p.includes("was edited"))).toBe(true)
  }, 60_000)
})

describe("als replay (the command)", () => {
  test("exit 0 and OK for a good recording; exit 1 and the differences for a tampered one", async () => {
    const ok = await als(["replay", join(EVENTS, "multiarch-index")])
    expect(ok.exitCode, describeResult(ok)).toBe(0)
    expect(ok.stdout).toContain("OK: same events")

    const dir = copyOf("multiarch-index")
    const file = join(dir, "events.ndjson")
    writeFileSync(file, readFileSync(file, "utf8").replace('"platform":"linux/arm64"', '"platform":"linux/s390x"'))
    const bad = await als(["replay", dir])
    expect(bad.exitCode, describeResult(bad)).toBe(1)
    expect(bad.stdout).toContain("DIFFERENT: 1 difference")
    expect(bad.stdout).toMatch(/w1 image, step 0 \(recorded event #0 PullRequested, replayed event #0 PullRequested\): platform: recorded "linux\/s390x", replayed "linux\/arm64"/)

    const json = await als(["replay", "--json", dir])
    expect(json.exitCode).toBe(1)
    expect(JSON.parse(json.stdout).differences[0]).toMatchObject({ field: "platform", recorded: "linux/s390x", replayed: "linux/arm64" })

    const none = await als(["replay", join(dir, "nope")])
    expect(none.exitCode).not.toBe(0)
    expect(none.stderr).toContain("no recording.json here")
  }, 180_000)
})
