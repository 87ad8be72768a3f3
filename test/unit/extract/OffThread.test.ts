// A layer's ingest on a thread of its own (src/extract/IngestOffThread.ts): the same result and
// tree as in line, typed failures across the thread, bounded memory, and stopping that leaves
// nothing writing into staging.
import { describe, expect, test } from "bun:test"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { LayerIoError, LayerRejected } from "../../../src/extract/errors.ts"
import { ingestOffThread, ingestThreads, IN_FLIGHT_BYTES, OFF_THREAD_MIN_BYTES } from "../../../src/extract/IngestOffThread.ts"
import { ingestStream, type IngestInput } from "../../../src/extract/IngestStream.ts"
import { ingestLayer } from "../../../src/extract/LayerIngest.ts"
import { Syscalls } from "../../../src/sys/Syscalls.ts"
import { REPO_ROOT } from "../../lib/als.ts"
import { layerBlob, rawTar, type RawEntry, sha256, type TestBlob } from "../../lib/tars.ts"
import { type TreeEntry, walkTree } from "../../lib/tree.ts"
import { inputFor, type Sandbox, sys, withSandbox } from "./harness.ts"

const T = 1650000000
const entries: ReadonlyArray<RawEntry> = [
  { name: "usr/", type: "dir", mode: 0o755, mtime: T },
  { name: "usr/bin/su", content: "su binary\n", mode: 0o4755, mtime: T },
  { name: "usr/bin/su2", type: "link", linkname: "usr/bin/su", mode: 0o4755, mtime: T },
  { name: "lib", type: "symlink", linkname: "usr/lib", uid: 12, gid: 34, mtime: T },
  { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666, mtime: T },
  { name: "run/fifo", type: "fifo", mode: 0o600, mtime: T },
  { name: "etc/", type: "dir", mode: 0o755, mtime: T, xattrs: { "user.dir": "1" } },
  { name: "etc/.wh..wh..opq", content: "", mtime: T },
  { name: "var/.wh.cache", content: "", mtime: T },
  { name: "big", content: crypto.randomBytes(3 * 1024 * 1024), mode: 0o644, mtime: T },
]

/** A tree without the times that are the time of extraction: implicit directories and whiteouts. */
const explicit = new Set(entries.filter((e) => e.type === "dir").map((e) => String(e.name).replace(/\/$/, "")))
const comparable = (tree: ReadonlyArray<TreeEntry>) =>
  tree.map((e) => (e.type === "dir" && !explicit.has(e.path)) || e.type === "char" && e.path.includes("cache") ? { ...e, mtime: "" } : e)

const inputOf = (blob: TestBlob, box: Sandbox, over: Partial<IngestInput> = {}): IngestInput => inputFor(blob, box, over)

const onThread = (input: IngestInput) => {
  const t = ingestOffThread(input)
  if (t === undefined) throw new Error("no ingest thread could start")
  return t
}

