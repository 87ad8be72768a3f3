/**
 * The one shape of a failed filesystem operation (the store's and the event log's errors):
 * what was done to which path, the errno name and the system's words, and advice by errno.
 */
import { Schema } from "effect"

export const IoFailureFields = {
  op: Schema.String,
  path: Schema.String,
  code: Schema.String,
  detail: Schema.String,
}

/** The fields of an I/O failure from a thrown error (node's errno error, or anything). */
export const ioFailureFields = (op: string, path: string, e: unknown) => {
  const err = e as NodeJS.ErrnoException | undefined
  return { op, path, code: err?.code ?? "EIO", detail: err?.message ?? String(e) }
}

/** What to do about it: a full disk, or no permission; nothing for other errnos. */
export const ioHint = (code: string, advice: { readonly full: string; readonly access: string }): string =>
  code === "ENOSPC" || code === "EDQUOT"
    ? advice.full
    : code === "EACCES" || code === "EPERM" || code === "EROFS"
    ? advice.access
    : ""
