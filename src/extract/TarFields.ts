/**
 * The numbers and PAX records of tar headers, read as Go's archive/tar reads them (what podman
 * itself accepts): one reader for the layer parser (TarParser.ts) and the docker-archive index
 * (sources/TarIndex.ts). Each returns the value or what is wrong with it; the caller turns that
 * into its own error.
 */

export type NumberProblem = "invalid octal number" | "negative number" | "number too large"

/** An octal field, spaces and NULs trimmed at both ends (an empty field is 0). */
export const tarOctal = (b: Uint8Array, o: number, len: number): number | NumberProblem => {
  let s = o
  let e = o + len
  while (s < e && (b[s] === 0x20 || b[s] === 0)) s++
  while (e > s && (b[e - 1] === 0x20 || b[e - 1] === 0)) e--
  let v = 0
  for (let i = s; i < e; i++) {
    const c = b[i]! - 0x30
    if (c < 0 || c > 7) return "invalid octal number"
    v = v * 8 + c
  }
  return v
}

/** Octal, or base-256 when the top bit of the first byte is set (GNU/star large numbers). */
export const tarNumber = (b: Uint8Array, o: number, len: number): number | NumberProblem => {
  if ((b[o]! & 0x80) === 0) return tarOctal(b, o, len)
  if (b[o] === 0xff) return "negative number"
  let v = b[o]! & 0x7f
  for (let i = o + 1; i < o + len; i++) v = v * 256 + b[i]!
  return Number.isSafeInteger(v) ? v : "number too large"
}

/**
 * "%d %s=%s\n" records into `out` (keys as text by `text`, values kept as bytes: xattr values
 * are binary); what is malformed about them, or undefined.
 */
export const parsePaxRecords = (
  buf: Uint8Array,
  out: Map<string, Uint8Array>,
  text: (b: Uint8Array) => string,
): string | undefined => {
  let p = 0
  while (p < buf.length) {
    // Go stops at trailing NUL padding
    if (buf[p] === 0) break
    let q = p
    let len = 0
    while (q < buf.length && buf[q]! >= 0x30 && buf[q]! <= 0x39 && q - p < 12) len = len * 10 + (buf[q++]! - 0x30)
    if (q === p || buf[q] !== 0x20 || len <= q - p + 1 || p + len > buf.length || buf[p + len - 1] !== 0x0a) {
      return "malformed PAX record"
    }
    const rec = buf.subarray(q + 1, p + len - 1)
    const eq = rec.indexOf(0x3d)
    if (eq <= 0) return "malformed PAX record (no key)"
    const keyBytes = rec.subarray(0, eq)
    const value = rec.slice(eq + 1)
    const key = text(keyBytes)
    // Go refuses NUL in keys and in the path-like values
    if (keyBytes.includes(0) || ((key === "path" || key === "linkpath") && value.includes(0))) {
      return `PAX record ${JSON.stringify(key)} holds a NUL byte`
    }
    out.set(key, value)
    p += len
  }
  return undefined
}

/** A PAX decimal (size, uid, gid...): digits only, a safe integer; undefined otherwise. */
export const paxUint = (s: string): number | undefined =>
  /^[0-9]+$/.test(s) && Number.isSafeInteger(Number(s)) ? Number(s) : undefined
