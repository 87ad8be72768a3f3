import { Schema } from "effect"
import { IoFailureFields, ioFailureFields, ioHint } from "../domain/IoFailure.ts"

/** A local filesystem operation on the store failed. */
export class StoreIoError extends Schema.TaggedError<StoreIoError>()("StoreIoError", IoFailureFields) {
  override get message() {
    const hint = ioHint(this.code, {
      full: " The disk holding the store is full: free space (e.g. `als gc`) and retry; nothing partial was kept.",
      access: " Check that you may write to the store (run as root, or pick another --root).",
    })
    return `cannot ${this.op} ${this.path}: ${this.detail}.${hint}`
  }
}

export const ioError = (op: string, p: string) => (e: unknown): StoreIoError => new StoreIoError(ioFailureFields(op, p, e))
