import { describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SysError } from "../../../src/sys/Syscalls.ts"
import { syncfsOffThread, syncfsThreadRunning, warmSyncfsThread } from "../../../src/sys/SyncfsOffThread.ts"

// the inline path must not be taken under Bun: a call here means the sync ran on this thread
const inline = {
  calls: 0,
  syncfs(_: string) {
    this.calls++
  },
}

describe("syncfs off the main thread", () => {
  test("syncs on a worker thread: the caller's inline syncfs is never called, and a thread is started", async () => {
    // another test file in the same process may have started the thread already, so the
    // thread count before is no baseline; the module says whether its thread runs
    warmSyncfsThread()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-syncfs-"))
    try {
      fs.writeFileSync(path.join(dir, "f"), "x")
      await syncfsOffThread(inline, dir)
      await Promise.all([syncfsOffThread(inline, dir), syncfsOffThread(inline, dir)])
      expect(inline.calls).toBe(0)
      expect(syncfsThreadRunning()).toBe(true)
      expect(fs.readdirSync("/proc/self/task").length).toBeGreaterThan(1)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a path that cannot be opened rejects with a SysError naming the call, the path and the errno", async () => {
    const missing = path.join(os.tmpdir(), "als-syncfs-missing", "nowhere")
    const err = await syncfsOffThread(inline, missing).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(SysError)
    expect((err as SysError).code).toBe("ENOENT")
    expect((err as SysError).call).toBe("open")
    expect((err as SysError).path).toBe(missing)
    expect(inline.calls).toBe(0)
  })
})
