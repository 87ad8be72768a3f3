// Run by Deno.test.ts under `deno run`: the pipeline on Deno, whose node:zlib zstd decoder stops
// after one frame (so every zstd:chunked frame gets its own decoder). Prints one JSON line per case.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import process from "node:process"
import { Effect, Either } from "effect"
import { ingestLayer } from "../../../src/extract/LayerIngest.ts"
import { Syscalls, SyscallsLive } from "../../../src/sys/Syscalls.ts"
import { estargzBlob, layerBlob, rawTar, type RawEntry, sha256, type TestBlob, zstdChunkedBlob } from "../../lib/tars.ts"
import { walkTree } from "../../lib/tree.ts"

const sys = await Effect.runPromise(Effect.provide(Syscalls, SyscallsLive))
const CAP = new Uint8Array([1, 0, 0, 2, 0, 0x20, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
const entries: ReadonlyArray<RawEntry> = [
  { name: "d/", type: "dir", mode: 0o750, uid: 5 },
  { name: "d/f", content: "x".repeat(100000), mode: 0o4755 },
  // big enough for the disk hints (Writeback.ts): the Deno binding of sync_file_range runs
  { name: "big", content: "y".repeat(9 * 1024 * 1024 + 17) },
  { name: "d/l", type: "symlink", linkname: "f" },
  { name: "d/h", type: "link", linkname: "d/f" },
  { name: "d/.wh.gone" },
  { name: "d/.wh..wh..opq" },
  { name: "dev/c", type: "char", devmajor: 1, devminor: 5 },
  { name: "x", content: "cap", xattrs: { "security.capability": CAP, "user.a": "b" } },
  ...Array.from({ length: 300 }, (_, i) => ({ name: `many/f${i}`, content: `${i}\n`.repeat(i) })),
]
const cut = (b: TestBlob, n: number): TestBlob => {
  const blob = b.blob.subarray(0, b.blob.length - n)
  return { ...b, blob, digest: sha256(blob), size: blob.length }
}
const cases: Array<[string, TestBlob]> = [
  ["none", layerBlob(rawTar(entries), "none")],
  ["gzip", layerBlob(rawTar(entries), "gzip")],
  ["zstd", layerBlob(rawTar(entries), "zstd")],
  ["zstd:chunked", zstdChunkedBlob(entries)],
  ["zstd:chunked-footer", zstdChunkedBlob(entries, { position: false, leadingSkippable: true })],
  ["estargz", estargzBlob(entries)],
  ["truncated-zstd", cut(layerBlob(rawTar(entries), "zstd"), 3)],
]
for (const [name, b] of cases) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "als-deno-"))
  try {
    fs.mkdirSync(path.join(root, "diff"))
    const r = await Effect.runPromise(
      ingestLayer({
        source: (async function*() {
          for (let i = 0; i < b.blob.length; i += 1000) yield b.blob.subarray(i, i + 1000)
        })(),
        digest: b.digest,
        size: b.size,
        mediaType: b.mediaType,
        diffId: b.diffId,
        annotations: b.annotations,
        blobPath: path.join(root, "blob"),
        diffDir: path.join(root, "diff"),
      }).pipe(Effect.provideService(Syscalls, sys), Effect.either),
    )
    if (Either.isLeft(r)) {
      console.log(JSON.stringify({ name, error: (r.left as { code?: string }).code }))
      continue
    }
    const tree = walkTree(path.join(root, "diff"), sys)
      .filter((e) => e.path !== "." && e.path !== "stargz.index.json")
      .map(({ mtime: _, ...e }) => e)
    console.log(JSON.stringify({ name, compression: r.right.compression, toc: r.right.tocDigest !== undefined, tree }))
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}
process.exit(0)
