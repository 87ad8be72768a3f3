// Issue 11, class 4: files a pool made are type-checked before als reads or links them. Hand-made
// hostile pools in a temp dir; each case fails if its guard in src/verify/PoolFiles.ts is removed
// (a FIFO info hangs the probe, /dev/zero grows memory, a symlinked diff links the host's /etc).
import { afterAll, describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Digest, parseDigest } from "../../../src/domain/Digest.ts"
import { renderLayerInfo } from "../../../src/domain/LayerInfo.ts"
import { type Pool, type Probe, probePool } from "../../../src/pool/Pool.ts"
import { planLink } from "../../../src/verify/PoolFacts.ts"
import { checkPoolTarget, INFO_MAX_BYTES, readPoolFile } from "../../../src/verify/PoolFiles.ts"

const D = parseDigest(`sha256:${"a".repeat(64)}`)
const OTHER = parseDigest(`sha256:${"b".repeat(64)}`)
const DIFF_ID = parseDigest(`sha256:${"c".repeat(64)}`)
const tmp: string[] = []
afterAll(() => {
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true })
})

/** A store-kind pool with one layer D: diff/, a 10-byte blob and a true info, then `tweak`. */
const pool = (tweak: (layerDir: string, poolDir: string) => void = () => {}): Pool => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-hostile-pool-"))
  tmp.push(dir)
  const layer = path.join(dir, D)
  fs.mkdirSync(path.join(layer, "diff"), { recursive: true })
  fs.writeFileSync(path.join(layer, "diff", "file"), "x")
  fs.writeFileSync(path.join(layer, "blob"), "0123456789")
  fs.writeFileSync(
    path.join(layer, "info"),
    renderLayerInfo({ digest: D, size: 10, diffId: DIFF_ID, diffSize: 100, compression: "gzip" }),
  )
  tweak(layer, dir)
  return { kind: "store", dir }
}

const probe = (p: Pool, digest: Digest = D): Probe => Effect.runSync(probePool(p, digest, undefined, {}))

const replace = (p: string, make: () => void) => {
  fs.rmSync(p, { recursive: true, force: true })
  make()
}

/** Runs `probe` in a child process so that a hang fails the test instead of freezing it. */
const probeInChild = (dir: string, timeoutMs = 20_000): Probe => {
  const script = `
    import { Effect } from "effect"
    import { probePool } from ${JSON.stringify(path.resolve("src/pool/Pool.ts"))}
    const r = Effect.runSync(probePool({ kind: "store", dir: ${JSON.stringify(dir)} }, ${JSON.stringify(D)}, undefined, {}))
    process.stdout.write(JSON.stringify(r))
  `
  const out = execFileSync("npx", ["bun", "-e", script], { timeout: timeoutMs, encoding: "utf8", cwd: path.resolve(".") })
  return JSON.parse(out) as Probe
}

describe("a pool's info", () => {
  test("a true, regular info is read and parsed (the baseline the refusals below differ from)", () => {
    const hit = probe(pool()).hit
    expect(hit?.refused).toBeUndefined()
    expect(hit?.info).toMatchObject({ digest: D, size: 10, diffId: DIFF_ID })
    expect(planLink(D, hit!, undefined)._tag).toBe("Link")
  })

  test("a FIFO info is refused at once, without blocking (probe in a child process bounded by 20 s)", () => {
    const p = pool((l) => replace(path.join(l, "info"), () => execFileSync("mkfifo", [path.join(l, "info")])))
    const t0 = Date.now()
    const r = probeInChild(p.dir)
    expect(Date.now() - t0).toBeLessThan(20_000)
    expect(r.hit?.refused).toContain("FIFO")
  })

  test("an info symlinked to /dev/zero is refused (no read, no memory growth)", () => {
    const p = pool((l) => replace(path.join(l, "info"), () => fs.symlinkSync("/dev/zero", path.join(l, "info"))))
    const hit = probe(p).hit
    expect(hit?.refused).toContain("symlink")
    expect(planLink(D, hit!, undefined)).toMatchObject({ _tag: "Refuse" })
  })

  test(`an info of more than ${INFO_MAX_BYTES} bytes is refused`, () => {
    const p = pool((l) => fs.writeFileSync(path.join(l, "info"), " ".repeat(INFO_MAX_BYTES + 1) + "{}"))
    expect(probe(p).hit?.refused).toContain("more than")
  })

  test("an info whose digests do not parse is refused, never cast to a Digest", () => {
    const p = pool((l) =>
      fs.writeFileSync(path.join(l, "info"), JSON.stringify({ "compressed-diff-digest": "sha256:../../etc", "diff-digest": DIFF_ID }))
    )
    expect(probe(p).hit?.refused).toContain("malformed")
  })

  test("an info naming another layer is refused by the pool-facts check", () => {
    const p = pool((l) =>
      fs.writeFileSync(path.join(l, "info"), renderLayerInfo({ digest: OTHER, size: 10, diffId: DIFF_ID, diffSize: 1, compression: "gzip" }))
    )
    expect(planLink(D, probe(p).hit!, undefined)).toMatchObject({ _tag: "Refuse", reason: expect.stringContaining(OTHER) })
  })

  test("readPoolFile reads a regular file and caps a larger one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-poolfile-"))
    tmp.push(dir)
    fs.writeFileSync(path.join(dir, "small"), "abc")
    fs.writeFileSync(path.join(dir, "big"), "x".repeat(100))
    expect(readPoolFile(path.join(dir, "small"))).toEqual({ _tag: "Read", text: "abc" })
    expect(readPoolFile(path.join(dir, "big"), 10)._tag).toBe("Refused")
    expect(readPoolFile(path.join(dir, "absent"))._tag).toBe("Missing")
  })
})

