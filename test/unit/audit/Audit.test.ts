/**
 * `als audit` on a store made by hand (fixture.ts): clean as made; then one kind of damage at a
 * time, each found and named (which frame: byte offset and index; which layer: digest and path).
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import * as path from "node:path"
import { describeProblem } from "../../../src/audit/AuditProblem.ts"
import { encodeRef } from "../../../src/domain/StorePaths.ts"
import { appendEvents, audit, entries, type Fixture, makeFixture } from "./fixture.ts"

let fx: Fixture
beforeEach(async () => {
  fx = await makeFixture()
})
afterEach(() => fx.dispose())

/** [start, end) of every frame in the log. */
const frames = async () => {
  const es = await entries(fx.root)
  const size = fs.statSync(fx.log).size
  return es.map((e, i) => ({ index: e.index, start: e.offset, end: es[i + 1]?.offset ?? size }))
}

const codes = (r: { problems: ReadonlyArray<{ code: string }> }) => r.problems.map((p) => p.code)

describe("a sound store", () => {
  test("is clean: log intact, every layer, alias, ref entry and link explained", async () => {
    const r = await audit(fx.root)
    expect(r.problems.map(describeProblem)).toEqual([])
    expect(r.ok).toBe(true)
    expect(r.log.frames).toBe(13)
    expect(r.store).toEqual({ layersCommitted: 3, layersOnDisk: 3, refs: 1, refViews: 1 })
    expect((await audit(fx.root, { deep: true })).ok).toBe(true)
  })
})

describe("damage to the log", () => {
  test("one flipped byte: the frame is named by index and byte offset", async () => {
    const f = (await frames())[5]!
    const bytes = fs.readFileSync(fx.log)
    bytes[f.start + 60]! ^= 0x01
    fs.writeFileSync(fx.log, bytes)
    const r = await audit(fx.root)
    expect(r.ok).toBe(false)
    expect(r.problems).toEqual([
      expect.objectContaining({ area: "log", code: "LogChecksum", frame: { offset: f.start, index: 5 } }),
    ])
    expect(describeProblem(r.problems[0]!)).toBe(
      `LogChecksum: log frame 5 at byte ${f.start}: checksum mismatch: the frame's bytes were changed`,
    )
    // the other frames still explain the store: no layer is flagged for it
    expect(r.log.readable).toBe(12)
  })

  test("a deleted frame: the chain breaks where it was", async () => {
    const fs5 = (await frames())[5]!
    const bytes = fs.readFileSync(fx.log)
    fs.writeFileSync(fx.log, Buffer.concat([bytes.subarray(0, fs5.start), bytes.subarray(fs5.end)]))
    const r = await audit(fx.root)
    expect(r.ok).toBe(false)
    expect(r.problems[0]).toMatchObject({ code: "LogChain", frame: { offset: fs5.start, index: 5 } })
    expect(r.problems[0]!.message).toContain("frames were removed, added or reordered")
  })

  test("two frames swapped: the chain breaks at the first of them", async () => {
    const all = await frames()
    const [x, y] = [all[6]!, all[7]!]
    const bytes = fs.readFileSync(fx.log)
    fs.writeFileSync(
      fx.log,
      Buffer.concat([bytes.subarray(0, x.start), bytes.subarray(y.start, y.end), bytes.subarray(x.start, x.end), bytes.subarray(y.end)]),
    )
    const r = await audit(fx.root)
    expect(r.ok).toBe(false)
    expect(codes(r)[0]).toBe("LogChain")
    expect(r.problems[0]!.frame).toEqual({ offset: x.start, index: 6 })
  })
})

