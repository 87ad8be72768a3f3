// Issue 11 class 5, for downloads that break: a registry that sends some bytes of a blob and
// then resets the connection, every time, must not keep a pull alive past its bound. The
// resumes share one deadline from the first break: --timeout plus 1 s per 64 KiB still missing
// (src/workflows/ResumableBlob.ts, documented in docs/security.md#network). Before, every
// attempt started its own stall window: 5 resumes of ~8 s each plus 15.5 s of backoff here.

import { expect, test } from "bun:test"
import { als, describeResult, eventsOf } from "../../lib/als.ts"
import { faultFixture } from "../../lib/faultFixture.ts"
import { blobPath } from "../../lib/faultProxy.ts"
import { expectConsistentStore, layerMap, lockEntries, MIN, readLog, stagingEntries } from "../crash/support.ts"

const fx = faultFixture("faults/resume", 512 << 10)

const TIMEOUT_S = 3
/** the documented bound: --timeout plus 1 s per 64 KiB missing (at most the whole blob) */
const boundMs = () => TIMEOUT_S * 1000 + Math.ceil((fx.img.layers[1]!.size * 1000) / (64 << 10))
/** room for a busy machine: the first attempt, backoffs rounding, the clean-up and the exit */
const MARGIN_MS = 15_000

test("a registry that sends a few KiB of a blob then resets, every time: the pull ends within --timeout + 1 s per 64 KiB missing, exit 3, saying so", async () => {
  const big = fx.img.layers[1]!.digest
  const root = fx.left.tempDir("resume-bound")
  fx.proxy.reset()
  fx.proxy.setRules([
    // the first answer breaks at once; every resume trickles 16 KiB (fast enough not to count
    // as a stall: 2 KiB/s against 1 KiB per 3 s window) and is reset
    { path: blobPath(big), attempts: 1, fault: { kind: "cut", afterBytes: 8 << 10, end: "reset" } },
    { path: blobPath(big), fault: { kind: "cut", afterBytes: 16 << 10, bytesPerSecond: 2048, end: "reset" } },
  ])
  const started = Date.now()
  const r = await als(["pull", "--root", root, "--tls-verify=false", "--timeout", String(TIMEOUT_S), fx.ref()], { timeoutMs: 3 * MIN })
  const ended = Date.now()
  fx.proxy.setRules([])
  const tries = fx.proxy.requestsFor(blobPath(big))
  // the bound runs from the first break: timed from the blob's first request (process start,
  // slow on a busy machine, is not the resumes' doing)
  const ms = ended - (tries[0]?.at ?? started)
  console.log(
    `reset after a few KiB, forever: exit ${r.exitCode} ${ms} ms after the first blob request, ${ended - started} ms in all (bound ${boundMs()} ms + ${MARGIN_MS} ms); ` +
      `requests: ${tries.map((q) => `+${q.at - started} ms ${q.headers.range ?? "whole"} → ${q.bytesSent} B`).join(", ")}; ` +
      r.stderr.trim().split("\n").join(" | "),
  )
  expect({ exit: r.exitCode, out: describeResult(r) }).toEqual({ exit: 3, out: expect.stringContaining("kept breaking") })
  expect(ms).toBeLessThan(boundMs() + MARGIN_MS)
  // it did resume (with Range) before giving up: the bound is on the resumes, not instead of them
  expect(tries.length).toBeGreaterThanOrEqual(2)
  expect(tries[1]!.headers.range).toMatch(/^bytes=\d+-$/)
  // the message says what happened and what to do
  expect(r.stderr).toContain(big)
  expect(r.stderr).toMatch(/--timeout 3 s plus 1 s per 64 KiB missing/)
  expect(r.stderr).toMatch(/raise --timeout/)
  // a clean failure: logged as a Timeout, nothing of the blob kept
  const log = await readLog(root)
  const failed = eventsOf(log, "PullFailed")
  expect(failed.length).toBe(1)
  expect((failed[0]!.reason as { code: string }).code).toBe("Timeout")
  expect(eventsOf(log, "PullCompleted")).toEqual([])
  const state = await expectConsistentStore(root, layerMap(fx.img), "resume bound")
  expect(state.committed).not.toContain(big)
  expect(stagingEntries(root)).toEqual([])
  expect(lockEntries(root)).toEqual([])
}, 3 * MIN)
