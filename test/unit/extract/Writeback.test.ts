import { describe, expect, test } from "bun:test"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ingestLayer } from "../../../src/extract/LayerIngest.ts"
import { Writeback, WRITEBACK_MIN_FILE, WRITEBACK_STEP } from "../../../src/extract/Writeback.ts"
import { Syscalls, type SyscallsApi } from "../../../src/sys/Syscalls.ts"
import { layerBlob, rawTar } from "../../lib/tars.ts"
import { inputFor, sandbox, sys } from "./harness.ts"

type Hint = readonly [fd: number, offset: number, length: number]

const recorder = () => {
  const hints: Array<Hint> = []
  return { hints, start: (fd: number, offset: number, length: number) => void hints.push([fd, offset, length]) }
}

describe("Writeback: which ranges of a file get a head start", () => {
  test("every WRITEBACK_STEP bytes of a big file, then its tail at close, ranges back to back", () => {
    const r = recorder()
    const w = new Writeback(r.start)
    w.opened(7)
    const chunk = 1024 * 1024
    const total = 2 * WRITEBACK_STEP + 3 * chunk
    for (let n = 0; n < total; n += chunk) w.wrote(chunk)
    w.closing()
    expect(r.hints).toEqual([
      [7, 0, WRITEBACK_STEP],
      [7, WRITEBACK_STEP, WRITEBACK_STEP],
      [7, 2 * WRITEBACK_STEP, 3 * chunk],
    ])
  })

  test("a small file gets none; a file of WRITEBACK_MIN_FILE gets one at close; each file starts at 0", () => {
    const r = recorder()
    const w = new Writeback(r.start)
    w.opened(3)
    w.wrote(WRITEBACK_MIN_FILE - 1)
    w.closing()
    expect(r.hints).toEqual([])
    w.opened(4)
    w.wrote(WRITEBACK_MIN_FILE)
    w.closing()
    w.closing() // a second close of the same file hints nothing more
    expect(r.hints).toEqual([[4, 0, WRITEBACK_MIN_FILE]])
  })

  test("a file whose last step ended exactly at its end gets no empty tail hint", () => {
    const r = recorder()
    const w = new Writeback(r.start)
    w.opened(5)
    w.wrote(WRITEBACK_STEP)
    w.closing()
    expect(r.hints).toEqual([[5, 0, WRITEBACK_STEP]])
  })
})

describe("a layer's big files and its blob are handed to the disk while the layer is extracted", () => {
  test("the hints name the blob and the big file (by their open fds), cover them whole, and the tree is unchanged", async () => {
    const big = new Uint8Array(WRITEBACK_STEP + 3 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24)
    const blob = layerBlob(
      rawTar([
        { name: "small", content: "x".repeat(1000) },
        { name: "big", content: big },
      ]),
      "none",
    )
    const box = sandbox()
    const seen: Array<{ file: string; offset: number; length: number }> = []
    const spy: SyscallsApi = {
      ...sys,
      startWriteback: (fd, offset, length) => {
        seen.push({ file: fs.readlinkSync(`/proc/self/fd/${fd}`), offset, length })
        return sys.startWriteback(fd, offset, length)
      },
    }
    try {
      const r = await Effect.runPromise(
        ingestLayer(inputFor(blob, box, { chunkSize: 256 * 1024 })).pipe(Effect.provideService(Syscalls, spy), Effect.either),
      )
      expect(Either.isRight(r)).toBe(true)
      const covered = (file: string) =>
        seen.filter((s) => s.file === file).reduce((at, s) => (s.offset === at ? at + s.length : -1), 0)
      expect(covered(path.join(box.diffDir, "big"))).toBe(big.length)
      expect(covered(box.blobPath)).toBe(blob.size)
      expect(seen.some((s) => s.file.endsWith("/small"))).toBe(false)
      expect(Buffer.compare(fs.readFileSync(path.join(box.diffDir, "big")), Buffer.from(big))).toBe(0)
      box.assertUntouched()
    } finally {
      box.cleanup()
    }
  })

  test("the hint reaches the kernel: an open file takes it, a closed fd refuses it (EBADF) without a throw", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-writeback-"))
    try {
      const fd = fs.openSync(path.join(dir, "f"), "w")
      fs.writeSync(fd, new Uint8Array(2 * 1024 * 1024))
      expect(sys.startWriteback(fd, 0, 2 * 1024 * 1024)).toBe(true)
      fs.closeSync(fd)
      expect(sys.startWriteback(fd, 0, 4096)).toBe(false)
      expect(fs.statSync(path.join(dir, "f")).size).toBe(2 * 1024 * 1024)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
