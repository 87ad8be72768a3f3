/**
 * Blob bytes in, tar bytes out, with backpressure: `write` resolves when the decoder can take
 * more, so a slow consumer (the disk) slows the producer (the download) instead of buffering.
 * Output goes synchronously to `onOutput`; if that throws, the error rejects the pending or next
 * `write`/`end` unchanged. Decoder failures reject with `CorruptStream`.
 *
 * gzip and zstd run in node:zlib (its thread pool, so decompression overlaps with extraction).
 * zstd frames are walked by `ZstdFrameScanner` first: skippable frames are dropped, truncation is
 * caught, and on runtimes whose decoder stops after one frame (Deno) each frame gets its own
 * decoder.
 */
import * as zlib from "node:zlib"
import type { Transform } from "node:stream"
import type { Compression } from "./MediaType.ts"
import { ZstdFrameScanner, ZstdFormatError } from "./ZstdFrames.ts"

export class CorruptStream extends Error {
  constructor(readonly compression: Compression, message: string) {
    super(message)
  }
}

export interface Decoder {
  /** Resolves when more input may be written. */
  write(chunk: Uint8Array): Promise<void> | undefined
  /** Resolves once every output byte went through `onOutput`. */
  end(): Promise<void>
  destroy(): void
}

type Output = (chunk: Uint8Array) => void

// node:zlib's zstd API is newer than the pinned @types/node
const z = zlib as unknown as typeof zlib & {
  createZstdDecompress?: (o?: zlib.ZlibOptions) => Transform
  zstdCompressSync?: (b: Uint8Array) => Buffer
}

class Plain implements Decoder {
  constructor(private readonly onOutput: Output) {}
  write(chunk: Uint8Array): undefined {
    this.onOutput(chunk)
    return undefined
  }
  end(): Promise<void> {
    return Promise.resolve()
  }
  destroy(): void {}
}

/** One node:zlib Transform driven with explicit backpressure. */
class ZlibStream implements Decoder {
  private error: unknown
  private ended = false
  private readonly waiters = new Set<{ resolve: () => void; reject: (e: unknown) => void }>()

  constructor(private readonly t: Transform, private readonly compression: Compression, onOutput: Output) {
    // Pull mode on purpose: in flowing mode ("data") zlib calls us before it schedules its next
    // inflate step, so decompression and extraction would take turns; with "readable" the output
    // is handed over on a later tick while the thread pool already decompresses the next chunk.
    t.on("readable", () => {
      if (this.error !== undefined) return
      try {
        for (let c = t.read() as Uint8Array | null; c !== null; c = t.read() as Uint8Array | null) {
          onOutput(c)
          if (this.error !== undefined) return
        }
      } catch (e) {
        this.fail(e)
      }
    })
    t.on("error", (e: Error) =>
      this.fail(new CorruptStream(compression, `the ${compression} stream is corrupt: ${e.message}`)))
    t.on("drain", () => this.wake())
    t.on("end", () => {
      this.ended = true
      this.wake()
    })
  }

  private fail(e: unknown): void {
    if (this.error !== undefined) return
    this.error = e
    this.t.destroy()
    for (const w of this.waiters) w.reject(e)
    this.waiters.clear()
  }

  private wake(): void {
    for (const w of this.waiters) w.resolve()
    this.waiters.clear()
  }

  private wait(): Promise<void> {
    return new Promise((resolve, reject) => this.waiters.add({ resolve, reject }))
  }

  write(chunk: Uint8Array): Promise<void> | undefined {
    if (this.error !== undefined) return Promise.reject(this.error)
    if (this.t.write(chunk)) return undefined
    // "drain" (or a failure) will come; check the error again after waking
    return this.wait().then(() => {
      if (this.error !== undefined) throw this.error
    })
  }

  async end(): Promise<void> {
    if (this.error !== undefined) throw this.error
    this.t.end()
    while (!this.ended) {
      await this.wait()
      if (this.error !== undefined) throw this.error
    }
    if (this.error !== undefined) throw this.error
  }

  destroy(): void {
    this.error ??= new Error("destroyed")
    this.t.destroy()
    this.wake()
  }
}

/** Bigger output chunks than the 16 KiB default: fewer thread-pool round trips and callbacks;
 * the readable buffer lets zlib run a few chunks ahead of the extraction (bounded memory). */
const zlibOptions = { chunkSize: 128 * 1024, readableHighWaterMark: 512 * 1024 } as zlib.ZlibOptions

let multiFrame: Promise<boolean> | undefined

/** Whether this runtime's streaming zstd decoder continues past the first frame. */
const zstdDecodesManyFrames = (): Promise<boolean> =>
  multiFrame ??= new Promise<boolean>((resolve) => {
    const frame = z.zstdCompressSync?.(Buffer.from("ok"))
    if (frame === undefined || z.createZstdDecompress === undefined) return resolve(false)
    const d = z.createZstdDecompress()
    let n = 0
    d.on("data", (c: Uint8Array) => (n += c.length))
    d.on("error", () => resolve(false))
    d.on("end", () => resolve(n === 4))
    d.end(Buffer.concat([frame, frame]))
  })

class Zstd implements Decoder {
  private readonly scanner: ZstdFrameScanner
  private current: ZlibStream | undefined
  private destroyed = false

  constructor(private readonly onOutput: Output, private readonly manyFrames: boolean) {
    this.scanner = new ZstdFrameScanner(!manyFrames)
  }

  private decoder(): ZlibStream {
    return this.current ??= new ZlibStream(z.createZstdDecompress!(zlibOptions), "zstd", this.onOutput)
  }

  async write(chunk: Uint8Array): Promise<void> {
    let pieces
    try {
      pieces = this.scanner.scan(chunk)
    } catch (e) {
      if (e instanceof ZstdFormatError) throw new CorruptStream("zstd", e.message)
      throw e
    }
    for (const p of pieces) {
      if (this.destroyed) return
      if (p.bytes.length > 0) await this.decoder().write(p.bytes)
      if (p.frameEnd && !this.manyFrames) {
        const d = this.decoder()
        this.current = undefined
        await d.end()
      }
    }
  }

  async end(): Promise<void> {
    try {
      this.scanner.finish()
    } catch (e) {
      if (e instanceof ZstdFormatError) throw new CorruptStream("zstd", e.message)
      throw e
    }
    if (this.scanner.completedFrames === 0) throw new CorruptStream("zstd", "the zstd stream has no frame")
    const d = this.current
    this.current = undefined
    if (d) await d.end()
  }

  destroy(): void {
    this.destroyed = true
    this.current?.destroy()
  }
}

export const makeDecoder = async (compression: Compression, onOutput: Output): Promise<Decoder> => {
  switch (compression) {
    case "none":
      return new Plain(onOutput)
    case "gzip":
      return new ZlibStream(zlib.createGunzip(zlibOptions), "gzip", onOutput)
    case "zstd":
      if (z.createZstdDecompress === undefined) {
        throw new CorruptStream("zstd", "this runtime's node:zlib has no zstd decoder")
      }
      return new Zstd(onOutput, await zstdDecodesManyFrames())
  }
}
