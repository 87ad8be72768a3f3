// Shared by the crash, concurrency, faults and disk tests (issue 5): run `als` as a process we
// can kill or pause, build small images and push them over HTTP, and check a store the way a
// client would see it after anything went wrong: every visible layer whole and verified, no
// staging left, the log readable and intact.

import { expect } from "bun:test"
import { Effect, Layer } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { closeSync, existsSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import { EventLog, EventLogFile, IdsLive, type VerifyReport } from "../../../src/events/EventLog.ts"
import { pushImageHttp, type BuiltManifest, type LayerSpec } from "../../e2e/badImages.ts"
import { als, alsCommand, alsLog, describeResult, type AlsLogEvent, type AlsResult } from "../../lib/als.ts"
import { rawTar, type RawEntry } from "../../lib/tars.ts"

export const MIN = 60_000

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export const sha256Hex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex")
export const digestOf = (b: Uint8Array) => `sha256:${sha256Hex(b)}`

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

// ---- temp dirs and processes ---------------------------------------------------------------

/** Temp dirs and child processes of one test file, all released in afterAll. */
export class Leftovers {
  private readonly dirs: string[] = []
  readonly procs = new Set<ReturnType<typeof Bun.spawn>>()

  tempDir(name: string): string {
    const d = mkdtempSync(join(tmpdir(), `als-i5-${name}-`))
    this.dirs.push(d)
    return d
  }

  /** Kills every child still running (a stopped one is continued so that it can die). */
  async cleanup(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill("SIGKILL")
        p.kill("SIGCONT")
        await p.exited
      }
    }
    this.procs.clear()
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  }
}

export interface Spawned {
  readonly proc: ReturnType<typeof Bun.spawn>
  readonly pid: number
  /** resolves when it exits, with everything it printed */
  readonly done: Promise<AlsResult>
}

/**
 * Starts `als ARGS…` as its own process (the compiled binary when it builds, else bun on the
 * sources: never through npx, whose child a signal would miss).
 */
export const spawnAls = async (args: ReadonlyArray<string>, owner: Leftovers): Promise<Spawned> => {
  const prefix = await alsCommand()
  const cmd = prefix[0] === "npx" ? [process.execPath, ...prefix.slice(2), ...args] : [...prefix, ...args]
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, NO_COLOR: "1" } })
  owner.procs.add(proc)
  const done = (async () => {
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout as ReadableStream).text(),
      new Response(proc.stderr as ReadableStream).text(),
      proc.exited,
    ])
    owner.procs.delete(proc)
    return { exitCode, stdout, stderr, cmd }
  })()
  return { proc, pid: proc.pid, done }
}

/** SIGKILL, and wait until the process is gone. */
export const kill9 = async (s: Spawned): Promise<AlsResult> => {
  s.proc.kill("SIGKILL")
  return s.done
}

/** Polls `f` every `everyMs` until it returns a value, or fails after `timeoutMs`. */
export const pollFor = async <A>(what: string, f: () => A | undefined, timeoutMs = 30_000, everyMs = 2): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = f()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

// ---- images ------------------------------------------------------------------------------

export interface TestLayer extends LayerSpec {
  readonly digest: string
  readonly size: number
  readonly diffId: string
  readonly files: number
}

/** A gzip layer of `entries` (a dir entry is made for every parent directory). */
export const gzipLayer = (entries: ReadonlyArray<RawEntry>): TestLayer => {
  const dirs = new Set<string>()
  const all: RawEntry[] = []
  for (const e of entries) {
    const name = typeof e.name === "string" ? e.name : new TextDecoder().decode(e.name)
    const parts = name.replace(/\/$/, "").split("/").slice(0, -1)
    for (let i = 1; i <= parts.length; i++) {
      const d = `${parts.slice(0, i).join("/")}/`
      if (!dirs.has(d)) {
        dirs.add(d)
        all.push({ name: d, type: "dir" })
      }
    }
    all.push(e)
  }
  const tar = rawTar(all)
  const blob = gzipSync(tar, { level: 1 })
  return { blob, digest: digestOf(blob), size: blob.length, diffId: digestOf(tar), files: all.length }
}

