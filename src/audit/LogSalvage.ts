/**
 * Reading every intact frame of a log, damaged or not, for `als audit`.
 *
 * The event log's own readers stop at the first damage, which is right for a fold that
 * decides what to do next. An audit wants more: the state the log still explains around the
 * damage (so one flipped byte does not make every later layer look unexplained), and for each
 * frame where it ends and what it hashes to (to check a checkpoint). So this walks the file,
 * takes every frame whose own checksum holds, and skips to the next frame marker where one
 * does not. Whether frames chain is EventLog.verify's business, reported separately.
 *
 * Read-only (the file is opened "r"), in 1 MiB windows.
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import type { Envelope, Event } from "../events/Events.ts"
import {
  bytesEqual,
  checkFrame,
  FILE_HEADER,
  FRAME_HEAD,
  FRAME_OVERHEAD,
  HEAD_MAGIC,
  HEAD_MAGIC_BYTES,
  HEADER_SIZE,
  MAX_PAYLOAD,
  readIndex,
} from "../events/LogFormat.ts"
import { decodeFast } from "../events/Payload.ts"

export interface SalvagedFrame {
  readonly offset: number
  /** the byte after the frame */
  readonly end: number
  /** the index the frame says it has */
  readonly index: number
  /** sha256 of the frame (hex): what the next frame names as prevHash */
  readonly hash: string
  readonly prevHash: string
  /** the decoded event, unless the payload cannot be read */
  readonly envelope?: Envelope
  readonly event?: Event
}

export interface Salvage {
  readonly size: number
  readonly headerOk: boolean
  readonly frames: ReadonlyArray<SalvagedFrame>
}

const WINDOW = 1 << 20

/** Every intact frame of the log file at `file` (an absent file is an empty log). */
export const salvageLog = (file: string): Salvage => {
  let fd: number
  try {
    fd = fs.openSync(file, "r")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { size: 0, headerOk: true, frames: [] }
    throw e
  }
  try {
    const size = fs.fstatSync(fd).size
    const frames: Array<SalvagedFrame> = []
    if (size === 0) return { size, headerOk: true, frames }
    const head = Buffer.alloc(HEADER_SIZE)
    fs.readSync(fd, head, 0, HEADER_SIZE, 0)
    const headerOk = size >= HEADER_SIZE && bytesEqual(head, 0, FILE_HEADER, 0, HEADER_SIZE)
    let buf = Buffer.allocUnsafe(WINDOW)
    let start = 0 // file offset of buf[0]
    let len = 0
    const fill = (pos: number, need: number): number => {
      if (pos < start || pos + need > start + len) {
        if (need > buf.length) buf = Buffer.allocUnsafe(need)
        start = pos
        len = 0
        while (len < buf.length) {
          const n = fs.readSync(fd, buf, len, buf.length - len, start + len)
          if (n === 0) break
          len += n
        }
      }
      return start + len - pos
    }
    let pos = HEADER_SIZE
    while (pos + FRAME_OVERHEAD <= size) {
      fill(pos, FRAME_HEAD)
      let at = pos - start
      let ok = false
      if (buf.readUInt32LE(at) === HEAD_MAGIC) {
        const plen = buf.readUInt32LE(at + 4)
        if (plen <= MAX_PAYLOAD && pos + FRAME_OVERHEAD + plen <= size) {
          fill(pos, FRAME_OVERHEAD + plen)
          at = pos - start
          if (checkFrame(buf, at, FRAME_OVERHEAD + plen).ok) {
            const hashAt = at + FRAME_HEAD + plen
            const decoded = decodeFast(buf, at + FRAME_HEAD, hashAt)
            frames.push({
              offset: pos,
              end: pos + FRAME_OVERHEAD + plen,
              index: readIndex(buf, at),
              hash: buf.toString("hex", hashAt, hashAt + 32),
              prevHash: buf.toString("hex", at + 16, at + 48),
              ...(typeof decoded === "string" ? {} : { envelope: decoded.envelope, event: decoded.event }),
            })
            pos += FRAME_OVERHEAD + plen
            ok = true
          }
        }
      }
      if (ok) continue
      // not an intact frame here: look for the next frame marker
      let next = -1
      for (let from = pos + 1; from < size && next < 0;) {
        const avail = fill(from, Math.min(WINDOW, size - from))
        const i = buf.subarray(from - start, from - start + avail).indexOf(HEAD_MAGIC_BYTES)
        if (i >= 0) next = from + i
        else from += Math.max(1, avail - 3)
      }
      if (next < 0) break
      pos = next
    }
    return { size, headerOk, frames }
  } finally {
    fs.closeSync(fd)
  }
}
