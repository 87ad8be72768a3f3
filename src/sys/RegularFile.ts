/**
 * Reading a file someone else made (a config, an auth file, a certificate, a checkpoint, a
 * recording): opened O_RDONLY|O_NONBLOCK|O_NOCTTY, so a FIFO never blocks the thread (which
 * would also keep SIGINT/SIGTERM and every timeout from running) and a terminal never becomes
 * ours; then fstat on the open descriptor: a regular file only (no FIFO, device such as
 * /dev/zero, socket or directory), and no more than the caller's bound is read.
 */
import { Buffer } from "node:buffer"
import * as fs from "node:fs"

export type RegularRead<A> =
  | { readonly kind: "ok"; readonly value: A }
  | { readonly kind: "missing" }
  /** not a regular file: `what` is "a FIFO", "a directory", … */
  | { readonly kind: "notRegular"; readonly what: string }
  | { readonly kind: "tooLarge"; readonly size: number; readonly max: number }
  | { readonly kind: "error"; readonly error: NodeJS.ErrnoException }

/** What a non-regular file is, for messages. */
export const fileKind = (st: fs.Stats): string =>
  st.isFile()
    ? "a regular file"
    : st.isDirectory()
    ? "a directory"
    : st.isFIFO()
    ? "a FIFO"
    : st.isSymbolicLink()
    ? "a symlink"
    : st.isSocket()
    ? "a socket"
    : st.isCharacterDevice()
    ? "a character device"
    : st.isBlockDevice()
    ? "a block device"
    : "not a regular file"

const isMissing = (e: NodeJS.ErrnoException) => e.code === "ENOENT" || e.code === "ENOTDIR"

/** One line for a refusal, naming the file's kind or size; undefined for ok and missing. */
export const refusalText = (r: RegularRead<unknown>): string | undefined => {
  switch (r.kind) {
    case "notRegular":
      return `it is ${r.what}, not a regular file`
    case "tooLarge":
      return `it is ${r.size} bytes, more than the ${r.max} allowed`
    case "error":
      return r.error.code ? `${r.error.code}: ${r.error.message}` : r.error.message
    default:
      return undefined
  }
}

/**
 * Opens `file` as a regular file (see the module): its descriptor (the caller closes it) and
 * size. `noFollow`: a final symlink is refused, not followed.
 */
export const openRegularFile = (
  file: string,
  max: number,
  opts?: { readonly noFollow?: boolean },
): RegularRead<{ readonly fd: number; readonly size: number }> => {
  let fd: number
  try {
    const flags = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY | (opts?.noFollow ? fs.constants.O_NOFOLLOW : 0)
    fd = fs.openSync(file, flags)
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    if (isMissing(err)) return { kind: "missing" }
    if (err.code === "ELOOP" && opts?.noFollow) return { kind: "notRegular", what: "a symlink" }
    return { kind: "error", error: err }
  }
  let refused: RegularRead<never> | undefined
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) refused = { kind: "notRegular", what: fileKind(st) }
    else if (st.size > max) refused = { kind: "tooLarge", size: st.size, max }
    else return { kind: "ok", value: { fd, size: st.size } }
  } catch (e) {
    refused = { kind: "error", error: e as NodeJS.ErrnoException }
  }
  fs.closeSync(fd)
  return refused
}

/** openRegularFile, handing the descriptor to `use` and closing it afterwards. */
const withRegularFile = <A>(
  file: string,
  max: number,
  use: (fd: number, size: number) => A,
  opts?: { readonly noFollow?: boolean },
): RegularRead<A> => {
  const opened = openRegularFile(file, max, opts)
  if (opened.kind !== "ok") return opened
  const { fd, size } = opened.value
  try {
    return { kind: "ok", value: use(fd, size) }
  } catch (e) {
    return { kind: "error", error: e as NodeJS.ErrnoException }
  } finally {
    fs.closeSync(fd)
  }
}

/** The bytes of a regular file of at most `max` bytes (what it held when opened). */
export const readRegularFile = (file: string, max: number, opts?: { readonly noFollow?: boolean }): RegularRead<Buffer> =>
  withRegularFile(file, max, (fd, size) => {
    const buf = Buffer.alloc(size)
    let n = 0
    while (n < size) {
      const got = fs.readSync(fd, buf, n, size - n, n)
      if (got === 0) break
      n += got
    }
    return n === size ? buf : buf.subarray(0, n)
  }, opts)

/** The same, as UTF-8 text (invalid sequences replaced, as readFileSync(…, "utf8") does). */
export const readRegularText = (file: string, max: number, opts?: { readonly noFollow?: boolean }): RegularRead<string> => {
  const r = readRegularFile(file, max, opts)
  return r.kind === "ok" ? { kind: "ok", value: r.value.toString("utf8") } : r
}

/** Like readRegularText, throwing `fail(reason)` unless the file was read; undefined when missing. */
export const readRegularTextOr = (file: string, max: number, fail: (reason: string) => Error): string | undefined => {
  const r = readRegularText(file, max)
  if (r.kind === "ok") return r.value
  if (r.kind === "missing") return undefined
  throw fail(refusalText(r) ?? "cannot read it")
}

/** The same for a file that must be there: missing is `fail("no such file")` too. */
export const requireRegularText = (file: string, max: number, fail: (reason: string) => Error): string => {
  const text = readRegularTextOr(file, max, fail)
  if (text === undefined) throw fail("no such file")
  return text
}
