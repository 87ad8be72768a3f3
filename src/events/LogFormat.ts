/**
 * The byte layout of `<root>/.als/log` (also described in docs/log-format.md).
 *
 *     file    = header frame*
 *     header  = "ALSLOG" 0x00 0x01                         8 bytes; the last byte is the format version
 *
 *     frame   (all integers little-endian; L = payload length)
 *       +0      u32   head magic  "ALSF" (0x41 0x4c 0x53 0x46)
 *       +4      u32   L
 *       +8      u64   index       0 for the first frame, +1 for each next one
 *       +16     32 B  prevHash    hash of the frame before; 32 zero bytes for frame 0
 *       +48     L B   payload     msgpack, see Payload.ts
 *       +48+L   32 B  hash        sha256(bytes +4 .. +48+L) = sha256(L ‖ index ‖ prevHash ‖ payload)
 *       +80+L   u32   L           (again, so the frame can be found from its end)
 *       +84+L   u32   tail magic  "ALSE" (0x41 0x4c 0x53 0x45)
 *     frame size = 88 + L
 *
 * Why this shape:
 * - `hash` is at once the frame's checksum (it covers everything but the magics) and the chain
 *   link (the next frame repeats it as `prevHash`), so an edit, a removal or a swap anywhere
 *   breaks either a checksum or a link.
 * - The trailer (`hash`, L, magic) lets a writer verify the last frame from the end of the file
 *   in O(1): read the trailer, jump back 88 + L bytes, check the frame and its link to the
 *   trailer before it. Only when that fails does it search for the last good frame.
 * - `index` makes the frame count and any entry's position known without counting from 0.
 */
import { Buffer } from "node:buffer"

export const FILE_HEADER: Buffer = Buffer.from([0x41, 0x4c, 0x53, 0x4c, 0x4f, 0x47, 0x00, 0x01])
export const HEADER_SIZE = 8
export const HEAD_MAGIC = 0x46534c41 // "ALSF" read as u32le
export const TAIL_MAGIC = 0x45534c41 // "ALSE" read as u32le
export const TAIL_MAGIC_BYTES: Buffer = Buffer.from([0x41, 0x4c, 0x53, 0x45])
export const HEAD_MAGIC_BYTES: Buffer = Buffer.from([0x41, 0x4c, 0x53, 0x46])
export const FRAME_HEAD = 48
export const FRAME_TAIL = 40
export const FRAME_OVERHEAD = FRAME_HEAD + FRAME_TAIL
/** A bound on L: larger values mean a damaged length field, not a real event. */
export const MAX_PAYLOAD = 16 * 1024 * 1024
export const GENESIS: Buffer = Buffer.alloc(32)

type NodeCrypto = typeof import("node:crypto")

/**
 * sha256 of `data` into `out` (32 bytes). Bun's native hasher is ~2× node:crypto here; other
 * runtimes get node:crypto when first asked (loading it up front would load node:stream, a
 * few ms of every process's start).
 */
export const sha256Into: (data: Uint8Array, out: Uint8Array) => void = (() => {
  const bun = (globalThis as { Bun?: { SHA256?: { hash(d: Uint8Array, out: Uint8Array): unknown } } }).Bun
  if (bun?.SHA256) {
    const h = bun.SHA256
    return (data, out) => {
      h.hash(data, out)
    }
  }
  let crypto: NodeCrypto | undefined
  return (data, out) => {
    crypto ??= (process as unknown as { getBuiltinModule(id: string): NodeCrypto }).getBuiltinModule("node:crypto")
    const oneShot = (crypto as { hash?: (alg: string, d: Uint8Array, enc: "buffer") => Buffer }).hash
    out.set(typeof oneShot === "function" ? oneShot("sha256", data, "buffer") : crypto.createHash("sha256").update(data).digest())
  }
})()

export const frameSize = (payloadLength: number): number => FRAME_OVERHEAD + payloadLength

