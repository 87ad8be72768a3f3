// Bounded Range reads (RangedBlob.ts): a lazy chunk read asks for exactly its bytes
// (`bytes=a-b`) and keeps at most that many, whatever the registry sends: a 200 with the whole
// blob, or a 206 running past the end asked for. The body is not read past the bound (the
// transfer is cancelled), so a registry that ignores the bound costs little.

import { expect, test } from "bun:test"
import { Either } from "effect"
import type { Digest } from "../../../src/domain/Digest.ts"
import type { Sent } from "../../../src/registry/Http.ts"
import { blobBody, rangeAnswer, rangeHeaders } from "../../../src/registry/RangedBlob.ts"
import { defaultRegistryConfig } from "../../../src/registry/RegistryConfig.ts"

const DIGEST = `sha256:${"a".repeat(64)}` as Digest
const blob = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7) & 0xff)

/** an answer whose body is `bytes` in 16 KiB pieces, counting how many pieces were pulled */
const answer = (status: number, bytes: Uint8Array, headers: Record<string, string> = {}) => {
  let pulled = 0
  let at = 0
  const body = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (at >= bytes.length) return ctl.close()
      const piece = bytes.subarray(at, at + (16 << 10))
      at += piece.length
      pulled += piece.length
      ctl.enqueue(piece)
    },
  }, { highWaterMark: 0 })
  const sent: Sent = {
    response: new Response(body, { status, headers }),
    url: "http://127.0.0.1:1/v2/x/blobs/" + DIGEST,
    controller: new AbortController(),
    cfg: defaultRegistryConfig,
  }
  return { sent, pulled: () => pulled }
}

const collect = async (it: AsyncIterable<Uint8Array>) => {
  const parts: Uint8Array[] = []
  for await (const c of it) parts.push(c)
  return new Uint8Array(Buffer.concat(parts))
}

test("the Range header: open-ended without a length, exactly [offset, offset+length) with one, none from 0 unbounded", () => {
  expect(rangeHeaders(0)).toEqual({})
  expect(rangeHeaders(100)).toEqual({ range: "bytes=100-" })
  expect(rangeHeaders(100, 50)).toEqual({ range: "bytes=100-149" })
  expect(rangeHeaders(0, 1)).toEqual({ range: "bytes=0-0" })
})

test("a 206 for exactly the range asked: the body is those bytes", async () => {
  const { sent } = answer(206, blob.subarray(1000, 1500), { "content-range": `bytes 1000-1499/${blob.length}` })
  const a = rangeAnswer("test", DIGEST, sent, 1000)
  expect(Either.isRight(a)).toBe(true)
  const got = await collect(blobBody("test", DIGEST, sent, Either.getOrThrow(a).skip, 60_000, 500))
  expect(got).toEqual(blob.subarray(1000, 1500))
})

test("a registry that ignores the bound (200 with the whole blob): the body is cut at the bound and the rest is never read", async () => {
  const { sent, pulled } = answer(200, blob, { "content-length": String(blob.length) })
  const a = Either.getOrThrow(rangeAnswer("test", DIGEST, sent, 300_000))
  expect(a.skip).toBe(300_000)
  const got = await collect(blobBody("test", DIGEST, sent, a.skip, 60_000, 5000))
  expect(got).toEqual(blob.subarray(300_000, 305_000))
  // read up to the piece holding the bound (plus what the stream had queued), not the blob's rest
  expect(pulled()).toBeLessThan(305_000 + (64 << 10))
})

test("a 206 that runs past the end asked for: cut at the bound", async () => {
  const { sent, pulled } = answer(206, blob.subarray(4096), { "content-range": `bytes 4096-${blob.length - 1}/${blob.length}` })
  const a = Either.getOrThrow(rangeAnswer("test", DIGEST, sent, 4096))
  const got = await collect(blobBody("test", DIGEST, sent, a.skip, 60_000, 100))
  expect(got).toEqual(blob.subarray(4096, 4196))
  expect(pulled()).toBeLessThanOrEqual(64 << 10)
})

test("no bound: the whole rest of the body (resumed pulls are unchanged)", async () => {
  const { sent } = answer(206, blob.subarray(blob.length - 70_000), { "content-range": `bytes ${blob.length - 70_000}-${blob.length - 1}/${blob.length}` })
  const a = Either.getOrThrow(rangeAnswer("test", DIGEST, sent, blob.length - 70_000))
  expect((await collect(blobBody("test", DIGEST, sent, a.skip, 60_000))).length).toBe(70_000)
})
