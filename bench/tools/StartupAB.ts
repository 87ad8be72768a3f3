// Compare the start-up of several command lines, run in turn (A B C A B C …) so that a busy
// machine slows them alike: median and first quartile of CPU (user + sys) and wall time.
//
//   bun bench/tools/StartupAB.ts 31 "dist/als lookup sha256:… --root R" "ALS_FULL_CLI=1 dist/als lookup sha256:… --root R"
//
// A variant is a command line split on spaces; leading NAME=value words are its environment.

import { median, quantile } from "../lib/Measure.ts"

const [runs, ...specs] = process.argv.slice(2)
if (!runs || specs.length === 0) {
  process.stderr.write("usage: bun bench/tools/StartupAB.ts RUNS 'CMD…' ['ENV=v CMD…' …]\n")
  process.exit(2)
}

const variants = specs.map((spec) => {
  const words = spec.split(" ").filter(Boolean)
  const env: Record<string, string> = {}
  while (words[0] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) {
    const w = words.shift()!
    env[w.slice(0, w.indexOf("="))] = w.slice(w.indexOf("=") + 1)
  }
  return { spec, env, cmd: words, wall: [] as number[], cpu: [] as number[] }
})

for (let i = 0; i < Number(runs); i++) {
  for (const v of variants) {
    const t0 = performance.now()
    const p = Bun.spawn(v.cmd, { env: { ...process.env, ...v.env }, stdout: "ignore", stderr: "ignore" })
    await p.exited
    v.wall.push(performance.now() - t0)
    v.cpu.push(Number(p.resourceUsage()?.cpuTime.total ?? NaN) / 1000)
  }
}

for (const v of variants) {
  console.log(
    `CPU ms median ${median(v.cpu).toFixed(1)} q1 ${quantile(v.cpu, 0.25).toFixed(1)} | ` +
      `wall ms median ${median(v.wall).toFixed(1)} q1 ${quantile(v.wall, 0.25).toFixed(1)} | ${v.spec}`,
  )
}