describe("a pool's blob", () => {
  test("a blob symlinked to /dev/zero is refused (LinkRefused reason names the symlink)", () => {
    const p = pool((l) => replace(path.join(l, "blob"), () => fs.symlinkSync("/dev/zero", path.join(l, "blob"))))
    const hit = probe(p).hit
    expect(hit?.refused).toContain("symlink")
    expect(planLink(D, hit!, undefined)).toMatchObject({ _tag: "Refuse", reason: expect.stringContaining("symlink") })
  })

  test("a blob that is a FIFO or a directory is refused", () => {
    const fifo = pool((l) => replace(path.join(l, "blob"), () => execFileSync("mkfifo", [path.join(l, "blob")])))
    expect(probe(fifo).hit?.refused).toContain("FIFO")
    const dir = pool((l) => replace(path.join(l, "blob"), () => fs.mkdirSync(path.join(l, "blob"))))
    expect(probe(dir).hit?.refused).toContain("directory")
  })
})

describe("a pool's diff", () => {
  test("a diff that is a symlink to /etc is refused", () => {
    const p = pool((l) => replace(path.join(l, "diff"), () => fs.symlinkSync("/etc", path.join(l, "diff"))))
    const hit = probe(p).hit
    expect(hit?.refused).toContain("symlink")
    expect(planLink(D, hit!, undefined)._tag).toBe("Refuse")
  })

  test("a layer directory that realpaths outside the pool is refused (its diff lies outside)", () => {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "als-outside-"))
    tmp.push(outside)
    fs.mkdirSync(path.join(outside, "diff"))
    fs.writeFileSync(path.join(outside, "blob"), "0123456789")
    const p = pool((l) => replace(l, () => fs.symlinkSync(outside, l)))
    const hit = probe(p).hit
    expect(hit?.refused).toContain("outside the pool")
  })

  test("a diff inside the pool is linked by its real path", () => {
    const p = pool()
    const hit = probe(p).hit!
    expect(hit.diff).toBe(fs.realpathSync(path.join(p.dir, D, "diff")))
    expect(hit.blob?.path).toBe(fs.realpathSync(path.join(p.dir, D, "blob")))
  })

  test("checkPoolTarget: a symlink inside the pool is refused, a missing path is Missing", () => {
    const p = pool((l) => fs.symlinkSync("diff", path.join(l, "alias")))
    expect(checkPoolTarget(path.join(p.dir, D, "alias"), "directory", p.dir)._tag).toBe("Refused")
    expect(checkPoolTarget(path.join(p.dir, D, "nothing"), "directory", p.dir)._tag).toBe("Missing")
  })
})

describe("the seed pool's bare tree and the cvmfs layout", () => {
  test("a seed rootfs.<digest> that is a symlink out of the pool is refused", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-seed-"))
    tmp.push(dir)
    const seed: Pool = { kind: "seed", dir }
    const p = Effect.runSync(probePool(seed, D, undefined, {}))
    fs.mkdirSync(path.dirname(p.path), { recursive: true })
    fs.symlinkSync("/etc", p.path)
    expect(Effect.runSync(probePool(seed, D, undefined, {})).hit?.refused).toContain("symlink")
  })

  test("a cvmfs layerfs that is a symlink is refused", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "als-cvmfs-"))
    tmp.push(dir)
    const cv: Pool = { kind: "cvmfs", dir }
    const p = Effect.runSync(probePool(cv, D, undefined, {}))
    fs.mkdirSync(path.dirname(p.path), { recursive: true })
    fs.symlinkSync("/etc", p.path)
    expect(Effect.runSync(probePool(cv, D, undefined, {})).hit?.refused).toContain("symlink")
  })
})
