/**
 * Content digests as OCI spells them (`sha256:<64 hex>`). Every digest that reaches a path
 * on disk goes through `parseDigest`: a manifest is untrusted input, and a "digest" such as
 * `sha256:../../etc` must never become a directory name.
 */
import { Schema } from "effect"

const pattern = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

export const Digest = Schema.String.pipe(
  Schema.pattern(pattern, { message: () => "expected a digest such as sha256:<64 lowercase hex>" }),
  Schema.brand("Digest"),
)
export type Digest = typeof Digest.Type

export class InvalidDigest extends Schema.TaggedError<InvalidDigest>()("InvalidDigest", {
  value: Schema.String,
}) {
  override get message() {
    return `invalid digest ${JSON.stringify(this.value)}: expected sha256:<64 lowercase hex>`
  }
}

export const isDigest = (s: string): s is Digest => pattern.test(s)

/** Throws InvalidDigest: for pure code at trust boundaries. */
export const parseDigest = (s: string): Digest => {
  if (!isDigest(s)) throw new InvalidDigest({ value: s })
  return s
}

export const digestAlgorithm = (d: Digest): "sha256" | "sha512" =>
  d.startsWith("sha512:") ? "sha512" : "sha256"

export const digestHex = (d: Digest): string => d.slice(d.indexOf(":") + 1)