/** This process's open file descriptors that point into `dir`. */
const openInto = (dir: string): string[] =>
  fs.readdirSync("/proc/self/fd").flatMap((fd) => {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`)
      return target.startsWith(dir) ? [target] : []
    } catch {
      return []
    }
  })

const settle = <A>(p: Promise<A>): Promise<{ ok: true; value: A } | { ok: false; error: unknown }> =>
  p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false as const, error }))

describe("ingest on a thread of its own", () => {
  for (const c of ["gzip", "zstd", "none"] as const) {
    test(`${c}: the same result and the same tree as in line`, async () => {
      const blob = layerBlob(rawTar(entries), c)
      await withSandbox(async (inline) => {
        await withSandbox(async (threaded) => {
          const before = ingestThreads().started
          const a = await ingestStream(inputOf(blob, inline), sys, new AbortController().signal)
          const b = await onThread(inputOf(blob, threaded)).result
          expect(ingestThreads().started).toBe(before + 1)
          expect(b).toEqual(a)
          expect(b.digest).toBe(blob.digest)
          expect(b.diffId).toBe(blob.diffId)
          expect(fs.readFileSync(threaded.blobPath).equals(blob.blob)).toBe(true)
          expect(comparable(walkTree(threaded.diffDir, sys))).toEqual(comparable(walkTree(inline.diffDir, sys)))
          threaded.assertUntouched()
        })
      })
    })
  }

  test("typed failures cross the thread with their code, entry and message", async () => {
    await withSandbox(async (box) => {
      const r = await settle(onThread(inputOf(layerBlob(rawTar([{ name: "../x", content: "pwn" }])), box)).result)
      expect(r.ok).toBe(false)
      const e = (r as { error: unknown }).error
      expect(e).toBeInstanceOf(LayerRejected)
      expect(e).toMatchObject({ _tag: "LayerRejected", code: "UnsafeEntry", entry: "../x" })
      expect((e as Error).message).toContain("layer sha256:")
      box.assertUntouched()
    })
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar(entries), "gzip")
      const r = await settle(onThread(inputOf(blob, box, { diffId: sha256(new Uint8Array(1)) })).result)
      expect((r as { error: unknown }).error).toMatchObject({ _tag: "LayerRejected", code: "DiffIdMismatch" })
    })
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar(entries), "gzip")
      const r = await settle(onThread(inputOf(blob, box, { digest: sha256(new Uint8Array(2)) })).result)
      expect((r as { error: unknown }).error).toMatchObject({ _tag: "LayerRejected", code: "BlobDigestMismatch" })
    })
    await withSandbox(async (box) => {
      // the blob matches its digest, but its gzip stream is cut: the image is broken
      const whole = layerBlob(rawTar(entries), "gzip").blob
      const cut = whole.subarray(0, whole.length - 100)
      const blob = { ...layerBlob(rawTar(entries), "gzip"), blob: cut, digest: sha256(cut), size: cut.length }
      const r = await settle(onThread(inputOf(blob, box)).result)
      expect((r as { error: unknown }).error).toMatchObject({ _tag: "LayerRejected", code: "CorruptData" })
    })
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar(entries), "gzip")
      const gone = path.join(box.root, "stage", "no-such-dir")
      const r = await settle(onThread(inputOf(blob, box, { diffDir: gone })).result)
      const e = (r as { error: unknown }).error
      expect(e).toBeInstanceOf(LayerIoError)
      expect(e).toMatchObject({ _tag: "LayerIoError", code: "Io" })
    })
  })

  test("a blob longer than declared is refused, and the source is read no further than one chunk past its size", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar([{ name: "f", content: "z".repeat(1 << 20) }]), "none")
      let pulled = 0
      async function* source() {
        for (;;) {
          pulled += 4096
          yield new Uint8Array(4096)
        }
      }
      const r = await settle(onThread(inputOf(blob, box, { source: source(), size: 10000 })).result)
      expect((r as { error: unknown }).error).toMatchObject({ code: "BlobSizeMismatch" })
      expect(pulled).toBeLessThanOrEqual(10000 + 4096)
      expect(fs.statSync(box.blobPath).size).toBeLessThanOrEqual(10000)
    })
  })

  test("backpressure: the source runs at most IN_FLIGHT_BYTES and a chunk ahead of what the thread wrote", async () => {
    await withSandbox(async (box) => {
      const content = crypto.randomBytes(24 * 1024 * 1024)
      const blob = layerBlob(rawTar([{ name: "r", content }]), "none")
      const CHUNK = 256 * 1024
      let maxAhead = 0
      async function* source() {
        for (let i = 0; i < blob.blob.length; i += CHUNK) {
          const written = fs.existsSync(box.blobPath) ? fs.statSync(box.blobPath).size : 0
          maxAhead = Math.max(maxAhead, i - written)
          yield blob.blob.subarray(i, i + CHUNK)
        }
      }
      const r = await onThread(inputOf(blob, box, { source: source() })).result
      expect(r.bytes).toBe(content.length)
      console.log(`[extract] off-thread backpressure: at most ${(maxAhead / 1024).toFixed(0)} KiB read ahead of the blob file`)
      expect(maxAhead).toBeGreaterThan(0)
      expect(maxAhead).toBeLessThanOrEqual(IN_FLIGHT_BYTES + 2 * CHUNK)
    })
  })

  test("a source that fails: its own error, once the thread closed every file it had open", async () => {
    class Gone extends Error {
      readonly _tag = "Gone"
    }
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar(entries), "gzip")
      async function* source() {
        yield blob.blob.subarray(0, 200_000)
        throw new Gone("the registry went away")
      }
      const threads = ingestThreads().alive
      const r = await settle(onThread(inputOf(blob, box, { source: source() })).result)
      expect((r as { error: unknown }).error).toBeInstanceOf(Gone)
      expect(openInto(box.root)).toEqual([])
      expect(ingestThreads().alive).toBe(threads)
    })
  })

  test("stop mid-layer: resolves once the thread stopped writing; staging removed stays removed", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar(entries), "none")
      let pulled = 0
      async function* source() {
        for (let i = 0; ; i = (i + 4096) % blob.blob.length) {
          pulled += 4096
          await Bun.sleep(1)
          yield blob.blob.subarray(i, i + 4096)
        }
      }
      const threads = ingestThreads().alive
      const t = onThread(inputOf(blob, box, { source: source(), size: 2 ** 40 }))
      while (pulled < 64 * 1024) await Bun.sleep(5)
      await t.stop()
      expect(openInto(box.root)).toEqual([])
      expect(ingestThreads().alive).toBe(threads)
      fs.rmSync(path.join(box.root, "stage"), { recursive: true, force: true })
      const at = pulled
      await Bun.sleep(200)
      expect(fs.existsSync(path.join(box.root, "stage"))).toBe(false)
      expect(pulled - at).toBeLessThanOrEqual(4096)
      // the caller no longer awaits it, but it settles as interrupted
      expect((await settle(t.result)).ok).toBe(false)
    })
  })

  test("ingestLayer: in line by default; ALS_INGEST_THREADS=1 gives a layer of OFF_THREAD_MIN_BYTES or more a thread, not a smaller one", async () => {
    const run = (blob: TestBlob, box: Sandbox) =>
      Effect.runPromise(ingestLayer(inputOf(blob, box)).pipe(Effect.provideService(Syscalls, sys)))
    const big = layerBlob(rawTar([{ name: "big", content: crypto.randomBytes(OFF_THREAD_MIN_BYTES), mtime: T }]), "none")
    const small = layerBlob(rawTar(entries), "none")
    const threadsFor = async (blob: TestBlob, knob: string | undefined) => {
      const saved = process.env.ALS_INGEST_THREADS
      if (knob === undefined) delete process.env.ALS_INGEST_THREADS
      else process.env.ALS_INGEST_THREADS = knob
      try {
        return await withSandbox(async (box) => {
          const before = ingestThreads().started
          const r = await run(blob, box)
          expect(r.digest).toBe(blob.digest)
          return ingestThreads().started - before
        })
      } finally {
        if (saved === undefined) delete process.env.ALS_INGEST_THREADS
        else process.env.ALS_INGEST_THREADS = saved
      }
    }
    expect(await threadsFor(big, undefined)).toBe(0)
    expect(await threadsFor(big, "0")).toBe(0)
    expect(await threadsFor(big, "1")).toBe(1)
    expect(await threadsFor(small, "1")).toBe(0)
    expect(await threadsFor(small, "all")).toBe(1)
  })

  test("the ingest thread's modules load no Effect runtime (its start cost doubled with it)", () => {
    const r = Bun.spawnSync(
      [
        process.execPath,
        "-e",
        // the module listens for the main thread's messages: unset that, and the process ends
        'await import("./src/extract/IngestWorker.ts"); self.onmessage = null; console.log(JSON.stringify(Object.keys(require.cache)))',
      ],
      { cwd: REPO_ROOT, stderr: "pipe", stdout: "pipe" },
    )
    expect(r.exitCode).toBe(0)
    const loaded = JSON.parse(r.stdout.toString()) as string[]
    expect(loaded.some((m) => m.endsWith("/src/extract/TarParser.ts"))).toBe(true)
    expect(loaded.filter((m) => m.includes("/node_modules/effect/"))).toEqual([])
  })

  test("the hostile, verification and TOC suites pass with every layer on an ingest thread", () => {
    const r = Bun.spawnSync(
      [
        process.execPath,
        "test",
        "test/unit/extract/Hostile.test.ts",
        "test/unit/extract/Verify.test.ts",
        "test/unit/extract/Toc.test.ts",
        "test/unit/extract/Roundtrip.test.ts",
      ],
      { cwd: REPO_ROOT, stderr: "pipe", stdout: "pipe", env: { ...process.env, ALS_INGEST_THREADS: "all" } },
    )
    const out = r.stderr.toString()
    if (r.exitCode !== 0) console.log(out.split("\n").filter((l) => /\(fail\)|error/.test(l)).join("\n"))
    expect(r.exitCode).toBe(0)
    expect(out).toMatch(/\b0 fail\b/)
    expect(out).toMatch(/\b[1-9][0-9]+ pass\b/)
  }, 240_000)
})
