/**
 * Log checkpoints: `als audit --checkpoint FILE` writes the log's head (its size, the hash of
 * the frame that ends there, the frame count) to keep somewhere the store's users cannot write;
 * `als audit --since FILE` later proves the log only grew since: the frame that ends at the
 * recorded size still has the recorded hash (each frame's hash covers the one before, so the
 * first SIZE bytes are the same bytes), and the frames after it continue the chain from it.
 * A truncation or a rewrite of anything before SIZE fails.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import process from "node:process"
import * as path from "node:path"
import { HEADER_SIZE } from "../events/LogFormat.ts"
import { fileKind, readRegularText, refusalText } from "../sys/RegularFile.ts"
import type { AuditProblem } from "./AuditProblem.ts"
import type { Salvage } from "./LogSalvage.ts"

export const CHECKPOINT_FORMAT = "als-log-checkpoint"

export interface Checkpoint {
  readonly format: typeof CHECKPOINT_FORMAT
  readonly version: 1
  /** the log it was taken of, for people */
  readonly log: string
  /** bytes up to the end of the last frame */
  readonly size: number
  /** hex sha256 of that frame (64 zeros for an empty log) */
  readonly hash: string
  readonly frames: number
  /** ISO 8601 */
  readonly takenAt: string
}

export const makeCheckpoint = (log: string, head: { size: number; hash: string; frames: number }, at: Date): Checkpoint => ({
  format: CHECKPOINT_FORMAT,
  version: 1,
  log: path.resolve(log),
  size: head.size,
  hash: head.hash,
  frames: head.frames,
  takenAt: at.toISOString(),
})

/** A checkpoint is a few hundred bytes of JSON. */
const MAX_CHECKPOINT_BYTES = 64 << 10

/**
 * Why `file` may not take a checkpoint, or undefined when it may: it must be missing, or a
 * regular file holding an earlier checkpoint. als runs as root: `--checkpoint /dev/null` or a
 * typo'd `/etc/...` must not replace a device, a FIFO, a symlink or somebody's file.
 */
export const checkpointTargetProblem = (file: string): string | undefined => {
  let st: fs.Stats
  try {
    st = fs.lstatSync(file)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    return code === "ENOENT" ? undefined : `cannot check it: ${(e as Error).message}`
  }
  if (!st.isFile()) return `it is ${fileKind(st)}: a checkpoint replaces only an earlier checkpoint file; name a new file`
  const held = readCheckpoint(file)
  return "format" in held ? undefined : "it exists and is not an als checkpoint: a checkpoint replaces only an earlier checkpoint file; name a new file"
}

/**
 * Writes `cp` to `file` atomically: a fresh temporary file beside it (random name, created
 * exclusively, never through a symlink, mode 0644 whatever the umask), synced, then renamed
 * over `file` once checkpointTargetProblem allows it. Throws with the reason otherwise.
 */
export const writeCheckpoint = (file: string, cp: Checkpoint): void => {
  const problem = checkpointTargetProblem(file)
  if (problem !== undefined) throw new Error(`${file}: ${problem}`)
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644)
  try {
    try {
      fs.fchmodSync(fd, 0o644)
      fs.writeSync(fd, JSON.stringify(cp, null, 2) + "\n")
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(tmp, file)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw e
  }
}

/** The checkpoint in `file`, or the problem reading it. */
export const readCheckpoint = (file: string): Checkpoint | AuditProblem => {
  const bad = (message: string): AuditProblem => ({ area: "checkpoint", code: "CheckpointUnreadable", path: file, message })
  let cp: Partial<Checkpoint>
  const r = readRegularText(file, MAX_CHECKPOINT_BYTES)
  if (r.kind === "missing") return bad("cannot read the checkpoint: no such file")
  if (r.kind !== "ok") return bad(`cannot read the checkpoint: ${refusalText(r)}`)
  try {
    cp = JSON.parse(r.value) as Partial<Checkpoint>
  } catch (e) {
    return bad(`cannot read the checkpoint: ${(e as Error).message}`)
  }
  if (cp.format !== CHECKPOINT_FORMAT || typeof cp.size !== "number" || typeof cp.hash !== "string" || typeof cp.frames !== "number") {
    return bad("not a checkpoint written by `als audit --checkpoint`")
  }
  return cp as Checkpoint
}

export interface SinceResult {
  readonly problems: ReadonlyArray<AuditProblem>
  /** bytes and frames appended since the checkpoint (when it holds) */
  readonly grewBy?: { readonly bytes: number; readonly frames: number }
}

/**
 * Whether the log (its intact frames, `salvage`) only grew since `cp`. `damagedBefore`: the
 * offset of the first log problem, if any (damage before the checkpoint's size is a rewrite).
 */
export const checkSince = (cp: Checkpoint, salvage: Salvage, file: string, damagedBefore?: number): SinceResult => {
  const at = (code: AuditProblem["code"], message: string, frame?: { offset: number; index: number }): SinceResult => ({
    problems: [{ area: "checkpoint", code, path: file, message, ...(frame ? { frame } : {}) }],
  })
  if (salvage.size < cp.size) {
    return at("CheckpointTruncated", `the log is ${salvage.size} bytes, less than the ${cp.size} it had at the checkpoint (${cp.takenAt}): it was cut`)
  }
  if (damagedBefore !== undefined && damagedBefore < cp.size) {
    return at("CheckpointRewritten", `the log is damaged at byte ${damagedBefore}, before the ${cp.size} bytes the checkpoint vouches for: it was changed since ${cp.takenAt}`)
  }
  const after = salvage.frames.filter((f) => f.offset >= cp.size)
  const grewBy = { bytes: salvage.size - cp.size, frames: after.length }
  if (cp.size <= HEADER_SIZE) {
    if (!salvage.headerOk) return at("CheckpointRewritten", "the log no longer starts with an als log header")
    return { problems: [], grewBy }
  }
  const last = salvage.frames.find((f) => f.end === cp.size)
  if (!last) {
    return at("CheckpointRewritten", `no frame ends at byte ${cp.size} any more: the log before the checkpoint (${cp.takenAt}) was rewritten`)
  }
  const where = { offset: last.offset, index: last.index }
  if (last.hash !== cp.hash) {
    return at(
      "CheckpointRewritten",
      `the frame ending at byte ${cp.size} hashes to ${last.hash}, the checkpoint says ${cp.hash}: the first ${cp.size} bytes were changed since ${cp.takenAt}`,
      where,
    )
  }
  if (last.index !== cp.frames - 1) {
    return at("CheckpointRewritten", `the frame ending at byte ${cp.size} is number ${last.index}, the checkpoint counted ${cp.frames} frames`, where)
  }
  const next = after[0]
  if (next && (next.offset !== cp.size || next.prevHash !== cp.hash)) {
    return at("CheckpointRewritten", `the frames after byte ${cp.size} do not continue the chain from the checkpoint's head`, { offset: next.offset, index: next.index })
  }
  return { problems: [], grewBy }
}
