// Class 7 (issue 11): SIGINT or SIGTERM during a pull. The pull is held mid-blob by a fault
// proxy in front of the real registry (the big layer's body stalls after 64 KiB), so it has
// staging and a layer lock when the signal comes. Afterwards: exit 130 (SIGINT) or 143
// (SIGTERM), one line on stderr saying so, the staging empty, no lock left, a PullFailed with
// reason code "interrupted" in the log, `als audit` clean, and a later pull completes.
// `als log -f` ended by SIGINT exits 130.
import { describe, expect, test } from "bun:test"
import { als, alsCommand, alsLog, alsOk, describeResult } from "../../lib/als.ts"
import { faultFixture, stagedBlobBytes } from "../../lib/faultFixture.ts"
import { blobPath } from "../../lib/faultProxy.ts"
import { lockEntries, MIN, pollFor, spawnAls, stagingEntries } from "../crash/support.ts"

const fx = faultFixture("signals/app", 1 << 20)
const BIG = fx.big

const interruptedPull = async (signal: "SIGINT" | "SIGTERM", status: number) => {
  const root = fx.left.tempDir(`sig-${signal}`)
  fx.proxy.reset()
  // the big blob's body stops after 64 KiB and the connection stays open: the pull waits
  fx.proxy.setRules([{ path: blobPath(BIG()), fault: { kind: "cut", afterBytes: 64 << 10, end: "stall" } }])
  const p = await spawnAls(["pull", "--root", root, "--tls-verify=false", "--timeout", "600", fx.ref()], fx.left)
  // mid-pull: a blob partly staged and a layer lock held (a pull that ended first fails here,
  // with what it printed)
  let ended: Awaited<typeof p.done> | undefined
  void p.done.then((r) => {
    ended = r
  })
  await pollFor("the big blob partly staged", () => (stagedBlobBytes(root) > 0 || ended ? true : undefined), 4 * MIN, 20)
  expect(ended, ended && describeResult(ended)).toBeUndefined()
  expect(lockEntries(root).length, "a layer lock is held mid-pull").toBeGreaterThan(0)
  const sentAt = Date.now()
  p.proc.kill(signal)
  const r = await p.done
  const took = Date.now() - sentAt
  fx.proxy.setRules([])

  expect(r.exitCode, describeResult(r)).toBe(status)
  const lines = r.stderr.trimEnd().split("\n")
  expect(lines.filter((l) => l.includes("interrupted")), describeResult(r)).toEqual([`als: interrupted (${signal})`])
  expect(lines.at(-1)).toBe(`als: interrupted (${signal})`)
  // finalizers ran well within the hard bound (5 s), not the bound
  expect(r.stderr).not.toContain("exiting anyway")
  expect(took).toBeLessThan(30_000)

  expect(stagingEntries(root), "staging left behind").toEqual([])
  expect(lockEntries(root), "locks left behind").toEqual([])
  const log = await alsLog(root)
  const failed = log.filter((e) => e.type === "PullFailed")
  expect(failed.length, JSON.stringify(log, null, 1)).toBe(1)
  expect((failed[0]!.reason as { code: string }).code).toBe("interrupted")
  expect(failed[0]!.ref).toBe(fx.ref())
  expect(log.some((e) => e.type === "PullCompleted")).toBe(false)
  const audit = await als(["audit", "--root", root])
  expect(audit.exitCode, describeResult(audit)).toBe(0)

  // the store is usable: the same pull, unhindered, completes
  await alsOk(["pull", "--root", root, "--tls-verify=false", fx.ref()])
  const after = await alsLog(root)
  expect(after.filter((e) => e.type === "PullCompleted").length).toBe(1)
}

describe("signals during a pull", () => {
  test("SIGINT: staging removed, locks released, PullFailed interrupted logged, exit 130", async () => {
    await interruptedPull("SIGINT", 130)
  }, 5 * MIN)

  test("SIGTERM: the same, exit 143", async () => {
    await interruptedPull("SIGTERM", 143)
  }, 5 * MIN)
})

describe("signals during als log --follow", () => {
  test("Ctrl-C (SIGINT) ends als log -f with exit 130", async () => {
    const root = fx.left.tempDir("sig-follow")
    await alsOk(["init", "--root", root])
    const prefix = await alsCommand()
    const cmd = prefix[0] === "npx" ? [process.execPath, ...prefix.slice(2)] : [...prefix]
    const proc = Bun.spawn([...cmd, "log", "--root", root, "-f"], { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, NO_COLOR: "1" } })
    fx.left.procs.add(proc)
    // read stdout as it comes: once the existing events are printed, --follow is polling
    let out = ""
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    while (!out.includes("StoreInitialized")) {
      const { value, done } = await reader.read()
      if (done) break
      out += decoder.decode(value)
    }
    expect(out).toContain("StoreInitialized")
    proc.kill("SIGINT")
    const exitCode = await proc.exited
    fx.left.procs.delete(proc)
    const stderr = await new Response(proc.stderr as ReadableStream).text()
    expect({ exitCode, signalCode: proc.signalCode, stderr }).toEqual({ exitCode: 130, signalCode: null, stderr: "als: interrupted (SIGINT)\n" })
  }, 2 * MIN)
})
