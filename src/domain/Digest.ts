/**
 * Content digests as OCI spells them (`sha256:<64 hex>`). Every digest that reaches a path
 * on disk goes through `parseDigest`: a manifest is untrusted input, and a "digest" such as
 * `sha256:../../etc` must never become a directory name.
 */
import { Schema } from "effect"
import { DIGEST_PATTERN, isDigest } from "./DigestSyntax.ts"

export { digestAlgorithm, digestHex, isDigest } from "./DigestSyntax.ts"

export const Digest = Schema.String.pipe(
  Schema.pattern(DIGEST_PATTERN, { message: () => "expected a digest such as sha256:<64 lowercase hex>" }),
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

/** Throws InvalidDigest: for pure code at trust boundaries. */
export const parseDigest = (s: string): Digest => {
  if (!isDigest(s)) throw new InvalidDigest({ value: s })
  return s
}
