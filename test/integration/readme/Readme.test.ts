// The README's first command works as written: its first ```sh block runs (from the repo
// root, as a reader would run it) and exits 0, podman takes the image's layers from the
// store, and the storage.conf line to add is printed.
import { afterAll, expect, test } from "bun:test"
import { readFileSync, rmSync } from "node:fs"
import { dirname, join } from "node:path"
import { REPO_ROOT } from "../../lib/als.ts"
import { run } from "../../lib/sh.ts"

/** The body of the first fenced block tagged sh. */
const firstShBlock = (markdown: string): string => {
  const m = /^```sh[^\S\n]*\n([\s\S]*?)^```/m.exec(markdown)
  if (!m) throw new Error("README.md has no ```sh block")
  return m[1]!
}

let store: string | undefined
let output = ""
afterAll(() => {
  // the quickstart keeps its store for the reader; the test does not (even when it failed early)
  const work = store ? dirname(store) : /(\/\S*\/als-quickstart-[A-Za-z0-9]+)\//.exec(output)?.[1]
  if (work) rmSync(work, { recursive: true, force: true })
})

test("README's first sh block runs as written and prints the storage.conf line", async () => {
  const block = firstShBlock(readFileSync(join(REPO_ROOT, "README.md"), "utf8"))
  expect(block).toContain("quickstart")
  const r = await run(["bash", "-euo", "pipefail", "-c", block], { cwd: REPO_ROOT, timeoutMs: 10 * 60_000, env: { NO_COLOR: "1" } })
  const out = `${r.stdout}\n${r.stderr}`
  output = out
  store = /The store is (\/\S+)/.exec(out)?.[1]
  expect(r.exitCode, out.slice(-6000)).toBe(0)
  expect(store).toBeDefined()
  expect(out).toContain(`additionallayerstores = ["${store}:ref"]`)
  expect(out).toMatch(/podman took (\d+) of \1 layers from the store/)
  expect(out).toContain("hello from a layer als stored")
}, 10 * 60_000)
