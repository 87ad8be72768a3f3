// Property tests of the zstd frame walker (src/extract/ZstdFrames.ts), which splits a blob into
// compressed frames for the decoder and drops skippable ones (zstd:chunked's TOC and footer).
// Properties: any bytes give frames or a ZstdFormatError, never another throw; the chunking
// changes nothing; on real streams it passes exactly the compressed frames, drops exactly the
// skippable ones, and a stream cut anywhere but between frames is refused as truncated.
import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import * as zlib from "node:zlib"
import { ZstdFormatError, ZstdFrameScanner } from "../../src/extract/ZstdFrames.ts"
import { chunked, FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

interface Walk {
  /** the frame bytes passed on, concatenated */
  readonly bytes: string
  /** offsets in `bytes` where a piece ended a frame */
  readonly frameEnds: ReadonlyArray<number>
  readonly frames: number
  readonly error: string | undefined
}

const walk = (pieces: ReadonlyArray<Uint8Array>, split = true): Walk => {
  const s = new ZstdFrameScanner(split)
  const out: Array<Uint8Array> = []
  const frameEnds: Array<number> = []
  let n = 0
  let error: string | undefined
  try {
    for (const p of pieces) {
      for (const piece of s.scan(p)) {
        out.push(piece.bytes.slice())
        n += piece.bytes.length
        if (piece.frameEnd) frameEnds.push(n)
      }
    }
    s.finish()
  } catch (e) {
    if (!(e instanceof ZstdFormatError)) throw e
    error = e.message
  }
  return { bytes: Buffer.concat(out).toString("hex"), frameEnds, frames: s.completedFrames, error }
}

const zstd = (b: Uint8Array): Buffer => (zlib as unknown as { zstdCompressSync: (b: Uint8Array) => Buffer }).zstdCompressSync(b)

const skippable = (data: Uint8Array, low: number): Buffer => {
  const h = Buffer.alloc(8)
  h.writeUInt32LE(0x184d2a50 | low, 0)
  h.writeUInt32LE(data.length, 4)
  return Buffer.concat([h, data])
}

interface Part {
  readonly kind: "frame" | "skip"
  readonly bytes: Buffer
  /** the uncompressed data of a frame */
  readonly data: Uint8Array
}

/** A stream as zstd:chunked writes it: compressed frames with skippable frames between them. */
const stream = fc.array(
  fc.oneof(
    fc.uint8Array({ maxLength: 600 }).map((d): Part => ({ kind: "frame", bytes: zstd(d), data: d })),
    fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.integer({ min: 0, max: 15 })).map(([d, low]): Part => ({
      kind: "skip",
      bytes: skippable(d, low),
      data: new Uint8Array(0),
    })),
  ),
  { maxLength: 6 },
)

const cuts = fc.array(fc.nat(), { maxLength: 6 })

describe("ZstdFrameScanner, fuzzed", () => {
  test("arbitrary bytes: frames or a ZstdFormatError, whatever the chunking", () => {
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      // a zstd magic first, so the walk gets past it into descriptors and block headers
      fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), b])),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), b])),
    )
    fc.assert(
      fc.property(input, cuts, fc.boolean(), (bytes, at, split) => {
        const whole = walk([bytes], split)
        const pieces = walk(chunked(bytes, at), split)
        expect(pieces.error).toBe(whole.error)
        // after an error the blob is refused as a whole, so what was passed on before it may differ
        if (whole.error === undefined) {
          expect(pieces.bytes).toBe(whole.bytes)
          expect(pieces.frames).toBe(whole.frames)
          if (split) expect(pieces.frameEnds).toEqual(whole.frameEnds)
        }
        // nothing is invented: what is passed on is a part of the input
        expect(Buffer.from(bytes).toString("hex").length).toBeGreaterThanOrEqual(whole.bytes.length)
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("real streams: exactly the compressed frames pass, skippable frames are dropped, whatever the chunking", () => {
    fc.assert(
      fc.property(stream, cuts, fc.boolean(), (parts, at, split) => {
        const blob = Buffer.concat(parts.map((p) => p.bytes))
        const frames = parts.filter((p) => p.kind === "frame")
        const w = walk(chunked(blob, at), split)
        expect(w.error).toBeUndefined()
        expect(w.bytes).toBe(Buffer.concat(frames.map((f) => f.bytes)).toString("hex"))
        expect(w.frames).toBe(frames.length)
        if (split) {
          let n = 0
          expect(w.frameEnds).toEqual(frames.map((f) => (n += f.bytes.length)))
        }
        // and a decoder gets back the data of every frame, in order
        const unzstd = (zlib as unknown as { zstdDecompressSync: (b: Uint8Array) => Buffer }).zstdDecompressSync
        expect(Buffer.from(unzstd(Buffer.from(w.bytes, "hex"))).toString("hex")).toBe(Buffer.concat(frames.map((f) => f.data)).toString("hex"))
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)

  test("real streams cut short: refused as truncated unless the cut falls between frames", () => {
    fc.assert(
      fc.property(stream.filter((p) => p.length > 0), fc.nat(), (parts, cutAt) => {
        const blob = Buffer.concat(parts.map((p) => p.bytes))
        const cut = cutAt % blob.length
        const boundaries = new Set<number>([0])
        let n = 0
        for (const p of parts) boundaries.add((n += p.bytes.length))
        const w = walk([blob.subarray(0, cut)])
        if (boundaries.has(cut)) expect(w.error).toBeUndefined()
        else expect(w.error).toContain("truncated")
      }),
      fuzzParams(),
    )
  }, FUZZ_TIMEOUT_MS)
})
