/**
 * Manifest and config checks, for what a registry or a local layout hands us: the bytes must
 * hash to the digest we asked for (and, when a descriptor says so, have its size). Pure, so it
 * can be tested with data a real registry would never serve.
 */
import { Either } from "effect"
import { type Digest, digestAlgorithm } from "../domain/Digest.ts"
import { digestBytes } from "../domain/Manifest.ts"
import { RegistryError } from "../registry/RegistryError.ts"

/** What is wrong with some content against its descriptor: written once for every source. */
export type ContentProblem =
  | { readonly kind: "digest"; readonly actual: Digest }
  | { readonly kind: "size"; readonly actual: Digest; readonly size: number }

/**
 * The digest of `bytes` (with `expected`'s algorithm), and what differs from `expected`:
 * the digest first, then the size. Pure: the registry client and the local sources (OCI
 * layouts, archives) each word the problem in their own error.
 */
export const checkContent = (
  bytes: Uint8Array,
  expected?: { readonly digest?: Digest | undefined; readonly size?: number | undefined },
): { readonly actual: Digest; readonly problem?: ContentProblem | undefined } => {
  const want = expected?.digest
  const actual = digestBytes(bytes, want ? digestAlgorithm(want) : "sha256")
  if (want !== undefined && actual !== want) return { actual, problem: { kind: "digest", actual } }
  if (expected?.size !== undefined && bytes.length !== expected.size) {
    return { actual, problem: { kind: "size", actual, size: bytes.length } }
  }
  return { actual }
}

/**
 * The digest of `bytes`; with `expected`, computed with its algorithm and required to equal
 * it. `what` names the content in the message ("manifest", "config blob").
 */
export const verifyContent = (
  what: string,
  ref: string,
  bytes: Uint8Array,
  expected?: { readonly digest?: Digest | undefined; readonly size?: number | undefined },
): Either.Either<Digest, RegistryError> => {
  const { actual, problem } = checkContent(bytes, expected)
  if (problem?.kind === "digest") {
    return Either.left(
      new RegistryError({
        code: "DigestMismatch",
        ref,
        message: `${ref}: the ${what} served for ${expected?.digest} hashes to ${actual}; the registry (or something between) served wrong content, so it was refused; try again, and report it to the registry's operator if it persists`,
      }),
    )
  }
  if (problem?.kind === "size") {
    return Either.left(
      new RegistryError({
        code: "DigestMismatch",
        ref,
        message: `${ref}: the ${what} ${actual} is ${bytes.length} bytes but its descriptor says ${expected?.size}; refusing it`,
      }),
    )
  }
  return Either.right(actual)
}