describe("the store against the log", () => {
  test("a deleted layer directory: LayerMissing, with digest and path (and its ref entry now dangles)", async () => {
    fs.rmSync(path.join(fx.root, fx.a.digest), { recursive: true })
    const r = await audit(fx.root)
    expect(r.problems[0]).toEqual({
      area: "layer",
      code: "LayerMissing",
      layer: fx.a.digest,
      path: path.join(fx.root, fx.a.digest),
      message: "committed by the log (LayerCommitted, pull) and never removed, but not in the store",
    })
    expect(r.problems.find((p) => p.code === "RefEntryDangling")?.path).toBe(path.join(fx.root, encodeRef(fx.ref), fx.a.digest))
  })

  test("a stray layer directory and a stray file: UnexplainedLayer and StrayEntry", async () => {
    const stray = `sha256:${"e".repeat(64)}`
    fs.mkdirSync(path.join(fx.root, stray, "diff"), { recursive: true })
    fs.writeFileSync(path.join(fx.root, "notes.txt"), "hi")
    const r = await audit(fx.root)
    expect(r.problems).toEqual([
      expect.objectContaining({ code: "UnexplainedLayer", layer: stray, path: path.join(fx.root, stray) }),
      expect.objectContaining({ code: "StrayEntry", path: path.join(fx.root, "notes.txt") }),
    ])
  })

  test("a linked layer whose pool target is gone: LinkBroken names the link and the pool", async () => {
    fs.rmSync(path.join(fx.pool, fx.c.digest, "diff"), { recursive: true })
    const r = await audit(fx.root)
    expect(r.problems).toEqual([
      expect.objectContaining({ code: "LinkBroken", layer: fx.c.digest, path: path.join(fx.root, fx.c.digest, "diff") }),
    ])
    expect(r.problems[0]!.message).toContain(`which does not exist (the layer is linked from pool ${fx.pool})`)
  })

  test("ref entries pointing elsewhere or nowhere, and a removed TOC alias, are found", async () => {
    const view = path.join(fx.root, encodeRef(fx.ref))
    fs.unlinkSync(path.join(view, fx.a.digest))
    fs.symlinkSync(`../sha256:${"f".repeat(64)}`, path.join(view, fx.a.digest))
    const ghost = `sha256:${"d".repeat(64)}`
    fs.symlinkSync(`../${ghost}`, path.join(view, ghost))
    fs.unlinkSync(path.join(fx.root, fx.b.toc!))
    const r = await audit(fx.root)
    expect(r.problems).toEqual([
      expect.objectContaining({ code: "AliasMissing", layer: fx.b.digest, path: path.join(fx.root, fx.b.toc!) }),
      expect.objectContaining({ code: "RefEntryWrongTarget", layer: fx.a.digest, path: path.join(view, fx.a.digest) }),
      expect.objectContaining({ code: "UnexplainedRefEntry", path: path.join(view, ghost) }),
    ])
  })

  test("a ref entry whose layer was deleted dangles", async () => {
    fs.rmSync(path.join(fx.root, fx.b.digest), { recursive: true })
    const r = await audit(fx.root)
    const view = path.join(fx.root, encodeRef(fx.ref))
    const dangling = r.problems.filter((p) => p.code === "RefEntryDangling").map((p) => p.path)
    expect(dangling.sort()).toEqual([path.join(view, fx.b.digest), path.join(view, fx.b.toc!)].sort())
    expect(codes(r)).toContain("AliasDangling")
  })

  test("info that disagrees with the log, a blob of another size, and (with --deep) other bytes", async () => {
    const info = path.join(fx.root, fx.a.digest, "info")
    const good = fs.readFileSync(info, "utf8")
    fs.writeFileSync(info, good.replace(fx.a.diffId, fx.b.diffId))
    const blob = path.join(fx.root, fx.b.digest, "blob")
    fs.appendFileSync(blob, "x")
    const r = await audit(fx.root)
    expect(r.problems).toEqual([
      expect.objectContaining({ code: "InfoMismatch", layer: fx.a.digest, path: info }),
      expect.objectContaining({ code: "BlobSizeMismatch", layer: fx.b.digest, path: blob }),
    ])
    expect(r.problems[0]!.message).toBe(`info diff-digest is ${fx.b.diffId}, the LayerCommitted event says ${fx.a.diffId}`)
    fs.writeFileSync(info, good)
    fs.writeFileSync(blob, Buffer.from(fx.b.blob).fill(0x41, 0, 3)) // same size, other bytes
    expect(codes(await audit(fx.root))).toEqual([])
    expect(codes(await audit(fx.root, { deep: true }))).toEqual(["BlobDigestMismatch"])
  })

  test("a layer the log removed, still on disk: RemovedLayerPresent", async () => {
    await appendEvents(fx.root, [{ _tag: "LayerRemoved", layer: fx.a.digest, reason: "gc" }], "wf-2")
    const r = await audit(fx.root)
    expect(r.problems).toEqual([expect.objectContaining({ code: "RemovedLayerPresent", layer: fx.a.digest })])
    expect(r.problems[0]!.message).toContain("LayerRemoved: gc")
  })
})

describe("checkpoints", () => {
  test("--since after appends: the log only grew", async () => {
    const cp = path.join(path.dirname(fx.root), "cp.json")
    const first = await audit(fx.root, { checkpoint: cp })
    expect(first.checkpoint).toMatchObject({ written: true, value: { frames: 13, size: fs.statSync(fx.log).size } })
    await appendEvents(fx.root, [{ _tag: "LookupRequested", layer: fx.a.digest }, { _tag: "LayerFound", layer: fx.a.digest, path: "x" }], "wf-2")
    const r = await audit(fx.root, { since: cp })
    expect(r.ok).toBe(true)
    expect(r.since?.grewBy).toEqual({ frames: 2, bytes: fs.statSync(fx.log).size - first.checkpoint!.value!.size })
  })

  test("--since after a truncation fails: CheckpointTruncated", async () => {
    const cp = path.join(path.dirname(fx.root), "cp.json")
    await audit(fx.root, { checkpoint: cp })
    const last = (await frames()).at(-1)!
    fs.truncateSync(fx.log, last.start) // a clean cut at a frame boundary: the chain alone cannot tell
    const r = await audit(fx.root, { since: cp })
    expect(r.ok).toBe(false)
    expect(r.problems[0]).toMatchObject({ area: "checkpoint", code: "CheckpointTruncated", path: cp })
  })

  test("--since after a rewrite fails: CheckpointRewritten (the log itself is consistent)", async () => {
    const cp = path.join(path.dirname(fx.root), "cp.json")
    await audit(fx.root, { checkpoint: cp })
    // rewrite: a whole new, consistent log of the same shape but one changed event
    const es = await entries(fx.root)
    fs.rmSync(fx.log)
    await appendEvents(fx.root, es.map((e, i) => (i === 0 ? { ...e.event, platform: "linux/arm64" } as typeof e.event : e.event)))
    const r = await audit(fx.root, { since: cp })
    expect(codes(r)).toEqual(["CheckpointRewritten"])
    expect(r.problems[0]!.message).toMatch(/the first \d+ bytes were changed|no frame ends at byte/)
  })

  test("no checkpoint is written of a damaged log", async () => {
    const f = (await frames())[3]!
    const bytes = fs.readFileSync(fx.log)
    bytes[f.start + 50]! ^= 0xff
    fs.writeFileSync(fx.log, bytes)
    const cp = path.join(path.dirname(fx.root), "cp.json")
    const r = await audit(fx.root, { checkpoint: cp })
    expect(r.checkpoint).toEqual({ file: cp, written: false })
    expect(fs.existsSync(cp)).toBe(false)
  })
})
