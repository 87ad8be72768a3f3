// One reader of tar numbers and PAX records (src/extract/TarFields.ts) for the layer parser and
// the docker-archive index: both refuse what Go's archive/tar refuses, for the same reason.
import { afterAll, describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parsePaxRecords, paxUint, tarNumber, tarOctal } from "../../../src/extract/TarFields.ts"
import { TarFormatError, TarParser } from "../../../src/extract/TarParser.ts"
import { indexTar, TarIndexError } from "../../../src/sources/TarIndex.ts"
import { rawEntry, rawTar, TAR_END } from "../../lib/tars.ts"

const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true })
})

const field = (s: string, len: number) => {
  const b = new Uint8Array(len)
  b.set(new TextEncoder().encode(s))
  return b
}

describe("tar numbers", () => {
  test("octal with spaces and NULs trimmed at both ends; an empty field is 0", () => {
    expect(tarOctal(field(" 000644 ", 8), 0, 8)).toBe(0o644)
    expect(tarOctal(field("", 8), 0, 8)).toBe(0)
    expect(tarOctal(field("12\0 ", 8), 0, 8)).toBe(0o12)
  })

  test("a sign, a non-octal digit or a NUL inside the digits is refused", () => {
    for (const s of ["-1", "1e5", "128", "12\u0000 34"]) expect(tarOctal(field(s, 8), 0, 8)).toBe("invalid octal number")
  })

  test("base-256: large sizes read, negative and unsafe ones refused", () => {
    const big = new Uint8Array(12)
    big[0] = 0x80
    big[7] = 0x02 // 2 << 32
    expect(tarNumber(big, 0, 12)).toBe(2 * 2 ** 32)
    expect(tarNumber(new Uint8Array(12).fill(0xff), 0, 12)).toBe("negative number")
    expect(tarNumber(new Uint8Array(12).fill(0x7f).fill(0x80, 0, 1), 0, 12)).toBe("number too large")
  })

  test("PAX decimals: digits only, safe integers", () => {
    expect(paxUint("1234")).toBe(1234)
    for (const s of ["", "-1", "1e5", "12 ", "99999999999999999999"]) expect(paxUint(s)).toBeUndefined()
  })
})

describe("PAX records", () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b)
  test("records are read in order, values kept as bytes", () => {
    const out = new Map<string, Uint8Array>()
    expect(parsePaxRecords(new TextEncoder().encode("11 path=ab\n12 size=123\n"), out, text)).toBeUndefined()
    expect([...out].map(([k, v]) => [k, text(v)])).toEqual([["path", "ab"], ["size", "123"]])
  })

  test("a length that does not end on a newline, a record with no key, a NUL in a path: each refused", () => {
    const problem = (s: string) => parsePaxRecords(new TextEncoder().encode(s), new Map(), text)
    expect(problem("30 path=ab\n")).toBe("malformed PAX record")
    expect(problem("9 =value\n")).toBe("malformed PAX record (no key)")
    expect(problem("12 path=a\u0000b\n")).toBe(`PAX record "path" holds a NUL byte`)
  })

  test("the layer parser and the archive index refuse the same malformed PAX header", () => {
    const tar = Buffer.concat([
      rawEntry({ name: "PaxHeaders/a", type: "x", content: "30 path=a\n" }),
      rawEntry({ name: "a", content: "hello\n" }),
      TAR_END,
    ])
    const parser = new TarParser({ entry: () => undefined, data: () => undefined, end: () => undefined })
    expect(() => {
      parser.push(tar)
      parser.finish()
    }).toThrow(TarFormatError)
    expect(() => new TarParser({ entry: () => undefined, data: () => undefined, end: () => undefined }).push(tar)).toThrow(
      "malformed PAX record",
    )
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-tarfields-"))
    dirs.push(dir)
    const file = path.join(dir, "a.tar")
    fs.writeFileSync(file, tar)
    expect(() => indexTar(file)).toThrow(TarIndexError)
    expect(() => indexTar(file)).toThrow("malformed PAX record: damaged archive")
    // the same archive with a well-formed record is read by both
    const good = rawTar([{ name: "a", content: "hello\n", pax: { path: "b" } }])
    fs.writeFileSync(file, good)
    expect([...indexTar(file).keys()]).toEqual(["b"])
  })
})
