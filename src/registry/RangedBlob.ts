/**
 * A blob's body from an offset: the answer to a Range request read as a registry may give it
 * (206 with a Content-Range that must start where we asked, or a 200 with the whole blob,
 * whose first `offset` bytes are then skipped), and body failures turned into RegistryErrors.
 * With a `length` the request is bounded (`bytes=offset-end`) and the body is cut at the bound
 * whatever the registry sends: a lazy chunk read costs the chunk's bytes, not the blob's rest.
 */
import { Either } from "effect"
import type { Digest } from "../domain/Digest.ts"
import { type BodyFailure, bodyChunks, type Sent } from "./Http.ts"
import { bodyError, err, hostOf } from "./Messages.ts"
import type { RegistryError } from "./RegistryError.ts"

export interface BlobStream {
  /** the whole blob's size, when the registry says */
  readonly size?: number | undefined
  /** where `body` starts in the blob */
  readonly offset: number
  /** the bytes from `offset` on; a broken or stalled transfer throws a RegistryError */
  readonly body: AsyncIterable<Uint8Array>
  /** the --timeout this transfer runs under (stallTimeoutMs): resumes share a deadline from it */
  readonly timeoutMs?: number | undefined
}

/**
 * The `Range` header asking for the blob from `offset` on (none from the start), or for exactly
 * `length` bytes from `offset` when a length is given.
 */
export const rangeHeaders = (offset: number, length?: number): Record<string, string> =>
  length !== undefined && length > 0
    ? { range: `bytes=${offset}-${offset + length - 1}` }
    : offset > 0
    ? { range: `bytes=${offset}-` }
    : {}

/** How the answer covers the blob: its whole size if known, and how many bytes to drop first. */
export const rangeAnswer = (
  label: string,
  digest: Digest,
  sent: Sent,
  offset: number,
): Either.Either<{ readonly size: number | undefined; readonly skip: number }, RegistryError> => {
  const res = sent.response
  if (res.status === 206) {
    const range = res.headers.get("content-range")
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(range ?? "")
    if (!m || Number(m[1]) !== offset) {
      return Either.left(err("BadResponse", label, `${label}: ${hostOf(sent.url)} answered a range request for blob ${digest} with Content-Range ${JSON.stringify(range)}`))
    }
    return Either.right({ size: m[3] === "*" ? undefined : Number(m[3]), skip: 0 })
  }
  const length = res.headers.get("content-length")
  const size = length !== null && /^\d+$/.test(length) ? Number(length) : undefined
  if (size !== undefined && offset > size) {
    return Either.left(err("BadResponse", label, `${label}: offset ${offset} is past the end of blob ${digest} (${size} bytes)`))
  }
  // the server ignored Range: drop the bytes the caller already has
  return Either.right({ size, skip: offset })
}

/**
 * The body's chunks after the first `skip` bytes, at most `limit` of them (the rest is not read:
 * leaving the loop cancels the transfer); a failed transfer throws a RegistryError.
 */
export async function* blobBody(
  label: string,
  digest: Digest,
  sent: Sent,
  skip: number,
  stallMs: number,
  limit = Number.POSITIVE_INFINITY,
): AsyncGenerator<Uint8Array, void, undefined> {
  const toError = bodyError(label, `blob ${digest}`)
  let toSkip = skip
  let left = limit
  try {
    if (left <= 0) return
    for await (const chunk of bodyChunks(sent, stallMs)) {
      if (toSkip >= chunk.byteLength) {
        toSkip -= chunk.byteLength
        continue
      }
      const part = toSkip > 0 ? chunk.subarray(toSkip) : chunk
      toSkip = 0
      if (part.byteLength >= left) {
        yield part.subarray(0, left)
        return
      }
      left -= part.byteLength
      yield part
    }
  } catch (e) {
    throw (e as BodyFailure)?._tag ? toError(e as BodyFailure) : e
  }
}
