// The zstd frame walker: skippable frames cut out at any chunking, frames kept byte for byte,
// truncation and garbage detected.
import { describe, expect, test } from "bun:test"
import * as zlib from "node:zlib"
import { ZstdFormatError, ZstdFrameScanner } from "../../../src/extract/ZstdFrames.ts"

const zc = (b: Uint8Array) => (zlib as unknown as { zstdCompressSync: (b: Uint8Array) => Buffer }).zstdCompressSync(b)
const skippable = (data: string, low = 0x50) => {
  const h = Buffer.alloc(8)
  h.writeUInt32LE(0x184d2a00 | low, 0)
  h.writeUInt32LE(Buffer.byteLength(data), 4)
  return Buffer.concat([h, Buffer.from(data)])
}

const frames = [zc(Buffer.from("a".repeat(3000))), zc(Buffer.from("hello")), zc(new Uint8Array(0)), zc(Buffer.from("x".repeat(200000)))]
// skippable frames in front, between and at the end, some of them empty
const blob = Buffer.concat([
  skippable("head", 0x5f),
  frames[0],
  skippable(""),
  frames[1],
  frames[2],
  skippable("tail data"),
  frames[3],
  skippable("footer".repeat(10)),
])
const expected = Buffer.concat(frames)

const scanAll = (b: Uint8Array, sizes: () => number, split: boolean) => {
  const s = new ZstdFrameScanner(split)
  const out: Array<Uint8Array> = []
  let ends = 0
  for (let i = 0; i < b.length;) {
    const n = Math.min(sizes(), b.length - i)
    for (const p of s.scan(b.subarray(i, i + n))) {
      out.push(p.bytes)
      if (p.frameEnd) ends++
    }
    i += n
  }
  s.finish()
  return { bytes: Buffer.concat(out), ends, frames: s.completedFrames }
}

describe("ZstdFrameScanner", () => {
  for (const split of [true, false]) {
    test(`keeps compressed frames and drops skippable ones at any chunking (split=${split})`, () => {
      let seed = 7
      const rnd = () => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        return 1 + (seed % 13)
      }
      for (const sizes of [() => 1, () => 3, () => 4, () => 5, rnd, () => 65536]) {
        const r = scanAll(blob, sizes, split)
        expect(r.bytes.equals(expected)).toBe(true)
        expect(r.frames).toBe(4)
        expect(r.ends).toBe(split ? 4 : 0)
      }
    })
  }

  test("decoding the kept bytes gives the frames' content", () => {
    const r = scanAll(blob, () => 1000, false)
    const unzstd = (zlib as unknown as { zstdDecompressSync: (b: Uint8Array) => Buffer }).zstdDecompressSync
    expect(unzstd(r.bytes).length).toBe(3000 + 5 + 200000)
  })

  test("truncation inside a frame, a frame header, or a skippable frame is detected", () => {
    for (const cut of [blob.length - 1, 2, 4 + 8 + 3, 4 + 8 + 4 + 2]) {
      expect(() => scanAll(blob.subarray(0, cut), () => 7, true)).toThrow(ZstdFormatError)
    }
  })

  test("garbage between frames is detected", () => {
    const bad = Buffer.concat([frames[0], Buffer.from("garbage!"), frames[1]])
    expect(() => scanAll(bad, () => 100, false)).toThrow(/bad magic/)
  })
})
