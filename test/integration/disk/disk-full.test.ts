// Issue 5: the disk holding the store fills up. The store root is a small tmpfs (8 MiB); the
// images pulled into it do not fit: a blob bigger than the disk, a small blob that extracts
// bigger than the disk, an image whose last layer does not fit after the others did, and a disk
// already full to the last byte. Each time `als pull` exits 5 (store I/O) — or 6 when not even
// the log could be written — with a message that says the disk is full and what to do; no
// partial layer is visible, staging is empty, the log is whole, and once the failed pull's
// staging is gone (deleting nothing else) a small image still pulls.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs"
import { join } from "node:path"
import { als, describeResult, eventsOf, type AlsResult } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import { isMountPoint, run, unmountUnder } from "../../lib/sh.ts"
import {
  expectCleanAudit,
  expectConsistentStore,
  gzipLayer,
  layerMap,
  Leftovers,
  lockEntries,
  MIN,
  pushTestImage,
  randomLayer,
  readLog,
  refOf,
  stagingEntries,
  verifyLog,
  zerosLayer,
  type TestImage,
} from "../crash/support.ts"

let registry: RegistryHandle
let small: TestImage
let bigBlob: TestImage
let bigTree: TestImage
let lastTooBig: TestImage
const left = new Leftovers()
let base: string
const mounts: string[] = []

beforeAll(async () => {
  registry = await startRegistry()
  base = left.tempDir("disk")
  small = await pushTestImage(registry.url, "disk/small", "1", [gzipLayer([{ name: "etc/small", content: "fits\n" }])])
  bigBlob = await pushTestImage(registry.url, "disk/big-blob", "1", [
    gzipLayer([{ name: "etc/first", content: "first\n" }]),
    randomLayer("random.bin", 12 << 20),
  ])
  bigTree = await pushTestImage(registry.url, "disk/big-tree", "1", [zerosLayer("zeros.bin", 24 << 20)])
  lastTooBig = await pushTestImage(registry.url, "disk/last-too-big", "1", [
    gzipLayer([{ name: "etc/a", content: "a\n" }]),
    randomLayer("one.bin", 1 << 20),
    randomLayer("two.bin", 6 << 20),
  ])
}, 2 * MIN)

afterAll(async () => {
  for (const m of mounts) await unmountUnder(m).catch(() => undefined)
  await left.cleanup()
  await registry?.stop()
}, MIN)

/** A fresh 8 MiB tmpfs to hold a store. */
const smallDisk = async (name: string): Promise<string> => {
  const dir = join(base, name)
  mkdirSync(dir)
  const r = await run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", dir])
  if (r.exitCode !== 0) throw new Error(`mount tmpfs on ${dir} failed: ${r.stderr}`)
  mounts.push(dir)
  expect(await isMountPoint(dir)).toBe(true)
  return dir
}

const pull = (root: string, img: TestImage, extra: ReadonlyArray<string> = []) =>
  als(["pull", "--root", root, "--tls-verify=false", ...extra, refOf(registry.host, img)], { timeoutMs: 2 * MIN })

/** The disk-full failure: exit 5, a message naming the cause and the remedy, nothing partial. */
const expectNoSpace = async (root: string, r: AlsResult, img: TestImage, what: string) => {
  expect({ what, exit: r.exitCode }).toEqual({ what, exit: 5 })
  expect(r.stderr).toMatch(/no space left|disk .*full/i)
  expect(r.stderr).toMatch(/free space/i)
  expect(r.stderr).toContain(refOf(registry.host, img))
  const state = await expectConsistentStore(root, layerMap(img), what)
  expect({ what, staging: stagingEntries(root), locks: lockEntries(root) }).toEqual({ what, staging: [], locks: [] })
  const log = await readLog(root)
  const failed = eventsOf(log, "PullFailed")
  expect(failed.length).toBe(1)
  expect((failed[0]!.reason as { code: string }).code).toBe("NoSpace")
  expect((await verifyLog(root)).problems).toEqual([])
  return state
}

