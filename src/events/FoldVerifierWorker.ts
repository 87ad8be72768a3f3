/**
 * The FoldVerifier's thread (FoldVerifier.ts): walks the log with the fold's own FrameReader
 * (framing, checksum, chain), reading no further than the fold will, and publishes how far
 * every frame held. At the first frame it cannot vouch for it stops; the fold's reader then
 * meets that frame with its own checks.
 *
 * A module of its own, loaded only as a Worker: the compiled binary lists it as a second entry
 * point (package.json "build").
 */
import type { Buffer } from "node:buffer"
import * as fs from "node:fs"
import type { VerifyRequest } from "./FoldVerifier.ts"
import { FrameReader, startAt } from "./FrameReader.ts"
import type { ByteStore } from "./LogStore.ts"

/** Frames between two publications of how far the checks held. */
const PUBLISH_EVERY = 128

/** The log, read-only, as if it ended at `to` (where the fold stops reading). */
const readOnlyUpTo = (path: string, fd: number, to: number): ByteStore => {
  const refuse = (): never => {
    throw new Error("the fold verifier only reads the log")
  }
  return {
    path,
    size: () => to,
    read: (into: Buffer, at: number, len: number, position: number) =>
      position >= to ? 0 : fs.readSync(fd, into, at, Math.min(len, to - position), position),
    append: refuse,
    truncate: refuse,
    sync: refuse,
    syncAsync: refuse,
    keepCut: refuse,
  }
}

const vouch = ({ path, from, to, shared }: VerifyRequest): void => {
  let fd = -1
  let reader: FrameReader | undefined
  try {
    fd = fs.openSync(path, "r")
    const store = readOnlyUpTo(path, fd, to)
    const start = startAt(store, from)
    if (start === undefined) return
    reader = new FrameReader(store, start)
    for (let frames = 1; reader.pos < to && reader.advance(); frames++) {
      if (frames % PUBLISH_EVERY === 0) Atomics.store(shared, 0, BigInt(reader.pos))
    }
  } catch {
    // a frame it cannot vouch for (LogCorrupt), or the file unreadable: the fold checks from here
  } finally {
    if (reader !== undefined) Atomics.store(shared, 0, BigInt(reader.pos))
    if (fd >= 0) fs.closeSync(fd)
  }
}

;(globalThis as unknown as { onmessage: (m: { readonly data: VerifyRequest }) => void }).onmessage = (m) => vouch(m.data)
