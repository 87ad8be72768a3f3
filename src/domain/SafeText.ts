/**
 * Text from outside (a registry's error message, an annotation, a path or ref someone typed)
 * made safe for a terminal. Pure.
 *
 * A terminal obeys what it is sent: ESC sequences clear the screen, move the cursor, retitle
 * the window or rewrite earlier lines; bidi overrides make text read differently than it is
 * stored. So every control character (C0, DEL, C1), the bidi controls and the line/paragraph
 * separators are written as visible escapes (`\x1b`, `\u202e`), and a value longer than its
 * budget is cut with a marker saying how much was left out. `--json` output does not use this:
 * JSON.stringify already escapes control characters and the values must stay exact.
 */

/** How many characters of one value reach the terminal by default (escapes counted). */
export const SAFE_TEXT_MAX = 2048

const named: Readonly<Record<number, string>> = { 0x09: "\\t", 0x0a: "\\n", 0x0d: "\\r" }

const hex2 = (c: number) => c.toString(16).padStart(2, "0")
const hex4 = (c: number) => c.toString(16).padStart(4, "0")

/** The visible escape for code point `c`, or undefined when `c` may be shown as it is. */
export const escapeOf = (c: number): string | undefined => {
  if (c < 0x20 || c === 0x7f || (c >= 0x80 && c <= 0x9f)) return named[c] ?? `\\x${hex2(c)}`
  // bidi embeddings/overrides/isolates, the implicit marks, and line/paragraph separators
  if (
    (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c === 0x200e || c === 0x200f ||
    c === 0x061c || c === 0x2028 || c === 0x2029
  ) return `\\u${hex4(c)}`
  // a lone surrogate (not a character; some terminals show garbage or worse)
  if (c >= 0xd800 && c <= 0xdfff) return `\\u${hex4(c)}`
  return undefined
}

/** True when `s` has nothing `safeText` would escape. */
export const isPlainText = (s: string): boolean => {
  for (const ch of s) if (escapeOf(ch.codePointAt(0)!) !== undefined) return false
  return true
}

const utf8Length = (s: string): number => Buffer.byteLength(s, "utf8")

/**
 * One value on one line: every control character escaped (newlines too), cut to `max`
 * characters with `…(+N bytes)` naming how many bytes of the value were left out.
 */
export const safeText = (value: string, max: number = SAFE_TEXT_MAX): string => {
  let out = ""
  let i = 0
  // iterate by code point; stop before the output would pass `max`
  while (i < value.length) {
    const c = value.codePointAt(i)!
    const width = c > 0xffff ? 2 : 1
    const shown = escapeOf(c) ?? value.slice(i, i + width)
    if (out.length + shown.length > max) return `${out}…(+${utf8Length(value.slice(i))} bytes)`
    out += shown
    i += width
  }
  return out
}

/**
 * Text that may span lines (an error message of several lines, a rendered report): each line
 * made safe as by `safeText` and cut to `lineMax`, the line breaks kept, the whole cut to
 * `totalMax` characters.
 */
export const safeLines = (value: string, lineMax: number = SAFE_TEXT_MAX, totalMax: number = 64 * SAFE_TEXT_MAX): string => {
  const lines = value.split("\n")
  const out: Array<string> = []
  let used = 0
  for (let n = 0; n < lines.length; n++) {
    const room = Math.min(lineMax, totalMax - used)
    if (room <= 0) {
      out.push(`…(+${utf8Length(lines.slice(n).join("\n"))} bytes)`)
      break
    }
    const line = safeText(lines[n]!, room)
    out.push(line)
    used += line.length + 1
  }
  return out.join("\n")
}
