// Shared pieces of the end-to-end tests: temp dirs and podman sessions that are always cleaned
// up, and readers for what `als` leaves in a store (layer dirs, info, staging).

import { expect } from "bun:test"
import { createHash } from "node:crypto"
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { alsOk, type AlsResult } from "../lib/als.ts"
import { createPodman, type Podman, type PullResult } from "../lib/podman.ts"
import { createPodman5, type Podman5 } from "../lib/podman5.ts"

export const MIN = 60_000

/** Temp dirs and podman sessions of one test file, released in afterAll. */
export class Resources {
  private readonly dirs: string[] = []
  private readonly sessions: Array<Podman | Podman5> = []

  tempDir(name: string): string {
    const d = mkdtempSync(join(tmpdir(), `als-e2e-${name}-`))
    this.dirs.push(d)
    return d
  }

  async podman4(): Promise<Podman> {
    const p = await createPodman()
    this.sessions.push(p)
    return p
  }

  async podman5(): Promise<Podman5> {
    const p = await createPodman5()
    this.sessions.push(p)
    return p
  }

  /** Sessions first (they hold overlay mounts on the stores' diffs), then the dirs. */
  async cleanup(): Promise<void> {
    const errors: unknown[] = []
    for (const s of this.sessions.splice(0)) await s.cleanup().catch((e) => errors.push(e))
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true })
    if (errors.length > 0) throw new AggregateError(errors, "podman session cleanup failed")
  }
}

/** `als pull --root ROOT --tls-verify=false [extra…] REF`, which must succeed. */
export const alsPull = (
  root: string,
  ref: string,
  extra: ReadonlyArray<string> = [],
  env?: Record<string, string | undefined>,
): Promise<AlsResult> => alsOk(["pull", "--root", root, "--tls-verify=false", ...extra, ref], env ? { env } : {})

export const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex")

export const sha256File = (path: string): string => {
  const h = createHash("sha256")
  const fd = openSync(path, "r")
  const buf = Buffer.allocUnsafe(1 << 20)
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n))
  } finally {
    closeSync(fd)
  }
  return `sha256:${h.digest("hex")}`
}

export const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64")

/** lstat that answers undefined instead of throwing. */
export const lstatOrUndefined = (p: string) => {
  try {
    return lstatSync(p)
  } catch {
    return undefined
  }
}

/** The `info` JSON of a layer dir (as containers/storage decodes it). */
export interface InfoJson {
  readonly "compressed-diff-digest": string
  readonly "compressed-size": number
  readonly "diff-digest": string
  readonly "diff-size": number
  readonly compression: number
  readonly "toc-digest"?: string
  readonly flags?: Record<string, unknown>
}

export const readInfo = (layerDir: string): InfoJson => JSON.parse(readFileSync(join(layerDir, "info"), "utf8")) as InfoJson

/** Entries left in `<root>/.als/staging/` (must be none after any pull, good or failed). */
export const stagingEntries = (root: string): string[] => {
  const d = join(root, ".als", "staging")
  return existsSync(d) ? readdirSync(d) : []
}

/** Names directly under the store root that look like layer dirs or aliases (`sha256:…`). */
export const layerNames = (root: string): string[] => readdirSync(root).filter((n) => n.startsWith("sha256:")).sort()

/** True when `p` resolves (through symlinks) to a path inside `dir`. */
export const resolvesInto = (p: string, dir: string): boolean => {
  const real = realpathSync(p)
  const base = realpathSync(dir)
  return real === base || real.startsWith(`${base}/`)
}

/** The target of a symlink, absolute (resolved against the link's dir). */
export const linkTarget = (p: string): string => resolve(join(p, ".."), readlinkSync(p))

/** What a podman pull through the store must show: every layer reused, none downloaded. */
export const expectAllSkipped = (r: PullResult, layerDigests: ReadonlyArray<string>, what: string) => {
  expect({ what, skipped: [...r.skipped].sort(), copied: [...r.copied] }).toEqual({
    what,
    skipped: [...layerDigests].sort(),
    copied: [],
  })
}

/** A complete ALS layer dir: diff/ (a dir, through links), info, blob whose sha256 is `digest`. */
export const expectCompleteLayer = (dir: string, digest: string, diffId: string, size: number) => {
  const st = (p: string) => {
    try {
      const s = realpathSync(p)
      return lstatSync(s)
    } catch {
      return undefined
    }
  }
  expect({ dir, diff: st(join(dir, "diff"))?.isDirectory(), blob: st(join(dir, "blob"))?.isFile(), info: st(join(dir, "info"))?.isFile() })
    .toEqual({ dir, diff: true, blob: true, info: true })
  expect({ dir, blob: sha256File(join(dir, "blob")) }).toEqual({ dir, blob: digest })
  const info = readInfo(dir)
  expect({
    dir,
    compressed: info["compressed-diff-digest"],
    size: info["compressed-size"],
    diffId: info["diff-digest"],
    expected: info.flags?.["expected-layer-diffid"],
  }).toEqual({ dir, compressed: digest, size, diffId, expected: diffId })
}
