// Sum up CPU profiles (`bun --cpu-prof`, or BUN_OPTIONS="--cpu-prof --cpu-prof-dir=D" for a
// compiled binary) of several runs: busy time per run, self time per module, inclusive time
// per src/ module and per function. A bundle's functions are named by the module they come
// from, using the `// path` comments of the same build run unminified as JavaScript:
//
//   bun build --target=bun --format=cjs bin/als.ts --outfile /tmp/als.js
//   for i in $(seq 10); do bun --cpu-prof --cpu-prof-dir=/tmp/prof /tmp/als.js lookup …; done
//   bun bench/tools/ProfileSummary.ts /tmp/als.js /tmp/prof/*.cpuprofile
//
// Sampling inflates the absolute figures (about 2× at 0.25 ms); compare shares, not totals.

import { readFileSync } from "node:fs"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const [bundle, ...files] = process.argv.slice(2)
if (!bundle || files.length === 0) {
  process.stderr.write("usage: bun bench/tools/ProfileSummary.ts BUNDLE.js PROFILE.cpuprofile…\n")
  process.exit(2)
}

// module boundaries of the bundle: "// node_modules/x/y.js" or "// src/a/B.ts" lines
const starts: Array<readonly [number, string]> = []
readFileSync(bundle, "utf8")
  .split("\n")
  .forEach((line, i) => {
    const m = /^\/\/ ((?:node_modules|src|bin|bench)\/\S+)$/.exec(line)
    if (m) starts.push([i, m[1]!.replace(/^node_modules\//, "")])
  })
const moduleAt = (line: number): string => {
  let lo = 0
  let hi = starts.length - 1
  let found = "(bundle prelude)"
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (starts[mid]![0] <= line) {
      found = starts[mid]![1]
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}
const inBundle = (url: string) => url.includes("$bunfs") || url.endsWith(bundle.split("/").pop()!)
const moduleOf = (f: CallFrame) => (inBundle(f.url) ? moduleAt(f.lineNumber) : f.url || "(native)")

const selfByModule = new Map<string, number>()
const inclByModule = new Map<string, number>()
const inclByFunction = new Map<string, number>()
const add = (m: Map<string, number>, k: string, t: number) => m.set(k, (m.get(k) ?? 0) + t)
let busy = 0

for (const file of files) {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  p.samples.forEach((id, i) => {
    const t = p.timeDeltas[i + 1] ?? 0
    const node = byId.get(id)!
    if (node.callFrame.functionName === "(idle)") return
    busy += t
    add(selfByModule, moduleOf(node.callFrame), t)
    const seenModules = new Set<string>()
    const seenFunctions = new Set<string>()
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame
      const mod = moduleOf(f)
      if (!seenModules.has(mod)) {
        seenModules.add(mod)
        add(inclByModule, mod, t)
      }
      const fn = `${f.functionName || "(anonymous)"} [${mod}:${f.lineNumber}]`
      if (!seenFunctions.has(fn)) {
        seenFunctions.add(fn)
        add(inclByFunction, fn, t)
      }
    }
  })
}

const runs = files.length
const top = (title: string, m: Map<string, number>, n: number) => {
  console.log(`-- ${title} (ms per run)`)
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`${(v / 1000 / runs).toFixed(1).padStart(8)}  ${k}`)
}
console.log(`${runs} profile(s), ${(busy / 1000 / runs).toFixed(1)} ms busy per run`)
const n = Number(process.env.TOP ?? 25)
top("self time by module", selfByModule, n)
top("inclusive time by src/ module", new Map([...inclByModule].filter(([k]) => k.startsWith("src/") || k.startsWith("bin/"))), n)
top("inclusive time by function", inclByFunction, Number(process.env.TOP_FUNCTIONS ?? 2 * n))
