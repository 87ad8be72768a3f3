// A TOC claim checked against a blob file (the check for layers linked from a pool, where no
// stream passes through ingest): zstd:chunked by its footer or position, eStargz by its footer.
import { afterAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseDigest } from "../../../src/domain/Digest.ts"
import { tocClaimsOf, verifyTocOfFile } from "../../../src/verify/Toc.ts"
import { estargzBlob, layerBlob, rawTar, type RawEntry, sha256, zstdChunkedBlob } from "../../lib/tars.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-toc-file-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const write = (name: string, b: Uint8Array) => {
  const p = path.join(dir, name)
  fs.writeFileSync(p, b)
  return p
}
const entries: ReadonlyArray<RawEntry> = [
  { name: "bin/", type: "dir", mode: 0o755 },
  { name: "bin/app", content: "a".repeat(3000), mode: 0o755 },
  { name: "etc/conf", content: "k=v\n" },
]
const bogus = parseDigest(sha256(new TextEncoder().encode("not the toc")))

describe("zstd:chunked", () => {
  const z = zstdChunkedBlob(entries)
  const file = write("z", z.blob)
  const claim = tocClaimsOf(z.digest, z.annotations).claims[0]!

  test("the annotation's claim, with its position, is Verified", () => {
    expect(verifyTocOfFile(file, z.size, "zstd", claim)).toEqual({ _tag: "Verified", digest: claim.digest })
  })

  test("without a position (a pool info's claim) the footer gives the range", () => {
    expect(verifyTocOfFile(file, z.size, "zstd", { digest: claim.digest, from: "pool info" })._tag).toBe("Verified")
  })

  test("a claim of another digest is Unverified, with the digest found", () => {
    const r = verifyTocOfFile(file, z.size, "zstd", { digest: bogus, from: "pool info" })
    expect(r).toEqual({ _tag: "Unverified", reason: expect.stringContaining(claim.digest) })
  })
})

describe("eStargz", () => {
  const e = estargzBlob(entries)
  const file = write("e", e.blob)
  const claim = tocClaimsOf(e.digest, e.annotations).claims[0]!

  test("the annotation's claim is Verified through the footer's TOC offset", () => {
    expect(claim.digest).toBe(parseDigest(sha256(e.toc)))
    expect(verifyTocOfFile(file, e.size, "gzip", claim)).toEqual({ _tag: "Verified", digest: claim.digest })
  })

  test("a forged claim is Unverified", () => {
    expect(verifyTocOfFile(file, e.size, "gzip", { digest: bogus, from: "annotation", kind: "estargz" })._tag).toBe("Unverified")
  })
})

describe("blobs without a TOC", () => {
  test("a plain gzip layer proves no TOC claim, whatever its kind", () => {
    const g = layerBlob(rawTar([{ name: "x", content: "x" }]), "gzip")
    const file = write("g", g.blob)
    expect(verifyTocOfFile(file, g.size, "gzip", { digest: bogus, from: "pool info" })._tag).toBe("Unverified")
    expect(verifyTocOfFile(file, g.size, "gzip", { digest: bogus, from: "annotation", kind: "zstd:chunked" })._tag).toBe("Unverified")
    expect(verifyTocOfFile(file, g.size, "none", { digest: bogus, from: "pool info" })._tag).toBe("Unverified")
  })

  test("a blob path that is a FIFO is not read (Unverified at once)", () => {
    const fifo = path.join(dir, "fifo")
    execFileSync("mkfifo", [fifo])
    expect(verifyTocOfFile(fifo, 100, "zstd", { digest: bogus, from: "pool info" })._tag).toBe("Unverified")
  })
})

describe("annotations", () => {
  test("a malformed TOC annotation is returned apart, never as a claim", () => {
    const r = tocClaimsOf(bogus, { "io.github.containers.zstd-chunked.manifest-checksum": "sha256:../../etc" })
    expect(r.claims).toEqual([])
    expect(r.malformed?.value).toBe("sha256:../../etc")
  })
})
