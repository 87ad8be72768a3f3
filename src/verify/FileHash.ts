/**
 * The digest of a whole file, read in 1 MiB pieces: the one file hash behind the audit's deep
 * blob check and the replay's blob and tree fingerprints.
 */
import { Buffer } from "node:buffer"
import { createHash } from "node:crypto"
import * as fs from "node:fs"

/**
 * `<algorithm>:<hex>` of the bytes of `file`. With `noFollow`, a symlink in its place fails
 * (ELOOP) rather than being read through. Throws the fs error.
 */
export const fileDigest = (
  file: string,
  algorithm: "sha256" | "sha512" = "sha256",
  options?: { readonly noFollow?: boolean },
): string => {
  const h = createHash(algorithm)
  const fd = fs.openSync(file, options?.noFollow ? fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW : "r")
  try {
    const buf = Buffer.allocUnsafe(1 << 20)
    for (let n = fs.readSync(fd, buf, 0, buf.length, null); n > 0; n = fs.readSync(fd, buf, 0, buf.length, null)) {
      h.update(buf.subarray(0, n))
    }
  } finally {
    fs.closeSync(fd)
  }
  return `${algorithm}:${h.digest("hex")}`
}
