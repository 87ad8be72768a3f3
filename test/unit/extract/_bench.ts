import * as fs from "node:fs"
import * as path from "node:path"
import { pipeline } from "node:stream/promises"
import { Readable } from "node:stream"
import * as zlib from "node:zlib"
import { Effect, Either } from "effect"
import { ingestLayer } from "../../../src/extract/LayerIngest.ts"
import { Syscalls, SyscallsLive } from "../../../src/sys/Syscalls.ts"
import { layerBlob, rawEntry, streamTar, TAR_END, tee } from "../../lib/tars.ts"
const sys = await Effect.runPromise(Effect.provide(Syscalls, SyscallsLive))
const base = process.argv[2] ?? "/dev/shm"
const REP = Number(process.argv[3] ?? 3)
const only = process.argv[4]
const work = fs.mkdtempSync(path.join(base, "alsb-"))
const MB = 1 << 20
const run = async (source: AsyncIterable<Uint8Array>, d: any, name: string) => {
  const dir = path.join(work, name); fs.mkdirSync(path.join(dir, "diff"), { recursive: true })
  const r = await Effect.runPromise(ingestLayer({ source, ...d, annotations: {}, blobPath: path.join(dir, "blob"), diffDir: path.join(dir, "diff") }).pipe(Effect.provideService(Syscalls, sys), Effect.either))
  if (Either.isLeft(r)) throw r.left
  return r.right
}
try {
  for (const c of (only ? [only] : ["gzip", "zstd", "none"]) as ["gzip"]) {
    const blobFile = path.join(work, "big." + c)
    const tar = tee(streamTar({ bytes: 200 * MB, fileSize: 4 * MB, randomShare: 0.5 }))
    const comp = c === "gzip" ? zlib.createGzip({ level: 1 }) : c === "zstd" ? (zlib as any).createZstdCompress() : new (await import("node:stream")).PassThrough()
    await pipeline(Readable.from(tar.stream), comp, fs.createWriteStream(blobFile))
    const { digest: diffId, size: diffSize } = tar.result()
    const blob = tee(fs.createReadStream(blobFile)); for await (const _ of blob.stream) void _
    const { digest, size } = blob.result()
    let best = 1e9
    for (let k = 0; k < REP; k++) {
    const t0 = performance.now()
    const r = await run(fs.createReadStream(blobFile, { highWaterMark: 65536 }), { digest, size, diffId, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }, "big-" + c)
    best = Math.min(best, (performance.now() - t0) / 1000)
    fs.rmSync(path.join(work, "big-" + c), { recursive: true })
    }
    console.log(`${c}: ${(diffSize/MB).toFixed(0)} MB tar, ${(size/MB).toFixed(0)} MB blob, best ${best.toFixed(2)} s = ${(diffSize/MB/best).toFixed(0)} MB/s`)
    fs.rmSync(blobFile)
  }
  const parts: Uint8Array[] = []
  const N = 20000
  for (let d = 0; d < 20; d++) parts.push(rawEntry({ name: `d${d}/`, type: "dir" }))
  for (let i = 0; i < N; i++) parts.push(rawEntry({ name: `d${i % 20}/file-${i}.txt`, content: `file ${i}\n`.repeat(1 + (i % 100)), uid: i % 3 }))
  parts.push(TAR_END)
  const tarb = Buffer.concat(parts)
  for (const c of ["gzip", "zstd", "none"] as const) {
    const blob = layerBlob(tarb, c)
    let best = 1e9, files = 0
    for (let k = 0; k < REP; k++) {
    const t0 = performance.now()
    const r = await run((async function*() { for (let i = 0; i < blob.blob.length; i += 65536) yield blob.blob.subarray(i, i + 65536) })(), blob, "small-" + c)
    best = Math.min(best, (performance.now() - t0) / 1000); files = r.files
    fs.rmSync(path.join(work, "small-" + c), { recursive: true })
    }
    console.log(`${c} small: ${files} entries best ${best.toFixed(2)} s = ${(files/best).toFixed(0)}/s`)
  }
} finally { fs.rmSync(work, { recursive: true, force: true }) }
