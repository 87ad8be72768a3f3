/**
 * Files a pool made, checked before als reads or links them (issue 11, class 4).
 *
 * A pool is trusted for content (the seed's design), never for file types or paths: its
 * `info` may be a FIFO (a plain read would hang), a symlink to /dev/zero (a plain read would
 * grow without end) or megabytes of JSON; its `diff` or `blob` may be a symlink to the host's
 * /etc, or a directory whose real path lies outside the pool. So every file is lstat'ed first
 * (regular files and directories only, no final symlink), opened O_NONBLOCK|O_NOFOLLOW and
 * fstat'ed again (the name may have been swapped meanwhile), read with a size cap, and what
 * will be linked must resolve (realpath) inside the pool's root.
 *
 * Synchronous: a probe makes a handful of these calls and runs inside one Effect.
 */
import * as fs from "node:fs"
import * as path from "node:path"

/** The most an `info` may weigh (ours is ~400 bytes; containers/storage's Layer struct is small). */
export const INFO_MAX_BYTES = 64 * 1024

export type PoolRead =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Read"; readonly text: string }
  | { readonly _tag: "Refused"; readonly reason: string }

export type PoolTarget =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Ok"; readonly real: string; readonly size: number }
  | { readonly _tag: "Refused"; readonly reason: string }

const lstat = (p: string): fs.Stats | undefined => {
  try {
    return fs.lstatSync(p)
  } catch {
    return undefined
  }
}

/** What is at `p`, in words, for a refusal. */
export const kindOf = (st: fs.Stats): string =>
  st.isSymbolicLink()
    ? "a symlink"
    : st.isFIFO()
    ? "a FIFO"
    : st.isCharacterDevice()
    ? "a character device"
    : st.isBlockDevice()
    ? "a block device"
    : st.isSocket()
    ? "a socket"
    : st.isDirectory()
    ? "a directory"
    : st.isFile()
    ? "a regular file"
    : "not a file"

const within = (root: string, real: string): boolean => real === root || real.startsWith(root.endsWith("/") ? root : root + "/")

/**
 * Reads a small regular file of a pool (its `info`): never follows a final symlink, never
 * blocks on a FIFO, never reads more than `cap` bytes.
 */
export const readPoolFile = (file: string, cap = INFO_MAX_BYTES): PoolRead => {
  const name = path.basename(file)
  const st = lstat(file)
  if (st === undefined) return { _tag: "Missing" }
  if (!st.isFile()) return { _tag: "Refused", reason: `the pool's ${name} is ${kindOf(st)}, not a regular file` }
  if (st.size > cap) return { _tag: "Refused", reason: `the pool's ${name} has ${st.size} bytes, more than the ${cap} allowed` }
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === "ENOENT") return { _tag: "Missing" }
    return { _tag: "Refused", reason: `the pool's ${name} cannot be opened (${code === "ELOOP" ? "it became a symlink" : code ?? String(e)})` }
  }
  try {
    const again = fs.fstatSync(fd)
    if (!again.isFile()) return { _tag: "Refused", reason: `the pool's ${name} is ${kindOf(again)}, not a regular file` }
    // one byte more than the cap tells a file that grew since the lstat
    const buf = Buffer.allocUnsafe(cap + 1)
    let got = 0
    for (;;) {
      const n = fs.readSync(fd, buf, got, buf.length - got, got)
      if (n === 0) break
      got += n
      if (got > cap) return { _tag: "Refused", reason: `the pool's ${name} has more than the ${cap} bytes allowed` }
    }
    return { _tag: "Read", text: buf.subarray(0, got).toString("utf8") }
  } catch (e) {
    return { _tag: "Refused", reason: `the pool's ${name} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})` }
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Checks what a link into the pool would point at (`diff`, a directory, or `blob`, a
 * regular file): not a symlink itself, of the right type, and really inside `poolRoot`.
 * Returns its real path, which is what the store links to (a symlink higher up the pool's
 * path cannot later redirect the link elsewhere).
 */
export const checkPoolTarget = (p: string, want: "directory" | "file", poolRoot: string): PoolTarget => {
  const name = path.basename(p)
  const st = lstat(p)
  if (st === undefined) return { _tag: "Missing" }
  if (st.isSymbolicLink()) return { _tag: "Refused", reason: `the pool's ${name} is a symlink (-> ${readlinkOr(p)}); als links only real files of a pool` }
  if (want === "directory" ? !st.isDirectory() : !st.isFile()) {
    return { _tag: "Refused", reason: `the pool's ${name} is ${kindOf(st)}, not a ${want}` }
  }
  let real: string
  let root: string
  try {
    real = fs.realpathSync(p)
    root = fs.realpathSync(poolRoot)
  } catch (e) {
    return { _tag: "Refused", reason: `the pool's ${name} cannot be resolved (${(e as NodeJS.ErrnoException).code ?? String(e)})` }
  }
  if (!within(root, real) || real === root && want === "file") {
    return { _tag: "Refused", reason: `the pool's ${name} resolves to ${real}, outside the pool ${root}` }
  }
  return { _tag: "Ok", real, size: st.size }
}

const readlinkOr = (p: string): string => {
  try {
    return fs.readlinkSync(p)
  } catch {
    return "?"
  }
}
