// lookupLayer carries out decide's last step for its caller: with an image to pull from
// (`canPull`, as Pull.ts and serve's Resolver ask) a layer neither stored nor in a pool is
// "Pull", else "Missing", with the same events either way. The real store on a temp dir.
import { afterAll, describe, expect, test } from "bun:test"
import { Effect, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Digest } from "../../../src/domain/Digest.ts"
import { EventLog } from "../../../src/events/EventLog.ts"
import { ReporterSilent } from "../../../src/events/Journal.ts"
import { storeLayer } from "../../../src/Layers.ts"
import { LayerStore } from "../../../src/store/LayerStore.ts"
import { lookupLayer } from "../../../src/workflows/Lookup.ts"

const roots: string[] = []
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true })
})

const D = `sha256:${"c".repeat(64)}` as Digest

/** Looks D up in a fresh store whose seed pool is empty; the result and the events' tags. */
const lookUp = (canPull: boolean | undefined) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "als-lookup-plan-"))
  roots.push(root)
  return Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* LayerStore
      yield* store.init()
      const result = yield* lookupLayer({ digest: D, pools: [{ kind: "seed", dir: store.paths.pool }], canPull })
      const events = yield* Stream.runCollect((yield* EventLog).stream())
      return { result, tags: [...events].map((e) => e.event._tag) }
    }).pipe(Effect.provide(storeLayer(root, ReporterSilent))),
  )
}

describe("lookup with and without an image to pull from", () => {
  test("given nothing stored and no pool has it, when the caller can pull, then the plan is Pull (LayerMissing logged)", async () => {
    const { result, tags } = await lookUp(true)
    expect(result).toEqual({ _tag: "Pull", refused: [] })
    expect(tags).toEqual(["LookupRequested", "PoolProbed", "LayerMissing"])
  })

  test("given the same, when the caller cannot pull, then it is Missing, with the same events", async () => {
    for (const canPull of [false, undefined]) {
      const { result, tags } = await lookUp(canPull)
      expect(result).toEqual({ _tag: "Missing", refused: [] })
      expect(tags).toEqual(["LookupRequested", "PoolProbed", "LayerMissing"])
    }
  })
})
