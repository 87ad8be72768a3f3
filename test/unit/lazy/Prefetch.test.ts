// eStargz's prefetch list (TocModel `prefetch`, Prefetch.ts): the files before the
// `.prefetch.landmark` entry are fetched first, chunk by chunk in TOC order, and nothing else;
// `.no.prefetch.landmark` (or no landmark) means none; zstd:chunked has no list.

import { afterAll, expect, test } from "bun:test"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import tar from "tar-stream"
import type { Digest } from "../../../src/domain/Digest.ts"
import { fileRangeSource, makeChunkReader, type RangeSource } from "../../../src/lazy/Chunks.ts"
import { prefetchFiles } from "../../../src/lazy/Prefetch.ts"
import { fetchToc } from "../../../src/lazy/TocFetch.ts"
import { nodeAt, parseToc, type TocFile } from "../../../src/lazy/TocModel.ts"
import { toEstargz } from "../../lib/estargz.ts"

const made: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "lazy-prefetch-"))
  made.push(d)
  return d
}
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

const files: Record<string, Uint8Array> = {
  "usr/lib/libbig.so": new Uint8Array(randomBytes(200_000)),
  "etc/motd": new TextEncoder().encode("hello\n"),
  "bin/app": new Uint8Array(randomBytes(150_000)),
  "usr/share/doc/readme": new TextEncoder().encode("docs\n"),
}

const plainTar = async (): Promise<Uint8Array> => {
  const pack = tar.pack()
  const parts: Buffer[] = []
  pack.on("data", (c: unknown) => void parts.push(c as Buffer))
  const done = new Promise<void>((r) => pack.on("end", () => r()))
  const dirs = new Set<string>()
  for (const [name, body] of Object.entries(files)) {
    const comps = name.split("/")
    for (let i = 1; i < comps.length; i++) {
      const d = comps.slice(0, i).join("/")
      if (!dirs.has(d)) pack.entry({ name: `${d}/`, type: "directory", mode: 0o755 })
      dirs.add(d)
    }
    pack.entry({ name, type: "file", mode: 0o644 }, Buffer.from(body))
  }
  pack.finalize()
  await done
  return new Uint8Array(Buffer.concat(parts))
}

/** the layer's model, read back from its blob as als serve reads it */
const modelOf = async (prefetch: ReadonlyArray<string> | undefined) => {
  const l = toEstargz(await plainTar(), 32 * 1024, prefetch)
  const file = path.join(tmp(), "blob")
  fs.writeFileSync(file, l.blob)
  const { model } = await fetchToc(fileRangeSource(file), l.size, { kind: "estargz", digest: l.tocDigest as Digest })
  return { model, file }
}

test("the files before .prefetch.landmark are the prefetch list, in TOC order; the landmark stays a file of the tree", async () => {
  const { model } = await modelOf(["bin/app", "etc/motd"])
  // the converter moves them to the front in tar order: etc/motd was before bin/app
  expect(model.prefetch.map((f) => f)).toEqual([nodeAt(model, "etc/motd") as TocFile, nodeAt(model, "bin/app") as TocFile])
  expect(nodeAt(model, ".prefetch.landmark")).toMatchObject({ kind: "file", size: 1 })
  // every file is still in the tree
  for (const name of Object.keys(files)) expect((nodeAt(model, name) as TocFile).size).toBe(files[name]!.length)
})

test("no prefetch list: .no.prefetch.landmark, no landmark, and zstd:chunked all give none", async () => {
  const none = await modelOf([])
  expect(nodeAt(none.model, ".no.prefetch.landmark")).toMatchObject({ kind: "file", size: 1 })
  expect(none.model.prefetch).toEqual([])
  expect((await modelOf(undefined)).model.prefetch).toEqual([])
  // a zstd:chunked TOC whose first file is named like the landmark: not a prefetch list there
  const zstd = parseToc("zstd:chunked", JSON.stringify({
    version: 1,
    entries: [
      { type: "reg", name: "a", size: 1, digest: `sha256:${"1".repeat(64)}`, offset: 10, endOffset: 20 },
      { type: "reg", name: ".prefetch.landmark", size: 1, digest: `sha256:${"2".repeat(64)}`, offset: 20, endOffset: 30 },
    ],
  }), 100, 30)
  expect(zstd.prefetch).toEqual([])
})

test("the background completion fetches the prefetch files' chunks first, in order, and only those", async () => {
  const { model, file } = await modelOf(["bin/app", "etc/motd"])
  const reads: number[] = []
  const local = fileRangeSource(file)
  const counting: RangeSource = {
    read: (offset, length) => {
      reads.push(offset)
      return local.read(offset, length)
    },
  }
  const reader = makeChunkReader("estargz", counting, tmp())
  const r = await prefetchFiles(reader, model.prefetch)
  const want = model.prefetch.flatMap((f) => f.chunks.map((c) => c.blobOffset))
  expect(want.length).toBe(1 + Math.ceil(150_000 / (32 * 1024)))
  expect(reads).toEqual(want)
  expect(r).toEqual({ chunks: want.length, failed: 0 })
  // then in the cache: reading bin/app fetches nothing
  const app = nodeAt(model, "bin/app") as TocFile
  expect(Buffer.from(await reader.read(app, 0, app.size)).equals(Buffer.from(files["bin/app"]!))).toBe(true)
  expect(reads.length).toBe(want.length)
  // stopped early (the layer completed): no more fetches
  const fresh = makeChunkReader("estargz", counting, tmp())
  reads.length = 0
  expect(await prefetchFiles(fresh, model.prefetch, () => true)).toEqual({ chunks: 0, failed: 0 })
  expect(reads).toEqual([])
})