/** After a disk-full failure, deleting nothing: a small image still pulls. */
const expectStillUsable = async (root: string, what: string) => {
  const r = await pull(root, small)
  if (r.exitCode !== 0) throw new Error(`${what}: the small pull after the failure failed:\n${describeResult(r)}`)
  const state = await expectConsistentStore(root, layerMap(small), `${what}, then a small pull`)
  expect(state.committed).toContain(small.layers[0]!.digest)
  expect(stagingEntries(root)).toEqual([])
  const report = await verifyLog(root)
  expect({ what, ok: report.ok, problems: report.problems }).toEqual({ what, ok: true, problems: [] })
  await expectCleanAudit(root, `${what}, then a small pull`)
}

describe("a store on a full disk (8 MiB tmpfs)", () => {
  test("a 12 MiB blob: exit 5, says the disk is full, nothing partial, the store still works", async () => {
    const root = await smallDisk("blob")
    const r = await pull(root, bigBlob)
    console.log(`12 MiB blob on 8 MiB: ${r.stderr.trim().split("\n").at(-1)}`)
    const state = await expectNoSpace(root, r, bigBlob, "a 12 MiB blob")
    expect(state.committed).not.toContain(bigBlob.layers[1]!.digest)
    await expectStillUsable(root, "a 12 MiB blob")
  }, 2 * MIN)

  test("a tiny blob that extracts to 24 MiB: exit 5 during extraction, nothing partial", async () => {
    const root = await smallDisk("tree")
    expect(bigTree.layers[0]!.size).toBeLessThan(1 << 20)
    const r = await pull(root, bigTree)
    console.log(`24 MiB tree on 8 MiB: ${r.stderr.trim().split("\n").at(-1)}`)
    const state = await expectNoSpace(root, r, bigTree, "a 24 MiB tree")
    expect(state.committed).toEqual([])
    await expectStillUsable(root, "a 24 MiB tree")
  }, 2 * MIN)

  test("layers that fit are kept whole, the one that does not is absent (--jobs 1)", async () => {
    const root = await smallDisk("last")
    const r = await pull(root, lastTooBig, ["--jobs", "1"])
    console.log(`last layer too big: ${r.stderr.trim().split("\n").at(-1)}`)
    const state = await expectNoSpace(root, r, lastTooBig, "the last layer too big")
    expect(state.committed).toEqual([lastTooBig.layers[0]!.digest, lastTooBig.layers[1]!.digest].sort())
    expect(state.committed).not.toContain(lastTooBig.layers[2]!.digest)
    await expectStillUsable(root, "the last layer too big")
  }, 2 * MIN)

  test("a disk full to the last byte: exit 5 or 6 with a disk-full message, the log keeps only whole frames", async () => {
    const root = await smallDisk("brim")
    const init = await als(["init", "--root", root])
    expect(init.exitCode).toBe(0)
    // fill every byte left
    const filler = join(root, "filler")
    const fd = openSync(filler, "w")
    const chunk = Buffer.alloc(64 << 10, 1)
    try {
      for (let size = chunk.length; size > 0; ) {
        try {
          writeSync(fd, chunk, 0, size)
        } catch {
          size = size >> 1
        }
      }
    } finally {
      closeSync(fd)
    }
    // The log's last page has some room left: pull until even the log cannot grow (exit 6).
    const exits: number[] = []
    for (let i = 0; i < 12 && !exits.includes(6); i++) {
      const r = await pull(root, small)
      exits.push(r.exitCode)
      console.log(`full to the brim, pull ${i}: exit ${r.exitCode}: ${r.stderr.trim().split("\n").at(-1)}`)
      expect([5, 6]).toContain(r.exitCode)
      expect(r.stderr).toMatch(/no space left|disk .*full/i)
      expect(r.stderr).toMatch(/free space/i)
      // `als log` reads it, and a full check finds no partial frame
      await readLog(root)
      expect((await verifyLog(root)).problems).toEqual([])
      expect(stagingEntries(root)).toEqual([])
      expect(lockEntries(root)).toEqual([])
    }
    expect(exits).toContain(6)
    const state = await expectConsistentStore(root, layerMap(small), "full to the brim")
    expect(state.committed).toEqual([])
    // free the space: the store works again, with nothing to repair
    rmSync(filler)
    const again = await pull(root, small)
    if (again.exitCode !== 0) throw new Error(describeResult(again))
    const log = await readLog(root)
    expect(eventsOf(log, "LogRepaired")).toEqual([])
    expect(eventsOf(log, "PullCompleted").length).toBe(1)
    expect((await verifyLog(root)).ok).toBe(true)
  }, 2 * MIN)
})
