// --platform/--os/--arch/--variant combined as podman 4.3.1's pull combines them (PlatformFlags.ts).
import { describe, expect, test } from "bun:test"
import { Either } from "effect"
import { platformFromFlags, type PlatformFlags } from "../../../src/cli/PlatformFlags.ts"

const amd64 = { os: "linux", architecture: "amd64" }
const armHost = { os: "linux", architecture: "arm", variant: "v7" }
const ok = (f: PlatformFlags, host = amd64) => Either.getOrThrow(platformFromFlags(f, host))
const refused = (f: PlatformFlags) => Either.match(platformFromFlags(f, amd64), { onLeft: (m) => m, onRight: () => undefined })

describe("platformFromFlags", () => {
  test("no flag: the host, variant included", () => {
    expect(ok({})).toEqual(amd64)
    expect(ok({}, armHost)).toEqual(armHost)
  })

  test("each part alone, normalized, the rest from the host", () => {
    expect(ok({ arch: "aarch64" })).toEqual({ os: "linux", architecture: "arm64" })
    expect(ok({ arch: "arm" })).toEqual({ os: "linux", architecture: "arm", variant: "v7" })
    expect(ok({ arch: "arm", variant: "6" })).toEqual({ os: "linux", architecture: "arm", variant: "v6" })
    expect(ok({ os: "Windows" })).toEqual({ os: "windows", architecture: "amd64" })
    expect(ok({ os: "macos", arch: "x86_64" })).toEqual({ os: "darwin", architecture: "amd64" })
    // a variant alone goes with the host's architecture
    expect(ok({ variant: "v6" }, armHost)).toEqual({ os: "linux", architecture: "arm", variant: "v6" })
  })

  test("--variant completes a --platform that names none; a written variant wins", () => {
    expect(ok({ platform: "linux/arm", variant: "v6" })).toEqual({ os: "linux", architecture: "arm", variant: "v6" })
    expect(ok({ platform: "linux/arm/v5", variant: "v6" })).toEqual({ os: "linux", architecture: "arm", variant: "v5" })
    expect(ok({ platform: "linux/arm64" })).toEqual({ os: "linux", architecture: "arm64" })
  })

  test("refusals", () => {
    expect(refused({ platform: "linux/arm64", arch: "arm64" })).toBe("--platform option can not be specified with --arch or --os")
    expect(refused({ platform: "linux/arm64", os: "linux" })).toBe("--platform option can not be specified with --arch or --os")
    expect(refused({ arch: "arm/v7" })).toContain("--arch \"arm/v7\"")
    expect(refused({ os: "" })).toBe("--os is empty")
    expect(refused({ variant: "v\u001b[31m" })).toContain("--variant")
    expect(refused({ variant: "v\u001b[31m" })).not.toContain("\u001b")
    expect(refused({ platform: "linux/arm64/v8/x" })).toContain("--platform")
  })
})
