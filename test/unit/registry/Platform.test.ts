import { describe, expect, test } from "bun:test"
import {
  candidatePlatforms,
  choosePlatform,
  formatPlatform,
  hostPlatform,
  InvalidPlatform,
  parsePlatform,
  type Platform,
} from "../../../src/domain/Platform.ts"

const p = (s: string) => parsePlatform(s)

describe("parsePlatform / formatPlatform", () => {
  test.each([
    ["linux/amd64", "linux/amd64"],
    ["linux/arm64/v8", "linux/arm64/v8"],
    ["linux/arm/v7", "linux/arm/v7"],
    ["Linux/AMD64", "linux/amd64"],
    ["linux/x86_64", "linux/amd64"],
    ["linux/aarch64", "linux/arm64"],
    ["linux/armhf", "linux/arm/v7"],
    ["linux/armel", "linux/arm/v6"],
    ["linux/i386", "linux/386"],
  ])("%s → %s", (input, out) => {
    expect(formatPlatform(parsePlatform(input))).toBe(out)
  })

  test.each(["linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", ""])("refuses %j", (input) => {
    expect(() => parsePlatform(input)).toThrow(InvalidPlatform)
  })
})

describe("hostPlatform", () => {
  test.each([
    ["x64", undefined, "linux/amd64"],
    ["arm64", undefined, "linux/arm64/v8"],
    ["arm", "7", "linux/arm/v7"],
    ["arm", "6", "linux/arm/v6"],
    ["arm", undefined, "linux/arm/v7"],
    ["ia32", undefined, "linux/386"],
    ["ppc64", undefined, "linux/ppc64le"],
    ["s390x", undefined, "linux/s390x"],
    ["riscv64", undefined, "linux/riscv64"],
  ])("process.arch %s (arm %s) → %s", (arch, armVersion, out) => {
    expect(formatPlatform(hostPlatform(arch, armVersion))).toBe(out)
  })
})

describe("candidatePlatforms (containers/image order)", () => {
  const names = (w: string) => candidatePlatforms(p(w)).map(formatPlatform)
  test("amd64 has no variants", () => {
    expect(names("linux/amd64")).toEqual(["linux/amd64"])
  })
  test("arm64/v8 (the detected host) prefers v8, then no variant", () => {
    expect(names("linux/arm64/v8")).toEqual(["linux/arm64/v8", "linux/arm64"])
  })
  test("arm64 without variant prefers no variant, then v8", () => {
    expect(names("linux/arm64")).toEqual(["linux/arm64", "linux/arm64/v8"])
  })
  test("arm/v7 walks down to older variants", () => {
    expect(names("linux/arm/v7")).toEqual(["linux/arm/v7", "linux/arm/v6", "linux/arm/v5", "linux/arm"])
  })
  test("an unknown variant is kept, then no variant", () => {
    expect(names("linux/amd64/v3")).toEqual(["linux/amd64/v3", "linux/amd64"])
  })
})

describe("choosePlatform", () => {
  const index: ReadonlyArray<{ name: string; platform?: Platform }> = [
    { name: "attestation", platform: { os: "unknown", architecture: "unknown" } },
    { name: "amd64", platform: { os: "linux", architecture: "amd64" } },
    { name: "arm64", platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    { name: "armv6", platform: { os: "linux", architecture: "arm", variant: "v6" } },
    { name: "windows", platform: { os: "windows", architecture: "amd64" } },
    { name: "no-platform" },
  ]
  const pick = (w: string) => choosePlatform(index, p(w))?.name

  test("exact match", () => {
    expect(pick("linux/amd64")).toBe("amd64")
    expect(pick("windows/amd64")).toBe("windows")
  })
  test("arm64 without variant finds the v8 entry", () => {
    expect(pick("linux/arm64")).toBe("arm64")
  })
  test("arm/v7 falls back to v6", () => {
    expect(pick("linux/arm/v7")).toBe("armv6")
  })
  test("arm/v5 cannot run v6", () => {
    expect(pick("linux/arm/v5")).toBeUndefined()
  })
  test("no match", () => {
    expect(pick("linux/s390x")).toBeUndefined()
  })
  test("an entry without variant serves a host that wants v8", () => {
    expect(choosePlatform([{ platform: { os: "linux", architecture: "arm64" } }], p("linux/arm64/v8"))).toBeDefined()
  })
  test("the preferred variant wins over an earlier entry", () => {
    const entries = [
      { name: "plain", platform: { os: "linux", architecture: "arm64" } },
      { name: "v8", platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    ]
    expect(choosePlatform(entries, p("linux/arm64/v8"))?.name).toBe("v8")
    expect(choosePlatform(entries, p("linux/arm64"))?.name).toBe("plain")
  })
})
