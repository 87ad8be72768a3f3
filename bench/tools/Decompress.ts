// The decompression stage alone, for the pipeline limit (bench/PipelineLimit.ts): every blob
// named on the command line decompressed to nowhere, all at once, with node:zlib streams (the
// fastest decoder on this runtime: BENCHMARKING.md), as `als pull` decompresses its layers.
//
//   bun bench/tools/Decompress.ts gzip:FILE zstd:FILE …

import { createReadStream } from "node:fs"
import type { Transform } from "node:stream"
import * as zlib from "node:zlib"

const z = zlib as typeof zlib & { createZstdDecompress?: (o?: zlib.ZlibOptions) => Transform }
const options = { chunkSize: 128 * 1024 } as zlib.ZlibOptions

const decoder = (kind: string): Transform => {
  if (kind === "gzip") return zlib.createGunzip(options)
  if (kind === "zstd" && z.createZstdDecompress) return z.createZstdDecompress(options)
  throw new Error(`unknown compression ${kind}`)
}

const drain = (kind: string, file: string): Promise<number> =>
  new Promise((resolve, reject) => {
    let n = 0
    const d = decoder(kind)
    d.on("data", (c: Uint8Array) => (n += c.length))
    d.on("end", () => resolve(n))
    d.on("error", reject)
    createReadStream(file, { highWaterMark: 1 << 20 }).on("error", reject).pipe(d)
  })

const jobs = process.argv.slice(2).map((a) => {
  const i = a.indexOf(":")
  return drain(a.slice(0, i), a.slice(i + 1))
})
const sizes = await Promise.all(jobs)
process.stdout.write(`${sizes.reduce((a, b) => a + b, 0)}\n`)
