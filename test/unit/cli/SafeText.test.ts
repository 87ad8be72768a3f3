// Class 8 (issue 11): text from outside reaches a terminal only with its control characters
// escaped visibly and long values cut with a marker (src/domain/SafeText.ts).
import { describe, expect, test } from "bun:test"
import { isPlainText, safeLines, safeText } from "../../../src/domain/SafeText.ts"

describe("safeText", () => {
  test("escapes ESC sequences, C0, DEL and C1 visibly", () => {
    const s = safeText("a\x1b[2Jb\x07c\x00d\x7fe\x9bf\x85g")
    expect(s).toBe("a\\x1b[2Jb\\x07c\\x00d\\x7fe\\x9bf\\x85g")
    expect(s).not.toMatch(/[\x00-\x1f\x7f-\x9f]/)
  })

  test("newlines, tabs and carriage returns cannot start or rewrite a line", () => {
    expect(safeText("ok\nals: fake\rX\tY")).toBe("ok\\nals: fake\\rX\\tY")
  })

  test("bidi overrides, isolates, marks and line separators are escaped", () => {
    const s = safeText("a\u202eb\u2066c\u2069d\u200fe\u2028f\u061cg")
    expect(s).toBe("a\\u202eb\\u2066c\\u2069d\\u200fe\\u2028f\\u061cg")
    expect(isPlainText(s)).toBe(true)
  })

  test("ordinary text, including non-ASCII letters and emoji, is unchanged", () => {
    for (const t of ["docker.io/library/alpine:3.19", "café ünïcode 日本語", "rocket 🚀 ok", "path with spaces/x"]) {
      expect(safeText(t)).toBe(t)
      expect(isPlainText(t)).toBe(true)
    }
  })

  test("a long value is cut with a marker naming the bytes left out", () => {
    const big = "A".repeat(1 << 20)
    const s = safeText(big, 100)
    expect(s).toBe(`${"A".repeat(100)}…(+${(1 << 20) - 100} bytes)`)
    // the budget counts escapes: a value of ESCs is cut by what it shows
    const esc = safeText("\x1b".repeat(1000), 40)
    expect(esc).toBe(`${"\\x1b".repeat(10)}…(+990 bytes)`)
    // never cuts a surrogate pair in half
    const emoji = safeText("🚀".repeat(10), 5)
    expect(emoji).toBe(`🚀🚀…(+32 bytes)`)
  })

  test("lone surrogates are escaped", () => {
    expect(safeText("a\ud800b")).toBe("a\\ud800b")
  })
})

describe("safeLines", () => {
  test("keeps line breaks, escapes the rest, cuts each line and the whole", () => {
    expect(safeLines("one\x1b[31m\ntwo")).toBe("one\\x1b[31m\ntwo")
    const lines = safeLines(`${"x".repeat(50)}\nshort`, 10)
    expect(lines).toBe(`${"x".repeat(10)}…(+40 bytes)\nshort`)
    const total = safeLines("aaaa\nbbbb\ncccc\ndddd", 100, 10)
    expect(total.startsWith("aaaa\nbbbb\n")).toBe(true)
    expect(total).toContain("…(+")
    expect(total.length).toBeLessThan(30)
  })
})