// Hex of a 32-byte hash: a table and one latin1 decode beat Buffer#toString("hex") by ~1/3,
// which shows in a fold that makes one per event.
const HEX_DIGITS = new Uint8Array(512)
for (let i = 0; i < 256; i++) {
  const h = i.toString(16).padStart(2, "0")
  HEX_DIGITS[2 * i] = h.charCodeAt(0)
  HEX_DIGITS[2 * i + 1] = h.charCodeAt(1)
}
const hexScratch = Buffer.alloc(64)
const latin1: (b: Buffer) => string =
  typeof (Buffer.prototype as { latin1Slice?: unknown }).latin1Slice === "function"
    ? (b) => (b as unknown as { latin1Slice(s: number, e: number): string }).latin1Slice(0, 64)
    : (b) => b.toString("latin1", 0, 64)

/** The 32 bytes at `buf[at…]` as lowercase hex. */
export const hashHex = (buf: Uint8Array, at: number): string => {
  for (let i = 0; i < 32; i++) {
    const d = buf[at + i] << 1
    hexScratch[2 * i] = HEX_DIGITS[d]
    hexScratch[2 * i + 1] = HEX_DIGITS[d + 1]
  }
  return latin1(hexScratch)
}

export const readIndex = (buf: Buffer, frameStart: number): number =>
  buf.readUInt32LE(frameStart + 8) + buf.readUInt32LE(frameStart + 12) * 0x1_0000_0000

/**
 * Writes one frame for `payload` at `out[at…]` (which must have frameSize(payload.length)
 * bytes) and returns the offset of its hash in `out`.
 */
export const writeFrame = (out: Buffer, at: number, index: number, prevHash: Uint8Array, payload: Uint8Array): number => {
  const len = payload.length
  out.writeUInt32LE(HEAD_MAGIC, at)
  out.writeUInt32LE(len, at + 4)
  out.writeUInt32LE(index % 0x1_0000_0000, at + 8)
  out.writeUInt32LE(Math.floor(index / 0x1_0000_0000), at + 12)
  out.set(prevHash, at + 16)
  out.set(payload, at + FRAME_HEAD)
  const hashAt = at + FRAME_HEAD + len
  sha256Into(out.subarray(at + 4, hashAt), out.subarray(hashAt, hashAt + 32))
  out.writeUInt32LE(len, hashAt + 32)
  out.writeUInt32LE(TAIL_MAGIC, hashAt + 36)
  return hashAt
}

export const bytesEqual = (a: Uint8Array, aAt: number, b: Uint8Array, bAt: number, n: number): boolean => {
  for (let i = 0; i < n; i++) if (a[aAt + i] !== b[bAt + i]) return false
  return true
}

const scratch = Buffer.alloc(32)

/** Whether the stored hash of the complete frame at `buf[at…]` matches its contents. */
export const frameHashOk = (buf: Buffer, at: number, len: number): boolean => {
  const hashAt = at + FRAME_HEAD + len
  sha256Into(buf.subarray(at + 4, hashAt), scratch)
  return bytesEqual(scratch, 0, buf, hashAt, 32)
}

export type FrameCheck =
  | { readonly ok: true; readonly len: number }
  | { readonly ok: false; readonly kind: "framing" | "checksum"; readonly problem: string }

/**
 * Checks the structure and checksum of a complete frame at `buf[at…]`, given `avail` bytes
 * from `at` (the caller makes sure that at least the declared frame is there when it can).
 */
export const checkFrame = (buf: Buffer, at: number, avail: number): FrameCheck => {
  if (avail < FRAME_OVERHEAD) return { ok: false, kind: "framing", problem: "frame shorter than its fixed parts" }
  if (buf.readUInt32LE(at) !== HEAD_MAGIC) return { ok: false, kind: "framing", problem: "no frame marker where a frame should start" }
  const len = buf.readUInt32LE(at + 4)
  if (len > MAX_PAYLOAD) return { ok: false, kind: "framing", problem: `impossible payload length ${len}` }
  if (avail < FRAME_OVERHEAD + len) return { ok: false, kind: "framing", problem: "frame cut short" }
  const tailAt = at + FRAME_HEAD + len + 32
  if (buf.readUInt32LE(tailAt) !== len || buf.readUInt32LE(tailAt + 4) !== TAIL_MAGIC)
    return { ok: false, kind: "framing", problem: "frame end marker missing or length mismatch" }
  if (!frameHashOk(buf, at, len)) return { ok: false, kind: "checksum", problem: "checksum mismatch: the frame's bytes were changed" }
  return { ok: true, len }
}
