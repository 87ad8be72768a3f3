// Issue 5: a registry that stops sending. Without --timeout (the stall timeout is
// RegistryConfig.stallTimeoutMs, 60 s; the header timeout requestTimeoutMs, 30 s):
// - through the CLI, one stall mid-blob with the default 60 s: the download gives up on the
//   stalled connection and resumes it (Range), or fails with a clear timeout message;
// - in-process, the pull workflow exactly as `als pull` composes it but with 1 s timeouts:
//   a blob that stalls on every attempt, and a registry that never answers, end in a Timeout
//   failure with a clear message, bounded in time, with nothing committed.

import { describe, expect, test } from "bun:test"
import { Cause, Effect, Exit, Layer, Option } from "effect"
import * as os from "node:os"
import { describeFailure } from "../../../src/cli/render.ts"
import { hostPlatform } from "../../../src/domain/Platform.ts"
import { Journal, ReporterSilent } from "../../../src/events/Journal.ts"
import { storeLayer } from "../../../src/Layers.ts"
import { Keychain } from "../../../src/registry/Keychain.ts"
import { RegistryClient } from "../../../src/registry/RegistryClient.ts"
import { defaultRegistryConfig, RegistryConfig, type RegistryConfigShape } from "../../../src/registry/RegistryConfig.ts"
import { RegistryTransport } from "../../../src/registry/RegistryTransport.ts"
import { LayerStore } from "../../../src/store/LayerStore.ts"
import { registrySource } from "../../../src/workflows/ImageSource.ts"
import { pullImage } from "../../../src/workflows/Pull.ts"
import { als, eventsOf } from "../../lib/als.ts"
import { faultFixture } from "../../lib/faultFixture.ts"
import { blobPath, type FaultRule } from "../../lib/faultProxy.ts"
import {
  expectConsistentStore,
  layerMap,
  lockEntries,
  MIN,
  readLog,
  stagingEntries,
} from "../crash/support.ts"

const fx = faultFixture("faults/stall", 512 << 10)
const BIG = fx.big

/** `als pull` as PullCommand composes it, with registry knobs the CLI does not expose. */
const pullInProcess = async (root: string, ref: string, knobs: Partial<RegistryConfigShape>) => {
  const config: RegistryConfigShape = { ...defaultRegistryConfig, tlsVerify: false, ...knobs }
  const registryLayer = RegistryClient.Default.pipe(
    Layer.provide(Layer.mergeAll(RegistryTransport.Live, Keychain.layer({}), Layer.succeed(RegistryConfig, config))),
  )
  const program = Effect.gen(function*() {
    const store = yield* LayerStore
    const journal = yield* Journal
    yield* store.init()
    yield* store.cleanStaging()
    const platform = hostPlatform(os.arch())
    const source = yield* registrySource(ref)
    return yield* journal.workflow(pullImage(source, { platform, pools: [{ kind: "seed", dir: store.paths.pool }], jobs: 4 }))
  }).pipe(Effect.provide(Layer.merge(storeLayer(root, ReporterSilent), registryLayer)))
  const started = Date.now()
  const exit = await Effect.runPromiseExit(program)
  const ms = Date.now() - started
  if (Exit.isSuccess(exit)) return { ok: true as const, ms }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`the pull died: ${Cause.pretty(exit.cause)}`)
  return { ok: false as const, ms, ...describeFailure(failure.value) }
}

const withRules = (rules: ReadonlyArray<FaultRule>) => {
  fx.proxy.reset()
  fx.proxy.setRules(rules)
}

const expectNothingLeft = async (root: string, what: string) => {
  const state = await expectConsistentStore(root, layerMap(fx.img), what)
  expect(state.committed).not.toContain(BIG())
  expect(stagingEntries(root)).toEqual([])
  expect(lockEntries(root)).toEqual([])
  const log = await readLog(root)
  const failed = eventsOf(log, "PullFailed")
  expect(failed.length).toBe(1)
  expect((failed[0]!.reason as { code: string }).code).toBe("Timeout")
}

