// Issue 5: `als pull` killed (SIGKILL) at 15 delays spread over a whole pull — which lands
// kills in every phase, lookups, downloads, extraction, commit, log appends, the `:ref` index —
// each into its own store. After every kill no partial layer is visible and `als log` reads the
// log; the pull that follows completes, cleans the dead process's staging and locks, finds the
// layers committed before the kill and fetches only the others.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { als, describeResult } from "../../lib/als.ts"
import { startRegistry, type RegistryHandle } from "../../lib/registry.ts"
import {
  expectConsistentStore,
  expectRecoveryAfterKill,
  gzipLayer,
  kill9,
  layerMap,
  Leftovers,
  manyFilesLayer,
  MIN,
  pushTestImage,
  randomLayer,
  refOf,
  sleep,
  spawnAls,
  stagingEntries,
  zerosLayer,
  type TestImage,
} from "./support.ts"

let registry: RegistryHandle
let img: TestImage
const left = new Leftovers()

beforeAll(async () => {
  registry = await startRegistry()
  img = await pushTestImage(registry.url, "crash/random", "1", [
    gzipLayer([{ name: "etc/first", content: "first\n" }]),
    manyFilesLayer("many", 2000),
    randomLayer("random.bin", 1 << 20),
    zerosLayer("zeros.bin", 8 << 20),
    gzipLayer([{ name: "etc/last", content: "last\n" }]),
  ])
}, 2 * MIN)

afterAll(async () => {
  await left.cleanup()
  await registry?.stop()
}, 2 * MIN)

const KILLS = 15

describe("als pull killed at random points", () => {
  test(`${KILLS} kills spread over a pull: consistent after each, the next pull recovers`, async () => {
    const ref = refOf(registry.host, img)
    // How long a whole pull takes here, process start included.
    const probe = left.tempDir("probe")
    const t0 = Date.now()
    // one layer at a time, so that commits spread over the pull and kills land between them
    const full = await als(["pull", "--root", probe, "--tls-verify=false", "--jobs", "1", ref])
    if (full.exitCode !== 0) throw new Error(describeResult(full))
    const duration = Date.now() - t0

    const outcomes: Array<{ root: string; delay: number; exit: number | null; committed: number; staging: number }> = []
    for (let i = 0; i < KILLS; i++) {
      const root = left.tempDir(`kill${i}`)
      const delay = Math.round(((i + Math.random()) / KILLS) * duration * 1.1)
      const pull = await spawnAls(["pull", "--root", root, "--tls-verify=false", "--jobs", "1", ref], left)
      await sleep(delay)
      const r = await kill9(pull)
      const state = await expectConsistentStore(root, layerMap(img), `kill ${i} at ${delay} ms`)
      outcomes.push({ root, delay, exit: r.exitCode, committed: state.committed.length, staging: stagingEntries(root).length })
    }
    console.log(
      `a whole pull takes ${duration} ms; kills (delay ms → layers committed, staging entries left):\n  ` +
        outcomes.map((o) => `${o.delay} → ${o.committed}/${img.layers.length}, ${o.staging}${o.exit === 0 ? " (had finished)" : ""}`).join("\n  "),
    )
    // the kills really spread over the phases: some before any commit, some in the middle
    // (between commits, or with work in staging: which one a given run hits is timing)
    expect(outcomes.some((o) => o.committed === 0)).toBe(true)
    expect(outcomes.some((o) => (o.committed > 0 && o.committed < img.layers.length) || o.staging > 0)).toBe(true)

    // The pulls after the kills, a few at a time: each waits out its dead predecessor's locks.
    for (let i = 0; i < outcomes.length; i += 5) {
      await Promise.all(outcomes.slice(i, i + 5).map((o, j) => expectRecoveryAfterKill(o.root, ref, img, `kill ${i + j} at ${o.delay} ms`)))
    }
  }, 4 * MIN)
})
