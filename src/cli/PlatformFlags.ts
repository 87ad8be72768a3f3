/**
 * `--platform`, `--os`, `--arch` and `--variant` combined as podman 4.3.1's `pull` combines
 * them: `--platform` with `--os` or `--arch` is refused ("--platform option can not be
 * specified with --arch or --os"); a `--platform` without a variant takes `--variant`'s; parts
 * not given are the host's (containers/image's WantedPlatforms: the host's variant only with
 * the host's architecture). The normalization (`aarch64` → `arm64`, `arm` → `arm/v7` …) is
 * Platform.ts's. Pure: flags and host in, a platform or a message out.
 */
import { Either } from "effect"
import { parsePlatform, type Platform } from "../domain/Platform.ts"
import { safeText } from "../domain/SafeText.ts"

export interface PlatformFlags {
  readonly platform?: string | undefined
  readonly os?: string | undefined
  readonly arch?: string | undefined
  readonly variant?: string | undefined
}

const shown = (s: string) => `"${safeText(s, 200)}"`

/** One part (`--os`, `--arch`, `--variant`): a single word, no '/' (it would shift the parts). */
const partFault = (flag: string, v: string): string | undefined =>
  v === "" ? `${flag} is empty` : /^[A-Za-z0-9_-]+$/.test(v) ? undefined : `${flag} ${shown(v)}: expected one word of letters, digits, '_' or '-', e.g. ${flag === "--os" ? "linux" : flag === "--arch" ? "arm64" : "v7"}`

/** The platform the flags ask for; the host's when none is given. */
export const platformFromFlags = (f: PlatformFlags, host: Platform): Either.Either<Platform, string> => {
  for (const [flag, v] of [["--os", f.os], ["--arch", f.arch], ["--variant", f.variant]] as const) {
    const fault = v === undefined ? undefined : partFault(flag, v)
    if (fault) return Either.left(fault)
  }
  const parse = (s: string, what: string): Either.Either<Platform, string> => {
    try {
      return Either.right(parsePlatform(s, host))
    } catch (e) {
      return Either.left(`${what}: ${safeText((e as Error).message, 400)}`)
    }
  }
  if (f.platform !== undefined) {
    if (f.os !== undefined || f.arch !== undefined) return Either.left("--platform option can not be specified with --arch or --os")
    // podman's parse.Platform: a variant written in --platform wins over --variant
    const written = f.platform.split("/").length >= 3
    if (f.variant === undefined || written) return parse(f.platform, `--platform ${shown(f.platform)}`)
    const [os = "", arch = ""] = f.platform.split("/")
    return parse(`${os}/${arch || host.architecture}/${f.variant}`, `--platform ${shown(f.platform)} --variant ${shown(f.variant)}`)
  }
  if (f.os === undefined && f.arch === undefined && f.variant === undefined) return Either.right(host)
  // a variant alone goes with the host's architecture, as WantedPlatforms does
  const arch = f.arch ?? (f.variant !== undefined ? host.architecture : "")
  const spec = `${f.os ?? ""}/${arch}${f.variant !== undefined ? `/${f.variant}` : ""}`
  const what = [["--os", f.os], ["--arch", f.arch], ["--variant", f.variant]].filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${shown(v!)}`).join(" ")
  return parse(spec, what)
}