describe("a stalled registry", () => {
  test("als pull: a blob that stalls once mid-body (default 60 s stall timeout) is resumed, or fails clearly", async () => {
    const root = fx.left.tempDir("stall-cli")
    withRules([{ path: blobPath(BIG()), attempts: 1, fault: { kind: "cut", afterBytes: 64 << 10, end: "stall" } }])
    const started = Date.now()
    const r = await als(["pull", "--root", root, "--tls-verify=false", fx.ref()], { timeoutMs: 3 * MIN })
    const ms = Date.now() - started
    fx.proxy.setRules([])
    const tries = fx.proxy.requestsFor(blobPath(BIG()))
    console.log(`stall once: exit ${r.exitCode} after ${ms} ms; requests: ${tries.map((q) => `${q.headers.range ?? "whole"} → ${q.status} (${q.bytesSent} B)`).join(", ")}`)
    // the stall was waited out, not ignored
    expect(ms).toBeGreaterThanOrEqual(defaultRegistryConfig.stallTimeoutMs)
    if (r.exitCode === 0) {
      const state = await expectConsistentStore(root, layerMap(fx.img), "stall once, resumed")
      expect(state.committed).toContain(BIG())
      expect(tries.length).toBe(2)
      expect(tries[1]!.headers.range).toMatch(/^bytes=[1-9]\d*-$/)
    } else {
      expect({ exit: r.exitCode, out: r.stderr }).toMatchObject({ exit: 3 })
      expect(r.stderr).toMatch(/stalled|did not answer|timed? ?out/i)
      await expectNothingLeft(root, "stall once")
    }
  }, 3 * MIN)

  test("in-process, 1 s timeouts: a blob that stalls on every attempt fails with Timeout, bounded", async () => {
    const root = fx.left.tempDir("stall-always")
    withRules([{ path: blobPath(BIG()), fault: { kind: "cut", afterBytes: 16 << 10, end: "stall" } }])
    const r = await pullInProcess(root, fx.ref(), { stallTimeoutMs: 1000, requestTimeoutMs: 1000 })
    fx.proxy.setRules([])
    const tries = fx.proxy.requestsFor(blobPath(BIG()))
    console.log(`stall always: ${JSON.stringify(r)}; ${tries.length} requests`)
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect({ code: r.code, message: r.message }).toMatchObject({ code: 3 })
    expect(r.message).toMatch(/stalled for 1 s/)
    expect(r.message).toMatch(/try again/)
    expect(r.message).toContain(BIG())
    expect(tries.length).toBeGreaterThanOrEqual(2)
    expect(tries.length).toBeLessThanOrEqual(12)
    expect(r.ms).toBeLessThan(60_000)
    await expectNothingLeft(root, "stall always")
  }, 2 * MIN)

  test("in-process, 1 s timeouts: a registry that never answers a blob request fails with Timeout once the 1 s is up", async () => {
    const root = fx.left.tempDir("hang")
    withRules([{ path: blobPath(BIG()), fault: { kind: "hang" } }])
    const r = await pullInProcess(root, fx.ref(), { stallTimeoutMs: 1000, requestTimeoutMs: 1000, retryBaseMs: 50 })
    fx.proxy.setRules([])
    const tries = fx.proxy.requestsFor(blobPath(BIG()))
    console.log(`hang: ${JSON.stringify(r)}; ${tries.length} requests`)
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.code).toBe(3)
    expect(r.message).toMatch(/did not answer/)
    expect(r.message).toContain(BIG())
    // the one request used the whole request timeout: no retry after it (issue 11, class 5)
    expect(tries.length).toBe(1)
    expect(r.ms).toBeLessThan(1000 + 10_000)
    await expectNothingLeft(root, "hang")
  }, 2 * MIN)
})
