import { Schema } from "effect"

/** A local filesystem operation on the store failed. */
export class StoreIoError extends Schema.TaggedError<StoreIoError>()("StoreIoError", {
  op: Schema.String,
  path: Schema.String,
  code: Schema.String,
  detail: Schema.String,
}) {
  override get message() {
    const hint = this.code === "ENOSPC" || this.code === "EDQUOT"
      ? " The disk holding the store is full: free space (e.g. `als gc`) and retry; nothing partial was kept."
      : this.code === "EACCES" || this.code === "EPERM" || this.code === "EROFS"
      ? " Check that you may write to the store (run as root, or pick another --root)."
      : ""
    return `cannot ${this.op} ${this.path}: ${this.detail}.${hint}`
  }
}

export const ioError = (op: string, p: string) => (e: unknown): StoreIoError => {
  const err = e as NodeJS.ErrnoException
  return new StoreIoError({
    op,
    path: p,
    code: err?.code ?? "EIO",
    detail: err?.message ?? String(e),
  })
}