/** A layer of `count` small files (`bytes` of random data each) under DIR/. */
export const manyFilesLayer = (dir: string, count: number, bytes = 200): TestLayer =>
  gzipLayer(Array.from({ length: count }, (_, i) => ({ name: `${dir}/d${Math.floor(i / 200)}/f${i}`, content: randomBytes(bytes) })))

/** A layer holding one file of `bytes` random bytes (gzip cannot shrink it). */
export const randomLayer = (name: string, bytes: number): TestLayer => gzipLayer([{ name, content: randomBytes(bytes) }])

/** A layer holding one file of `bytes` zeros (a tiny blob that extracts big). */
export const zerosLayer = (name: string, bytes: number): TestLayer => gzipLayer([{ name, content: new Uint8Array(bytes) }])

export interface TestImage extends BuiltManifest {
  /** `HOST/REPO:TAG` as pulled (host is whatever the caller pulls through) */
  readonly repo: string
  readonly tag: string
  readonly layers: ReadonlyArray<TestLayer>
}

/** Pushes the layers and a manifest naming them to the registry at `registryUrl`, over HTTP. */
export const pushTestImage = async (registryUrl: string, repo: string, tag: string, layers: ReadonlyArray<TestLayer>): Promise<TestImage> => {
  const built = await pushImageHttp(registryUrl, repo, tag, layers)
  return { ...built, repo, tag, layers }
}

export const refOf = (host: string, img: { repo: string; tag: string }) => `${host}/${img.repo}:${img.tag}`

// ---- store checks ------------------------------------------------------------------------

export const stagingDir = (root: string) => join(root, ".als", "staging")
export const locksDir = (root: string) => join(root, ".als", "locks")
export const logFile = (root: string) => join(root, ".als", "log")

export const stagingEntries = (root: string): string[] => (existsSync(stagingDir(root)) ? readdirSync(stagingDir(root)) : [])
export const lockEntries = (root: string): string[] => (existsSync(locksDir(root)) ? readdirSync(locksDir(root)) : [])

const LAYER_NAME = /^sha256:[0-9a-f]{64}$/

export interface StoreState {
  /** layer dirs that are whole (blob digest, size and DiffID verified against info) */
  readonly committed: string[]
  /** every way the store is not what a client may see; [] when fine */
  readonly problems: string[]
  /** names no client looks up that a crash left behind (a symlink made under a temporary name) */
  readonly junk: string[]
}

/**
 * What a client sees in the store: every `sha256:*` entry must be a whole layer (diff/, info,
 * blob; info names the blob's true digest and size, and the DiffID `expected` gives for it),
 * every `:ref` view entry must lead to one, and nothing half-renamed may be lying around.
 */
