/**
 * Which byte ranges of a blob are already held, and what the background completion fetches
 * next. Pure: a sorted list of disjoint, non-adjacent [start, end) ranges, merged as they are
 * added; `nextStep` walks the blob from an offset and says whether the bytes there are held
 * (read them from disk) or to be fetched, in one bounded request: missing bytes next to each
 * other are one request, and a held island shorter than `mergeBelow` between two missing
 * stretches is fetched again with them (a few KiB refetched cost less than a round trip more).
 */

export interface ByteSpan {
  readonly start: number
  readonly end: number
}

export interface StepOptions {
  /** held ranges shorter than this between missing bytes are fetched again with them */
  readonly mergeBelow: number
  /** no request asks for more than this */
  readonly maxRequest: number
}

export type Step =
  | { readonly kind: "held"; readonly end: number }
  | { readonly kind: "fetch"; readonly end: number }

export class FetchedRanges {
  private spans: ByteSpan[] = []

  /** the ranges held, sorted, disjoint and non-adjacent */
  list(): ReadonlyArray<ByteSpan> {
    return this.spans
  }

  /** bytes held in all */
  held(): number {
    return this.spans.reduce((a, s) => a + s.end - s.start, 0)
  }

  /** index of the first span whose end is >= `at` */
  private firstEndingAtOrAfter(at: number): number {
    let lo = 0
    let hi = this.spans.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.spans[mid]!.end < at) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  add(start: number, end: number): void {
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end)) || start < 0 || end <= start) return
    // every span that overlaps or touches [start, end) is merged into one
    const i = this.firstEndingAtOrAfter(start)
    let j = i
    let s = start
    let e = end
    while (j < this.spans.length && this.spans[j]!.start <= end) {
      s = Math.min(s, this.spans[j]!.start)
      e = Math.max(e, this.spans[j]!.end)
      j++
    }
    this.spans.splice(i, j - i, { start: s, end: e })
  }

  /** true when every byte of [start, end) is held */
  covers(start: number, end: number): boolean {
    if (end <= start) return true
    const i = this.firstEndingAtOrAfter(start + 1)
    const sp = this.spans[i]
    return sp !== undefined && sp.start <= start && sp.end >= end
  }

  /** What to do at `pos` (< size): read held bytes up to `end`, or fetch [pos, end). */
  nextStep(pos: number, size: number, opts: StepOptions): Step {
    const i = this.firstEndingAtOrAfter(pos + 1)
    const here = this.spans[i]
    if (here !== undefined && here.start <= pos) return { kind: "held", end: Math.min(here.end, size) }
    const limit = Math.min(size, pos + Math.max(1, opts.maxRequest))
    let end = here === undefined ? limit : Math.min(here.start, limit)
    // across short held islands, as long as missing bytes follow them
    for (let k = i; k < this.spans.length && end < limit; k++) {
      const island = this.spans[k]!
      if (island.start !== end || island.end - island.start >= opts.mergeBelow) break
      const after = this.spans[k + 1]
      if (island.end >= size) break // nothing missing after it
      end = Math.min(limit, after === undefined ? size : after.start)
    }
    return { kind: "fetch", end }
  }
}
