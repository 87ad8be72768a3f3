// The lean `als lookup` path (src/cli/LookupLean.ts) must answer exactly as the full CLI: this
// runs the compiled binary both ways (ALS_FULL_CLI=1) on a matrix of command lines over two
// identical stores and compares exit status, stdout, stderr and the events each logged.
//
//   bun bench/LookupParity.ts [path/to/als]        exit 0 when every case matches

import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DIST_ALS } from "../test/lib/als.ts"
import { run } from "../test/lib/sh.ts"

const als = process.argv[2] ?? DIST_ALS
const work = mkdtempSync(join(tmpdir(), "als-parity-"))

const hex = (c: string) => c.repeat(64)
const FOUND = `sha256:${hex("a")}`
const MISSING = `sha256:${hex("b")}`
const IN_POOL = `sha256:${hex("c")}`

/** A store with one complete layer, and a pool store holding another. */
const makeStore = (root: string, pool: string) => {
  // a store is a directory with .als/log (lookup refuses any other directory): an empty log
  mkdirSync(join(root, ".als"), { recursive: true })
  writeFileSync(join(root, ".als", "log"), "", { mode: 0o600 })
  const layer = join(root, FOUND)
  mkdirSync(join(layer, "diff"), { recursive: true })
  writeFileSync(join(layer, "blob"), "blob")
  writeFileSync(join(layer, "info"), JSON.stringify({ "compressed-digest": FOUND, "compressed-size": 4 }))
  mkdirSync(join(pool, IN_POOL, "diff"), { recursive: true })
  writeFileSync(join(pool, IN_POOL, "blob"), "other")
}

const cases = (root: string, pool: string): string[][] => [
  ["lookup", FOUND, "--root", root],
  ["lookup", FOUND, "--ref", "127.0.0.1:5000/a/b:1", "--root", root],
  ["lookup", "--root", root, FOUND, "--ref", "127.0.0.1:5000/a/b:1", "--json"],
  ["lookup", MISSING, "--root", root],
  ["lookup", MISSING, "--root", root, "--json"],
  ["lookup", MISSING, "--root", root, "--pool", pool, "--ref", "r.example/x:1"],
  ["lookup", IN_POOL, "--root", root, "--pool", pool, "--ref", "r.example/x:1"],
  ["lookup", IN_POOL, "--root", root, "--pool", `store:${pool}`, "--json"],
  ["lookup", MISSING, "--root", root, "--annotation", "k=v", "--annotation", "a=b", "--ref", "r.example/x:1"],
  ["lookup", MISSING, "--root", root, "--annotation", "k=v", "a=b"],
  ["lookup", MISSING, "--root", root, "--annotation", "k=v=w"],
  ["lookup", "sha256:nothex", "--root", root],
  ["lookup", FOUND, "--root", root, "--ref", "x", "--ref", "y"],
  ["lookup", FOUND, "--root=" + root],
  ["lookup", FOUND, "--root", root, "--json", "true"],
  ["lookup", FOUND, "--root", root, "--json", "false"],
  ["lookup", FOUND, "--root", root, "--bogus"],
  ["lookup", "--root", root],
  ["lookup", FOUND, FOUND, "--root", root],
  ["lookup", "--help"],
  ["lookup", FOUND, "--root"],
]

/** Events of a store's log, without what differs between two runs (ids, times, pids, paths). */
const events = async (root: string, other: string): Promise<string> => {
  const r = await run([als, "log", "--json", "--root", root])
  return r.stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const { time: _t, workflow: _w, id: _i, pid: _p, offset: _o, ...rest } = JSON.parse(l) as Record<string, unknown>
      return JSON.stringify(rest).replaceAll(other, "ROOT")
    })
    .join("\n")
}

let failures = 0
try {
  const bases = { lean: join(work, "lean"), full: join(work, "full") }
  for (const b of Object.values(bases)) makeStore(join(b, "store"), join(b, "pool"))
  for (const [i, c] of cases("ROOT", "POOL").entries()) {
    const out: Record<string, string> = {}
    for (const [kind, base] of Object.entries(bases)) {
      const root = join(base, "store")
      const pool = join(base, "pool")
      // each case on a fresh copy, so both ways start from the same store
      const caseRoot = join(base, `case${i}`)
      rmSync(caseRoot, { recursive: true, force: true })
      cpSync(root, caseRoot, { recursive: true })
      const argv = c.map((a) => a.replace("ROOT", caseRoot).replace("POOL", pool))
      const r = await run([als, ...argv], { env: { NO_COLOR: "1", ALS_FULL_CLI: kind === "full" ? "1" : undefined } })
      const norm = (s: string) => s.replaceAll(base, "BASE")
      out[kind] = [`exit ${r.exitCode}`, norm(r.stdout), norm(r.stderr), norm(await events(caseRoot, caseRoot))].join("\n---\n")
    }
    const same = out.lean === out.full
    if (!same) failures++
    console.log(`${same ? "same" : "DIFFERENT"}: als ${c.join(" ")}`)
    if (!same) console.log(`--- lean ---\n${out.lean}\n--- full ---\n${out.full}`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}
console.log(failures === 0 ? "lean lookup answers as the full CLI in every case" : `${failures} case(s) differ`)
process.exit(failures === 0 ? 0 : 1)
