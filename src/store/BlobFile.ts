/**
 * Saving a blob that is not extracted (a pool shows the tree, the registry gives the blob):
 * streamed to a file while hashed, kept only when digest and size match (verify/Blob.ts).
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { digestAlgorithm, type Digest } from "../domain/Digest.ts"
import { checkBlob } from "../verify/Blob.ts"
import { ioError } from "./errors.ts"

export const saveBlob = (source: AsyncIterable<Uint8Array>, file: string, digest: Digest, size: number) =>
  Effect.tryPromise({
    try: async () => {
      const hash = createHash(digestAlgorithm(digest))
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644)
      fs.fchmodSync(fd, 0o644) // clients read it: whatever the umask
      let n = 0
      try {
        for await (const chunk of source) {
          n += chunk.length
          if (n > size) break
          hash.update(chunk)
          fs.writeSync(fd, chunk)
        }
        fs.fsyncSync(fd)
      } finally {
        fs.closeSync(fd)
      }
      return { n, got: `${digestAlgorithm(digest)}:${hash.digest("hex")}` }
    },
    // the source's typed failures (the registry gave up) pass through; the rest is local I/O
    catch: (e) => (e instanceof Error && "_tag" in e ? (e as Error & { _tag: string }) : ioError("write blob", file)(e)),
  }).pipe(Effect.flatMap(({ n, got }) => {
    const bad = checkBlob(digest, { size: n, digest: got }, { size })
    return bad === undefined ? Effect.succeed(file) : Effect.fail(bad)
  }))
