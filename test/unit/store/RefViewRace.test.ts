// Found by a soak run of the suite (gc-race.test.ts): `als gc` prunes empty `:ref` view
// directories (LayerStore.pruneDanglingNames) while a pull names its layers in a view it has
// just created. The pull's rename into the directory then failed with ENOENT (exit 5). Here a
// second process prunes in a loop, as gc does, while this one names 300 fresh views.
import { afterAll, expect, test } from "bun:test"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Digest, parseDigest } from "../../../src/domain/Digest.ts"
import { encodeRef } from "../../../src/domain/StorePaths.ts"
import { makeLayerStore } from "../../../src/store/LayerStore.ts"
import { StoreConfig, storeConfigFor } from "../../../src/store/StoreConfig.ts"
import { SyscallsLive } from "../../../src/sys/Syscalls.ts"
import { REPO_ROOT } from "../../lib/als.ts"

const roots: string[] = []
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true })
})

const pruner = `
const { Effect, Layer } = await import("effect")
const { makeLayerStore } = await import("./src/store/LayerStore.ts")
const { StoreConfig, storeConfigFor } = await import("./src/store/StoreConfig.ts")
const { SyscallsLive } = await import("./src/sys/Syscalls.ts")
const root = process.argv.at(-1)
const env = Layer.merge(Layer.succeed(StoreConfig, storeConfigFor(root)), SyscallsLive)
await Effect.runPromise(Effect.gen(function*() {
  const store = yield* makeLayerStore
  for (let i = 0; ; i++) {
    yield* store.pruneDanglingNames()
    if (i === 0) process.stdout.write("pruning\\n")
  }
}).pipe(Effect.provide(env)))
`

const A: Digest = parseDigest(`sha256:${"a".repeat(64)}`)

test("gc pruning empty ref directories while a pull names its layers: every view is made, none fails", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "als-refrace-"))
  roots.push(root)
  const env = Layer.merge(Layer.succeed(StoreConfig, storeConfigFor(root)), SyscallsLive)
  const ROUNDS = 300
  const made = await Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* makeLayerStore
      yield* store.init()
      yield* Effect.scoped(Effect.gen(function*() {
        const dir = yield* store.stage(A)
        fs.mkdirSync(path.join(dir, "diff"))
        fs.writeFileSync(path.join(dir, "blob"), "x")
        yield* store.commit(dir, { digest: A, size: 1, diffId: A, diffSize: 1, compression: "none" })
      }))
      // gc's pruning, over and over, in another process, for as long as the "pull" runs
      return yield* Effect.acquireUseRelease(
        Effect.promise(async () => {
          const gc = Bun.spawn([process.execPath, "-e", pruner, root], { cwd: REPO_ROOT, stdout: "pipe", stderr: "inherit" })
          // once it prunes
          for (const reader = gc.stdout.getReader(); ;) if ((await reader.read()).value) break
          return gc
        }),
        () =>
          Effect.gen(function*() {
            let n = 0
            for (let i = 0; i < ROUNDS; i++) {
              n += yield* store.indexRef(`127.0.0.1:5000/race/r${i}:1`, [{ key: A, blobDigest: A }])
            }
            return n
          }),
        (gc) =>
          Effect.promise(() => {
            gc.kill()
            return gc.exited
          }),
      )
    }).pipe(Effect.provide(env)) as Effect.Effect<number, unknown, never>,
  )
  expect(made).toBe(ROUNDS)
  for (let i = 0; i < ROUNDS; i++) {
    expect(fs.readlinkSync(path.join(root, encodeRef(`127.0.0.1:5000/race/r${i}:1`), A))).toBe(`../${A}`)
  }
}, 60_000)