export const inspectStore = (root: string, expected: ReadonlyMap<string, { diffId: string }> = new Map()): StoreState => {
  const committed: string[] = []
  const problems: string[] = []
  const junk: string[] = []
  const names = existsSync(root) ? readdirSync(root) : []
  for (const name of names) {
    const p = join(root, name)
    if (name.startsWith("sha256:") && !LAYER_NAME.test(name)) {
      junk.push(name)
      continue
    }
    if (!LAYER_NAME.test(name)) continue
    const st = lstatSync(p)
    if (st.isSymbolicLink()) continue // a TOC alias: checked through its target below
    if (!st.isDirectory()) {
      problems.push(`${name}: not a directory`)
      continue
    }
    const has = (e: string, dir: boolean) => {
      try {
        const s = statSync(join(p, e))
        return dir ? s.isDirectory() : s.isFile()
      } catch {
        return false
      }
    }
    if (!has("diff", true) || !has("info", false) || !has("blob", false)) {
      problems.push(`${name}: incomplete (diff ${has("diff", true)}, info ${has("info", false)}, blob ${has("blob", false)})`)
      continue
    }
    let info: Record<string, unknown>
    try {
      info = JSON.parse(readFileSync(join(p, "info"), "utf8")) as Record<string, unknown>
    } catch (e) {
      problems.push(`${name}: info is not JSON (${String(e)})`)
      continue
    }
    const blobDigest = sha256File(join(p, "blob"))
    const blobSize = statSync(join(p, "blob")).size
    if (blobDigest !== name) problems.push(`${name}: blob has digest ${blobDigest}`)
    if (info["compressed-diff-digest"] !== name) problems.push(`${name}: info compressed-diff-digest ${String(info["compressed-diff-digest"])}`)
    if (info["compressed-size"] !== blobSize) problems.push(`${name}: info compressed-size ${String(info["compressed-size"])}, blob has ${blobSize}`)
    const want = expected.get(name)?.diffId
    if (want !== undefined && info["diff-digest"] !== want) problems.push(`${name}: info diff-digest ${String(info["diff-digest"])}, expected ${want}`)
    committed.push(name)
  }
  for (const name of names) {
    const p = join(root, name)
    if (name.startsWith(".") || LAYER_NAME.test(name) || !lstatSync(p).isDirectory()) continue
    // a `:ref` view (base64 of a reference): every entry leads to a whole layer
    for (const e of readdirSync(p)) {
      if (!LAYER_NAME.test(e)) {
        junk.push(`${name}/${e}`)
        continue
      }
      try {
        for (const f of ["info", "blob", "diff"]) statSync(join(p, e, f))
      } catch {
        problems.push(`${name}/${e}: leads to no whole layer`)
      }
    }
  }
  return { committed: committed.sort(), problems, junk }
}

/** `als ls --json` rows; every one must be complete. */
export const alsLs = async (root: string): Promise<Array<{ digest: string; complete: boolean }>> => {
  const r = await als(["ls", "--json", "--root", root])
  if (r.exitCode !== 0) throw new Error(`als ls failed:\n${describeResult(r)}`)
  return r.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as { digest: string; complete: boolean })
}

/** The log checked through the library: every frame, checksum and link (what `als audit` will do). */
export const verifyLog = (root: string): Promise<VerifyReport> =>
  Effect.runPromise(
    Effect.flatMap(EventLog, (log) => log.verify()).pipe(Effect.provide(EventLogFile(root, { sync: false }).pipe(Layer.provide(IdsLive)))),
  )

let auditAvailable: Promise<boolean> | undefined

/**
 * `als audit --deep --root ROOT` when this build has the command (it is being added), else
 * undefined: log and store checked against each other.
 */
export const auditIfAvailable = async (root: string): Promise<AlsResult | undefined> => {
  auditAvailable ??= als(["--help"]).then((r) => /^\s+audit\s/m.test(r.stdout + r.stderr))
  if (!(await auditAvailable)) return undefined
  return als(["audit", "--deep", "--root", root])
}

/** `als audit` (when available) finds nothing. */
export const expectCleanAudit = async (root: string, what: string) => {
  const r = await auditIfAvailable(root)
  if (r === undefined) return
  expect({ what, audit: r.exitCode, out: r.exitCode === 0 ? "" : `${r.stdout}${r.stderr}` }).toEqual({ what, audit: 0, out: "" })
}

/** Everything `als log --json` shows, which must succeed. */
export const readLog = (root: string): Promise<AlsLogEvent[]> => alsLog(root)

/** Events of the workflow that logged `last` (e.g. the last PullCompleted). */
export const workflowOf = (log: ReadonlyArray<AlsLogEvent>, last: AlsLogEvent) => log.filter((e) => e.workflow === last.workflow)

/** Counts per layer of events of `type`. */
export const countByLayer = (events: ReadonlyArray<AlsLogEvent>, type: string): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const e of events) if (e.type === type) out[String(e.layer)] = (out[String(e.layer)] ?? 0) + 1
  return out
}

