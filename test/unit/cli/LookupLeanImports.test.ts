// `als lookup` runs once per layer on podman's critical path, so its lean path
// (src/cli/LookupLean.ts) must not load what only pulls need: the registry client, podman's
// configuration readers (smol-toml) or the full command line (@effect/cli). Loading the
// registry stack through src/Layers.ts once cost every lookup ~17 ms of CPU.
import { expect, test } from "bun:test"
import { REPO_ROOT } from "../../lib/als.ts"

test("the lean lookup path loads no registry client, no podman configuration reader and no @effect/cli", () => {
  // a fresh process: this one has loaded half the tree already
  const r = Bun.spawnSync(
    [process.execPath, "-e", 'await import("./src/cli/LookupLean.ts"); console.log(JSON.stringify(Object.keys(require.cache)))'],
    { cwd: REPO_ROOT, stderr: "pipe", stdout: "pipe" },
  )
  expect(r.exitCode).toBe(0)
  const loaded = JSON.parse(r.stdout.toString()) as string[]
  // the module list is real: the lean path's own modules are in it
  expect(loaded.some((m) => m.endsWith("/src/cli/LookupLean.ts"))).toBe(true)
  expect(loaded.some((m) => m.endsWith("/src/workflows/Lookup.ts"))).toBe(true)
  const unwanted = loaded.filter((m) => /\/src\/registry\/|\/src\/config\/|\/node_modules\/(smol-toml|@effect\/cli|@effect\/platform)\//.test(m))
  expect(unwanted.map((m) => m.slice(REPO_ROOT.length))).toEqual([])
})
