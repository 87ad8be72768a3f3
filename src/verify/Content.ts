/**
 * Manifest and config checks for what the registry hands us: the bytes must hash to the digest
 * we asked for (and, when a descriptor says so, have its size). Pure, so it can be tested with
 * data a real registry would never serve.
 */
import { Either } from "effect"
import { type Digest, digestAlgorithm } from "../domain/Digest.ts"
import { digestBytes } from "../domain/Manifest.ts"
import { RegistryError } from "../registry/RegistryError.ts"

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
  const want = expected?.digest
  const actual = digestBytes(bytes, want ? digestAlgorithm(want) : "sha256")
  if (want !== undefined && actual !== want) {
    return Either.left(
      new RegistryError({
        code: "DigestMismatch",
        ref,
        message: `${ref}: the ${what} served for ${want} hashes to ${actual}; the registry (or something between) served wrong content, so it was refused; try again, and report it to the registry's operator if it persists`,
      }),
    )
  }
  if (expected?.size !== undefined && bytes.length !== expected.size) {
    return Either.left(
      new RegistryError({
        code: "DigestMismatch",
        ref,
        message: `${ref}: the ${what} ${actual} is ${bytes.length} bytes but its descriptor says ${expected.size}; refusing it`,
      }),
    )
  }
  return Either.right(actual)
}
