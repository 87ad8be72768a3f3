/**
 * Walks the frame structure of a zstd stream (RFC 8878 §3) without decompressing it, so that
 * the caller can (1) drop skippable frames, which zstd:chunked uses for its TOC, tar-split and
 * footer, (2) hand each compressed frame to the decoder, and (3) tell a truncated or garbled
 * stream from a complete one.
 *
 * Why not let node:zlib do all of it: on Deno 2.9 its zstd decoder stops at the end of the first
 * frame (zstd:chunked has one frame per file) and yields nothing after a skippable frame, and on
 * both Bun and Deno a stream cut in the middle of a frame, or followed by garbage, decodes
 * "successfully" to a prefix of the data.
 */

export class ZstdFormatError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} (at byte ${offset} of the blob)`)
  }
}

/** A run of bytes from one compressed frame; `frameEnd` when it completes the frame. */
export interface FramePiece {
  readonly bytes: Uint8Array
  readonly frameEnd: boolean
}

const enum St { Magic, Descriptor, HeaderRest, BlockHeader, BlockBody, Checksum, SkipSize, SkipBody }

export class ZstdFrameScanner {
  /**
   * `split`: end a piece at every frame end (for decoders that stop after one frame).
   * Otherwise adjacent frames are passed as one piece, and pieces end only where a skippable
   * frame was cut out or the chunk ends: fewer, bigger decoder writes.
   */
  constructor(private readonly split = true) {}

  private st = St.Magic
  private readonly small = new Uint8Array(4)
  private smallFill = 0
  /** bytes still to pass in the current state (header rest, block body, checksum, skip body) */
  private need = 0
  private checksum = false
  private lastBlock = false
  private offset = 0
  private frames = 0

  /** Number of compressed (non-skippable) frames completed so far. */
  get completedFrames(): number {
    return this.frames
  }

  /** Splits `chunk` into pieces of compressed frames; skippable frames are left out. */
  scan(chunk: Uint8Array): Array<FramePiece> {
    const out: Array<FramePiece> = []
    let i = 0
    // start of the current run of frame bytes within chunk; a frame may continue from the last chunk
    let pieceStart = this.st >= St.Descriptor && this.st <= St.Checksum ? 0 : -1
    const n = chunk.length
    const flush = (end: number, frameEnd: boolean) => {
      if (pieceStart >= 0 && (end > pieceStart || frameEnd)) out.push({ bytes: chunk.subarray(pieceStart, end), frameEnd })
      pieceStart = -1
    }
    while (i < n) {
      switch (this.st) {
        case St.Magic:
        case St.SkipSize: {
          const take = Math.min(4 - this.smallFill, n - i)
          this.small.set(chunk.subarray(i, i + take), this.smallFill)
          const startOfMagic = i - this.smallFill
          this.smallFill += take
          i += take
          this.offset += take
          if (this.smallFill < 4) break
          this.smallFill = 0
          const s = this.small
          const v = (s[0] | (s[1] << 8) | (s[2] << 16) | (s[3] << 24)) >>> 0
          if (this.st === St.SkipSize) {
            this.need = v
            this.st = v > 0 ? St.SkipBody : St.Magic
            break
          }
          if (v === 0xfd2fb528) {
            if (startOfMagic < 0) {
              // the magic began in the previous chunk, which held its bytes back: emit them now
              out.push({ bytes: this.small.slice(0, -startOfMagic), frameEnd: false })
              pieceStart = 0
            } else if (pieceStart < 0) {
              pieceStart = startOfMagic
            } // else: continues the run of the previous frame (not split)
            this.st = St.Descriptor
          } else if ((v & 0xfffffff0) === 0x184d2a50) {
            if (pieceStart >= 0) flush(Math.max(0, startOfMagic), false)
            this.st = St.SkipSize
          } else {
            throw new ZstdFormatError("not a zstd frame (bad magic number): the blob is corrupted", this.offset - 4)
          }
          break
        }
        case St.Descriptor: {
          const d = chunk[i++]
          this.offset++
          if (d & 0x08) throw new ZstdFormatError("zstd frame header has the reserved bit set", this.offset - 1)
          const fcsFlag = d >> 6
          const single = (d >> 5) & 1
          this.checksum = ((d >> 2) & 1) === 1
          const didSize = [0, 1, 2, 4][d & 3]
          const fcsSize = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]
          this.need = (single ? 0 : 1) + didSize + fcsSize
          this.st = this.need > 0 ? St.HeaderRest : St.BlockHeader
          this.smallFill = 0
          break
        }
        case St.HeaderRest:
        case St.BlockBody:
        case St.Checksum: {
          const take = Math.min(this.need, n - i)
          i += take
          this.offset += take
          this.need -= take
          if (this.need > 0) break
          if (this.st === St.HeaderRest) this.st = St.BlockHeader
          else if (this.st === St.BlockBody) {
            if (!this.lastBlock) this.st = St.BlockHeader
            else if (this.checksum) {
              this.st = St.Checksum
              this.need = 4
            } else this.endFrame(flush, i)
          } else this.endFrame(flush, i)
          break
        }
        case St.BlockHeader: {
          const take = Math.min(3 - this.smallFill, n - i)
          this.small.set(chunk.subarray(i, i + take), this.smallFill)
          this.smallFill += take
          i += take
          this.offset += take
          if (this.smallFill < 3) break
          this.smallFill = 0
          const h = this.small[0] | (this.small[1] << 8) | (this.small[2] << 16)
          this.lastBlock = (h & 1) === 1
          const type = (h >> 1) & 3
          const size = h >>> 3
          if (type === 3) throw new ZstdFormatError("zstd block of reserved type: the blob is corrupted", this.offset - 3)
          this.need = type === 1 ? 1 : size
          if (this.need > 0) this.st = St.BlockBody
          else if (!this.lastBlock) this.st = St.BlockHeader
          else if (this.checksum) {
            this.st = St.Checksum
            this.need = 4
          } else this.endFrame(flush, i)
          break
        }
        case St.SkipBody: {
          const take = Math.min(this.need, n - i)
          i += take
          this.offset += take
          this.need -= take
          if (this.need === 0) this.st = St.Magic
          break
        }
      }
    }
    if (pieceStart >= 0) {
      // hold back a partial magic number: it may turn out to start a skippable frame
      flush(this.st === St.Magic ? n - this.smallFill : n, false)
    }
    return out
  }

  private endFrame(flush: (end: number, frameEnd: boolean) => void, end: number): void {
    if (this.split) flush(end, true)
    this.frames++
    this.st = St.Magic
    this.smallFill = 0
  }

  /** Throws unless the stream ended exactly between frames. */
  finish(): void {
    if (this.st !== St.Magic || this.smallFill !== 0) {
      throw new ZstdFormatError("the zstd stream is truncated", this.offset)
    }
  }
}
