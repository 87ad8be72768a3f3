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
 * Read-only (the file is opened "r"), through the log's own 1 MiB window (LogFrames.ts).
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"
import type { Envelope, Event } from "../events/Events.ts"
import { bytesEqual, FILE_HEADER, FRAME_HEAD, FRAME_OVERHEAD, HEADER_SIZE, readIndex } from "../events/LogFormat.ts"
import { nextIntactFrame, Window } from "../events/LogFrames.ts"
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
    // the log's own window and skip-to-the-next-intact-frame scan, over this read-only fd
    const win = new Window({ read: (into, at, len, position) => fs.readSync(fd, into, at, len, position) })
    for (let pos = nextIntactFrame(win, HEADER_SIZE, size); pos >= 0;) {
      win.ensure(pos, FRAME_HEAD)
      const plen = win.buf.readUInt32LE(pos - win.start + 4)
      const end = pos + FRAME_OVERHEAD + plen
      win.ensure(pos, FRAME_OVERHEAD + plen)
      const buf = win.buf
      const at = pos - win.start
      const hashAt = at + FRAME_HEAD + plen
      const decoded = decodeFast(buf, at + FRAME_HEAD, hashAt)
      frames.push({
        offset: pos,
        end,
        index: readIndex(buf, at),
        hash: buf.toString("hex", hashAt, hashAt + 32),
        prevHash: buf.toString("hex", at + 16, at + 48),
        ...(typeof decoded === "string" ? {} : { envelope: decoded.envelope, event: decoded.event }),
      })
      pos = nextIntactFrame(win, end, size)
    }
    return { size, headerOk, frames }
  } finally {
    fs.closeSync(fd)
  }
}
