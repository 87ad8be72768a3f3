import { describe, expect, test } from "bun:test"
import {
  candidatePlatforms,
  choosePlatform,
  cpuArchitectureOf,
  detectHostPlatform,
  formatPlatform,
  hostPlatform,
  InvalidPlatform,
  parsePlatform,
  type Platform,
} from "../../../src/domain/Platform.ts"

const amd64Host: Platform = { os: "linux", architecture: "amd64" }
const p = (s: string) => parsePlatform(s, amd64Host)

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
    // podman's normalization: arm is v7, numeric variants, amd64/v1 is plain amd64
    ["linux/arm", "linux/arm/v7"],
    ["linux/arm/7", "linux/arm/v7"],
    ["linux/arm/5", "linux/arm/v5"],
    ["linux/arm64/8", "linux/arm64/v8"],
    ["linux/amd64/v1", "linux/amd64"],
    ["linux/x86_64/v2", "linux/amd64/v2"],
    ["macos/arm64", "darwin/arm64"],
    // empty parts are the host's, as podman fills them
    ["linux", "linux/amd64"],
    ["linux/", "linux/amd64"],
    ["/amd64", "linux/amd64"],
    ["", "linux/amd64"],
    // podman reads a lone word as an OS, not an architecture
    ["arm64", "arm64/amd64"],
    // names podman does not know stay as they are (and match nothing)
    ["linux/x64", "linux/x64"],
  ])("%s → %s", (input, out) => {
    expect(formatPlatform(p(input))).toBe(out)
  })

  test.each(["linux/amd64/v8/x", "linux/am d64", "linux/arm64/v8.2", "windows(10.0.17763)/amd64", "linux/*", "linux/arm/"])("refuses %j", (input) => {
    expect(() => p(input)).toThrow(InvalidPlatform)
  })
})

describe("hostPlatform", () => {
  test.each([
    ["x64", undefined, "linux/amd64"],
    ["arm64", "8", "linux/arm64/v8"],
    ["arm64", "AArch64", "linux/arm64/v8"],
    // containers/image: no variant when cpuinfo does not say
    ["arm64", undefined, "linux/arm64"],
    ["arm", "7", "linux/arm/v7"],
    ["arm", "6TEJ", "linux/arm/v6"],
    ["arm", "?(12)", "linux/arm/v7"],
    ["arm", undefined, "linux/arm"],
    ["ia32", undefined, "linux/386"],
    ["ppc64", undefined, "linux/ppc64le"],
    ["s390x", undefined, "linux/s390x"],
    ["riscv64", undefined, "linux/riscv64"],
  ])("process.arch %s (CPU architecture %s) → %s", (arch, cpu, out) => {
    expect(formatPlatform(hostPlatform(arch, cpu))).toBe(out)
  })

  test("the CPU architecture line of /proc/cpuinfo, first match, key in any case", () => {
    const armv7 = "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nCPU architecture: 7\nCPU variant\t: 0x0\n\nprocessor\t: 1\nCPU architecture: 8\n"
    expect(cpuArchitectureOf(armv7)).toBe("7")
    expect(cpuArchitectureOf("Cpu Architecture : 8\n")).toBe("8")
    expect(cpuArchitectureOf("processor\t: 0\nvendor_id\t: GenuineIntel\n")).toBeUndefined()
  })

  test("detectHostPlatform is computed once and agrees with process.arch", () => {
    const a = detectHostPlatform()
    expect(detectHostPlatform()).toBe(a)
    expect(a).toMatchObject(hostPlatform(process.arch))
    expect(a.os).toBe("linux")
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
  test("arm without variant is v7 to podman: v7, v6, v5, then no variant", () => {
    expect(names("linux/arm")).toEqual(["linux/arm/v7", "linux/arm/v6", "linux/arm/v5", "linux/arm"])
  })
  test("an arm host whose cpuinfo says nothing tries no variant first, then every variant", () => {
    expect(candidatePlatforms(hostPlatform("arm")).map(formatPlatform)).toEqual(["linux/arm", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"])
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