/** The full check after a crash: store as a client sees it, `als ls`, `als log`. */
export const expectConsistentStore = async (root: string, expected: ReadonlyMap<string, { diffId: string }>, what: string) => {
  const state = inspectStore(root, expected)
  expect({ what, problems: state.problems }).toEqual({ what, problems: [] })
  if (state.junk.length > 0) console.warn(`${what}: left behind (never cleaned): ${state.junk.join(", ")}`)
  // killed before the store was made (no log yet): read-only commands rightly refuse the
  // directory as "not an als store"; nothing may have been committed in it
  if (!existsSync(join(root, ".als", "log"))) {
    expect({ what, committed: state.committed }).toEqual({ what, committed: [] })
    return state
  }
  const ls = await alsLs(root)
  expect({ what, incomplete: ls.filter((r) => !r.complete).map((r) => r.digest) }).toEqual({ what, incomplete: [] })
  expect({ what, ls: ls.map((r) => r.digest).sort() }).toEqual({ what, ls: state.committed })
  await readLog(root) // throws unless `als log` reads the whole log
  return state
}

export const layerMap = (...images: ReadonlyArray<{ layers: ReadonlyArray<{ digest: string; diffId: string }> }>) =>
  new Map(images.flatMap((i) => i.layers.map((l) => [l.digest, { diffId: l.diffId }] as const)))

/** Bytes of every file under `dir` (what a staging entry holds so far). */
export const treeStats = (dir: string): { files: number; bytes: number } => {
  let files = 0
  let bytes = 0
  const walk = (d: string) => {
    let entries: import("node:fs").Dirent[]
    try {
      entries = readdirSync(d, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      files++
      if (e.isDirectory()) walk(join(d, e.name))
      else if (e.isFile()) {
        try {
          bytes += statSync(join(d, e.name)).size
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  walk(dir)
  return { files, bytes }
}

/**
 * After a kill: the store is consistent as a client sees it; then the next pull of `ref` exits
 * 0 within the stale-lock takeover time (a dead holder's lock goes stale after 10 s), leaves no
 * staging and no lock, reuses exactly the layers committed before (LayerFound) and fetches
 * exactly the others (BlobFetched); the log verifies. Returns the state found after the kill.
 */
export const expectRecoveryAfterKill = async (root: string, ref: string, img: TestImage, what: string): Promise<StoreState> => {
  const expected = layerMap(img)
  const before = await expectConsistentStore(root, expected, `${what}: after the kill`)
  const started = Date.now()
  const r = await als(["pull", "--root", root, "--tls-verify=false", ref], { timeoutMs: 2 * MIN })
  const ms = Date.now() - started
  if (r.exitCode !== 0) throw new Error(`${what}: the pull after the kill failed:\n${describeResult(r)}`)
  expect({ what, slow: ms > 25_000 ? ms : 0 }).toEqual({ what, slow: 0 })
  expect({ what, staging: stagingEntries(root) }).toEqual({ what, staging: [] })
  expect({ what, locks: lockEntries(root), logLock: existsSync(join(root, ".als", "log.lock")) }).toEqual({ what, locks: [], logLock: false })
  const after = await expectConsistentStore(root, expected, `${what}: after the pull that followed`)
  expect({ what, committed: after.committed }).toEqual({ what, committed: img.layers.map((l) => l.digest).sort() })
  const log = await readLog(root)
  const done = log.filter((e) => e.type === "PullCompleted").at(-1)
  expect({ what, completed: done !== undefined }).toEqual({ what, completed: true })
  const rerun = workflowOf(log, done!)
  const all = img.layers.map((l) => l.digest)
  const layersOf = (type: string) => rerun.filter((e) => e.type === type).map((e) => String(e.layer)).sort()
  expect({ what, found: layersOf("LayerFound"), fetched: layersOf("BlobFetched") })
    .toEqual({ what, found: before.committed, fetched: all.filter((d) => !before.committed.includes(d)).sort() })
  const report = await verifyLog(root)
  expect({ what, ok: report.ok, problems: report.problems }).toEqual({ what, ok: true, problems: [] })
  await expectCleanAudit(root, `${what}: after the pull that followed`)
  return before
}
