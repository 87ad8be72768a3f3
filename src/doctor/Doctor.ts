/**
 * `als doctor`: runs the probes for one store and judges them, in the order a person would
 * fix things (the store, its filesystem, the syscalls, podman's configuration, podman, the
 * log). Each check stands alone: one failing does not hide the others.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { EventLog, EventLogFile, IdsLive, logPath } from "../events/EventLog.ts"
import {
  type Check,
  fsTypeName,
  judgeDType,
  judgeFsType,
  judgeLog,
  judgeOverlay,
  judgePodman,
  judgeServeMount,
  judgeStorageConf,
  judgeStore,
  judgeSyscalls,
  judgeWhiteout,
  judgeXattr,
  type LogSeen,
  summarize,
  type Summary,
} from "./Checks.ts"
import { alsServeMountsHere, serveMountsOf, fsMagicOf, loadSyscalls, podmanVersion, probeScratch, sameDir, seeStore, xfsFtype } from "./Probes.ts"
import { storageConfSnippet, storageConfTarget } from "../config/StorageConf.ts"
import { hostStorage } from "../config/StorageConfFiles.ts"

export interface DoctorReport extends Summary {
  readonly root: string
  readonly checks: ReadonlyArray<Check>
}

export interface DoctorEnv {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly uid: number
  readonly home: string
}

export const hostEnv = (): DoctorEnv => ({ env: process.env, uid: process.getuid?.() ?? 0, home: os.homedir() })

const skipped = (id: string, title: string, why: string): Check => ({ id, title, status: "skip", detail: why })

const verifyLog = (root: string): Effect.Effect<LogSeen> => {
  const file = logPath(root)
  if (!fs.existsSync(file)) return Effect.succeed({ exists: false })
  return Effect.flatMap(EventLog, (log) => log.verify()).pipe(
    Effect.provide(EventLogFile(root).pipe(Layer.provide(IdsLive))),
    Effect.map((report): LogSeen => ({ exists: true, report })),
    Effect.catchAll((e) => Effect.succeed<LogSeen>({ exists: true, error: e.message })),
    Effect.catchAllDefect((d) => Effect.succeed<LogSeen>({ exists: true, error: String(d) })),
  )
}

export const runDoctor = (rootArg: string, host: DoctorEnv = hostEnv()) =>
  Effect.gen(function*() {
    const root = path.resolve(rootArg)
    const checks: Array<Check> = []
    const store = seeStore(root)
    checks.push(judgeStore(root, store))

    const sys = yield* Effect.promise(loadSyscalls)
    const fsUsable = store.exists && store.isDir
    if (fsUsable) {
      const magic = fsMagicOf(root)
      const name = fsTypeName(magic)
      checks.push(judgeFsType(magic))
      checks.push(judgeDType(name, name === "xfs" ? xfsFtype(root) : undefined))
      const opaque = host.uid === 0 ? "trusted.overlay.opaque" : "user.overlay.opaque"
      const scratch = yield* Effect.try(() => probeScratch(root, "api" in sys ? sys.api : undefined, opaque, host.uid)).pipe(Effect.either)
      if (scratch._tag === "Right") {
        checks.push(judgeXattr(opaque, scratch.right.xattr), judgeWhiteout(scratch.right.whiteout), judgeOverlay(scratch.right.overlay))
      } else {
        const why = `cannot make a scratch directory in ${root}: ${String((scratch.left as { error?: unknown }).error ?? scratch.left)}`
        checks.push(
          { id: "xattr", title: "overlay xattrs", status: "error", detail: why, fix: "check that you may write to the store" },
          skipped("whiteout", "whiteouts (0/0 devices)", why),
          skipped("overlay", "overlay mount test", why),
        )
      }
    } else {
      for (const [id, title] of [["filesystem", "store filesystem"], ["d_type", "d_type support"], ["xattr", "overlay xattrs"], ["whiteout", "whiteouts (0/0 devices)"], ["overlay", "overlay mount test"]]) {
        checks.push(skipped(id!, title!, "no store directory to test"))
      }
    }
    checks.push(judgeSyscalls("api" in sys ? { runtime: sys.runtime } : { error: sys.error }))
    const storage = hostStorage(host)
    // serve mode: a storage.conf entry naming an als serve mount of this store points podman at
    // it through the mount (the mount table names the store; the mount is never stat'ed)
    const mounts = serveMountsOf(root, alsServeMountsHere(), sameDir)
    const sameOrMount = (a: string, b: string) => (b === root && mounts.includes(path.resolve(a))) || sameDir(a, b)
    checks.push(judgeStorageConf(root, storage, sameOrMount, {
      target: storageConfTarget(host),
      snippet: storageConfSnippet(root, storage.ok ? storage.settings : undefined, host),
    }))
    // serve mode: only when an als serve mount is up (the plain store needs no mount)
    if (mounts.length > 0) checks.push(judgeServeMount(root, mounts, storage))
    checks.push(judgePodman(podmanVersion()))
    checks.push(fsUsable ? judgeLog(logPath(root), yield* verifyLog(root)) : skipped("log", "event log", "no store directory"))
    const report: DoctorReport = { root, checks, ...summarize(checks) }
    return report
  })

const mark: Record<Check["status"], string> = { ok: "ok   ", warn: "WARN ", error: "ERROR", skip: "skip " }

/** The report as people read it: one line per check, the fix indented below. */
export const renderReport = (r: DoctorReport): string => {
  const width = Math.max(...r.checks.map((c) => c.title.length))
  const lines = [`als doctor: ${r.root}`, ""]
  for (const c of r.checks) {
    lines.push(`  ${mark[c.status]}  ${c.title.padEnd(width)}  ${c.detail}`)
    if (c.fix) {
      const pad = `  ${" ".repeat(5)}  ${" ".repeat(width)}  `
      const [first, ...more] = c.fix.split("\n")
      lines.push(`${pad}fix: ${first}`, ...more.map((l) => `${pad}     ${l}`))
    }
  }
  lines.push(
    "",
    r.errors > 0
      ? `${r.errors} problem${r.errors > 1 ? "s" : ""} to fix${r.warnings ? `, ${r.warnings} warning${r.warnings > 1 ? "s" : ""}` : ""}.`
      : r.warnings > 0
      ? `Usable, with ${r.warnings} warning${r.warnings > 1 ? "s" : ""}.`
      : "All good.",
  )
  return lines.join("\n")
}
