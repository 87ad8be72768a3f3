// The blob a lazily served layer's completion pulls (PartialBlob.ts): the bytes kept while the
// layer was served (its TOC, the chunks reads fetched) are read back from the sparse file, only
// the rest is asked of the source, in bounded Range requests; the stream is the whole blob, from
// any offset (the pull's resume), and a break in a fetch is the source's own error, so the
// pull's resume logic (resumableBlob) resumes it. Kept bytes that are not the registry's come out
// as they are: the pull's digest check catches them (LazySupply then pulls the whole blob).

import { afterAll, expect, test } from "bun:test"
import { createHash, randomBytes } from "node:crypto"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Digest } from "../../../src/domain/Digest.ts"
import { makePartialBlob } from "../../../src/lazy/PartialBlob.ts"
import { RegistryError } from "../../../src/registry/RegistryError.ts"
import type { ImageSource, SourceBlob } from "../../../src/workflows/ImageSource.ts"
import { resumableBlob } from "../../../src/workflows/ResumableBlob.ts"

const made: string[] = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "lazy-partial-"))
  made.push(d)
  return d
}
afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

const SIZE = 30000
const blob = new Uint8Array(randomBytes(SIZE))
const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}` as Digest
const other = `sha256:${"c".repeat(64)}` as Digest

interface Asked {
  readonly offset: number
  readonly length: number | undefined
}

/** the registry: answers in 1000-byte pieces; `breakAt` ends one answer with a transient error there */
const sourceOf = (asked: Asked[], breakAt?: { at: number }): ImageSource => ({
  name: "example.test/x:1",
  display: "example.test/x:1",
  resolve: () => Effect.die("not used"),
  aliases: () => [],
  blob: (d, o) =>
    Effect.sync((): SourceBlob => {
      const offset = o?.offset ?? 0
      asked.push({ offset, length: o?.length })
      const end = o?.length !== undefined ? Math.min(SIZE, offset + o.length) : SIZE
      const bytes = d === digest ? blob : new Uint8Array(10)
      async function* body() {
        for (let p = offset; p < end; p += 1000) {
          if (breakAt && p >= breakAt.at) {
            breakAt = undefined
            throw new RegistryError({ code: "Timeout", ref: "example.test/x:1", message: "the body stalled" })
          }
          yield bytes.subarray(p, Math.min(end, p + 1000))
        }
      }
      return { size: SIZE, body: body() }
    }),
})

const drain = async (body: AsyncIterable<Uint8Array>) => {
  const parts: Uint8Array[] = []
  for await (const c of body) parts.push(c)
  return Buffer.concat(parts)
}

const keepSome = (p: ReturnType<typeof makePartialBlob>) => {
  p.keep(1000, blob.subarray(1000, 3000))
  p.keep(5000, blob.subarray(5000, 5100))
  p.keep(8000, blob.subarray(8000, 20000))
}

test("the completion's blob: kept ranges read back, only the rest fetched, in bounded requests; the stream is the whole blob", async () => {
  const asked: Asked[] = []
  const p = makePartialBlob(path.join(tmp(), "blob.partial"), digest, SIZE, { step: { mergeBelow: 200, maxRequest: 4000 } })
  keepSome(p)
  const src = p.completionSource(sourceOf(asked))
  const got = await drain((await Effect.runPromise(src.blob(digest))).body)
  expect(got.equals(Buffer.from(blob))).toBe(true)
  // 0-1000, then 3000-8000 with the short island 5000-5100 fetched again (4000 at most), then the tail
  expect(asked).toEqual([
    { offset: 0, length: 1000 },
    { offset: 3000, length: 4000 },
    { offset: 7000, length: 1000 },
    { offset: 20000, length: 4000 },
    { offset: 24000, length: 4000 },
    { offset: 28000, length: 2000 },
  ])
  expect(p.stats).toEqual({ reused: 14000, fetched: 16000, requests: 6 })
  // other blobs, and bounded reads, pass through untouched
  asked.length = 0
  await drain((await Effect.runPromise(src.blob(other))).body)
  await drain((await Effect.runPromise(src.blob(digest, { offset: 10, length: 5 }))).body)
  expect(asked).toEqual([{ offset: 0, length: undefined }, { offset: 10, length: 5 }])
  p.remove()
  expect(fs.existsSync(p.path)).toBe(false)
})

test("from an offset (a resumed pull), and through resumableBlob: a break in a fetch is resumed where it stopped; the bytes are the blob's", async () => {
  const asked: Asked[] = []
  const p = makePartialBlob(path.join(tmp(), "blob.partial"), digest, SIZE, { step: { mergeBelow: 200, maxRequest: 4000 } })
  keepSome(p)
  const src = p.completionSource(sourceOf(asked))
  const tail = await drain((await Effect.runPromise(src.blob(digest, { offset: 9000 }))).body)
  expect(tail.equals(Buffer.from(blob.subarray(9000)))).toBe(true)

  asked.length = 0
  const breaking = p.completionSource(sourceOf(asked, { at: 22000 }))
  const body = await Effect.runPromise(resumableBlob(digest, SIZE, (offset) => breaking.blob(digest, { offset }), {
    attempts: 3,
    backoffMs: 1,
    timeoutMs: 10_000,
  }))
  const whole = await drain(body)
  expect(createHash("sha256").update(whole).digest("hex")).toBe(digest.slice(7))
  // the break at 22000 (inside the request for 20000-24000): asked again from 22000, bounded
  expect(asked.some((a) => a.offset === 22000 && a.length === 4000)).toBe(true)
  expect(asked.every((a) => a.length !== undefined)).toBe(true)
  p.remove()
})

test("kept bytes that are not the registry's come out as kept (the pull's digest check is what catches them); a removed partial blob passes everything through", async () => {
  const asked: Asked[] = []
  const p = makePartialBlob(path.join(tmp(), "blob.partial"), digest, SIZE)
  const wrong = Buffer.from(blob.subarray(0, 4096))
  wrong[100]! ^= 1
  p.keep(0, wrong)
  // out of bounds: ignored
  p.keep(SIZE - 10, new Uint8Array(20))
  expect(p.ranges.list()).toEqual([{ start: 0, end: 4096 }])
  const src = p.completionSource(sourceOf(asked))
  const got = await drain((await Effect.runPromise(src.blob(digest))).body)
  expect(got.length).toBe(SIZE)
  expect(createHash("sha256").update(got).digest("hex")).not.toBe(digest.slice(7))
  expect(got[100]).toBe(wrong[100]!)
  p.remove()
  asked.length = 0
  const plain = await drain((await Effect.runPromise(src.blob(digest))).body)
  expect(plain.equals(Buffer.from(blob))).toBe(true)
  expect(asked).toEqual([{ offset: 0, length: undefined }])
})
