/**
 * One place for the fuzz suite's knobs, so CI is reproducible and a developer can dig deeper:
 *
 *   ALS_FUZZ_SEED=123 ALS_FUZZ_RUNS=5000 npx bun test test/fuzz
 *
 * The default seed is fixed (the same cases on every run); the default number of runs keeps the
 * whole directory well under a minute on the project's 2-core machine. A failure prints the seed
 * and the shrunk counterexample: fix the parser, then pin the counterexample as a named
 * regression test next to the property that found it.
 */
import fc from "fast-check"

const intFromEnv = (name: string, fallback: number, min: number): number => {
  const raw = process.env[name]
  if (raw === undefined || raw === "") return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name}=${JSON.stringify(raw)}: expected an integer >= ${min}`)
  return n
}

export const FUZZ_SEED = intFromEnv("ALS_FUZZ_SEED", 20261207, -(2 ** 31))
export const FUZZ_RUNS = intFromEnv("ALS_FUZZ_RUNS", 200, 1)

/**
 * Parameters for `fc.assert`: the fixed seed, and FUZZ_RUNS scaled by `weight` (properties that
 * touch the disk take a fraction of the runs; pure ones on tiny inputs may take more).
 */
export const fuzzParams = <T>(weight = 1): fc.Parameters<T> => ({
  seed: FUZZ_SEED,
  numRuns: Math.max(1, Math.round(FUZZ_RUNS * weight)),
  // bun:test prints no error causes: put the failing assertion into the report itself
  includeErrorInReport: true,
})

/** Generous per-test timeout for bun:test: the bound is the run count, not the clock. */
export const FUZZ_TIMEOUT_MS = 120_000

/** Bytes, biased towards the small lengths where parsers' edge cases live. */
export const bytesArb = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength })

/** Split points for feeding `b` in pieces: a parser must not care where chunks end. */
export const chunked = (b: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const at = [...new Set(cuts.map((c) => (b.length === 0 ? 0 : c % (b.length + 1))))].sort((x, y) => x - y)
  const out: Array<Uint8Array> = []
  let prev = 0
  for (const c of at) {
    out.push(b.subarray(prev, c))
    prev = c
  }
  out.push(b.subarray(prev))
  return out
}
