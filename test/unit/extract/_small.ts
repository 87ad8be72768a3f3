import * as fs from "node:fs"
import * as path from "node:path"
import { Effect, Either } from "effect"
import { ingestLayer } from "../../../src/extract/LayerIngest.ts"
import { Syscalls, SyscallsLive } from "../../../src/sys/Syscalls.ts"
import { layerBlob, rawEntry, TAR_END } from "../../lib/tars.ts"
const sys = await Effect.runPromise(Effect.provide(Syscalls, SyscallsLive))
const base = process.argv[2] ?? "/dev/shm"
const c = (process.argv[3] ?? "none") as "none"
const REP = Number(process.argv[4] ?? 5)
const work = fs.mkdtempSync(path.join(base, "alss-"))
const parts: Uint8Array[] = []
const N = 20000
for (let d = 0; d < 20; d++) parts.push(rawEntry({ name: `d${d}/`, type: "dir" }))
for (let i = 0; i < N; i++) parts.push(rawEntry({ name: `d${i % 20}/file-${i}.txt`, content: `file ${i}\n`.repeat(1 + (i % 100)), uid: i % 3 }))
parts.push(TAR_END)
const blob = layerBlob(Buffer.concat(parts), c)
const times: string[] = []
for (let k = 0; k < REP; k++) {
  const dir = path.join(work, "x" + k); fs.mkdirSync(path.join(dir, "diff"), { recursive: true })
  const t0 = performance.now()
  const r = await Effect.runPromise(ingestLayer({ source: (async function*() { for (let i = 0; i < blob.blob.length; i += 65536) yield blob.blob.subarray(i, i + 65536) })(), ...blob, blobPath: path.join(dir, "blob"), diffDir: path.join(dir, "diff") }).pipe(Effect.provideService(Syscalls, sys), Effect.either))
  if (Either.isLeft(r)) throw r.left
  times.push(((performance.now() - t0)).toFixed(0))
  fs.rmSync(dir, { recursive: true })
}
console.log(c, "ms per 20k:", times.join(" "))
fs.rmSync(work, { recursive: true })
