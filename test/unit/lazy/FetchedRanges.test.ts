// What a lazily served layer's completion fetches (FetchedRanges.ts): held ranges merge as they
// are added; from any offset the next step is "read what is held" or "fetch this bounded range",
// adjacent missing bytes in one request, short held islands between missing bytes fetched again
// with them, never more than maxRequest in one request.

import { expect, test } from "bun:test"
import { FetchedRanges } from "../../../src/lazy/FetchedRanges.ts"

const ranges = (...spans: Array<[number, number]>) => {
  const r = new FetchedRanges()
  for (const [s, e] of spans) r.add(s, e)
  return r
}

/** every step from 0 to size */
const walk = (r: FetchedRanges, size: number, mergeBelow: number, maxRequest: number) => {
  const steps: string[] = []
  for (let pos = 0; pos < size;) {
    const s = r.nextStep(pos, size, { mergeBelow, maxRequest })
    expect(s.end).toBeGreaterThan(pos)
    steps.push(`${s.kind} ${pos}-${s.end}`)
    pos = s.end
  }
  return steps
}

test("ranges merge when they overlap or touch, stay apart otherwise; empty or negative ones are ignored", () => {
  const r = ranges([10, 20], [30, 40], [20, 25], [5, 10], [38, 50], [60, 60], [-5, 3], [70, 65])
  expect(r.list()).toEqual([{ start: 5, end: 25 }, { start: 30, end: 50 }])
  expect(r.held()).toBe(40)
  r.add(24, 31)
  expect(r.list()).toEqual([{ start: 5, end: 50 }])
  expect(r.covers(5, 50)).toBe(true)
  expect(r.covers(4, 6)).toBe(false)
  expect(r.covers(49, 51)).toBe(false)
  expect(r.covers(7, 7)).toBe(true)
})

test("the walk: held bytes are read, missing ones fetched, each request bounded", () => {
  const r = ranges([1000, 3000], [8000, 20000])
  expect(walk(r, 30000, 0, 4000)).toEqual([
    "fetch 0-1000",
    "held 1000-3000",
    "fetch 3000-7000",
    "fetch 7000-8000",
    "held 8000-20000",
    "fetch 20000-24000",
    "fetch 24000-28000",
    "fetch 28000-30000",
  ])
  // nothing held: the blob in maxRequest pieces; all held: one read
  expect(walk(new FetchedRanges(), 10, 0, 4)).toEqual(["fetch 0-4", "fetch 4-8", "fetch 8-10"])
  expect(walk(ranges([0, 10]), 10, 0, 4)).toEqual(["held 0-10"])
})

test("a held island shorter than mergeBelow between missing bytes is fetched with them; a longer one, or one at the end, is read", () => {
  // 5000-5100 is short, 12000-15000 is not, 29950-30000 ends the blob
  const r = ranges([5000, 5100], [12000, 15000], [29950, 30000])
  expect(walk(r, 30000, 200, 1 << 20)).toEqual([
    "fetch 0-12000",
    "held 12000-15000",
    "fetch 15000-29950",
    "held 29950-30000",
  ])
  // the bound still holds across an island
  expect(walk(r, 30000, 200, 5050)).toEqual([
    "fetch 0-5050",
    "held 5050-5100",
    "fetch 5100-10150",
    "fetch 10150-12000",
    "held 12000-15000",
    "fetch 15000-20050",
    "fetch 20050-25100",
    "fetch 25100-29950",
    "held 29950-30000",
  ])
  // several short islands in a row: one request
  expect(walk(ranges([10, 12], [20, 22], [30, 32]), 100, 5, 1000)).toEqual(["fetch 0-100"])
})
