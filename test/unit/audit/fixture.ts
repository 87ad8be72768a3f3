/**
 * A small, real store made by hand for the audit tests: three layers (pulled; pulled with a
 * TOC alias; linked from a pool), one ref view naming them, and the log that explains it all.
 */
import { Effect, Layer, Stream } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type AuditOptions, type AuditReport, auditStore } from "../../../src/audit/Audit.ts"
import { renderLayerInfo } from "../../../src/domain/LayerInfo.ts"
import type { Digest } from "../../../src/domain/Digest.ts"
import { encodeRef } from "../../../src/domain/StorePaths.ts"
import { EventLog, EventLogFile, IdsLive, type LogEntry } from "../../../src/events/EventLog.ts"
import type { Event } from "../../../src/events/Events.ts"

const sha = (s: string | Uint8Array) => `sha256:${createHash("sha256").update(s).digest("hex")}` as Digest

export interface FixtureLayer {
  readonly digest: Digest
  readonly diffId: Digest
  readonly blob: Buffer
  readonly toc?: Digest
}

export interface Fixture {
  readonly root: string
  readonly pool: string
  readonly ref: string
  readonly a: FixtureLayer
  readonly b: FixtureLayer
  readonly c: FixtureLayer
  readonly log: string
  readonly dispose: () => void
}

const layerFacts = (l: FixtureLayer) => ({
  digest: l.digest,
  size: l.blob.length,
  diffId: l.diffId,
  diffSize: 100,
  compression: "gzip" as const,
  tocDigest: l.toc,
})

const logLayer = (root: string) => EventLogFile(root, { sync: false }).pipe(Layer.provide(IdsLive))

export const appendEvents = (root: string, events: ReadonlyArray<Event>, workflow = "wf-1"): Promise<void> =>
  Effect.runPromise(Effect.flatMap(EventLog, (log) => log.append(events, workflow)).pipe(Effect.provide(logLayer(root)), Effect.asVoid))

export const entries = (root: string): Promise<ReadonlyArray<LogEntry>> =>
  Effect.runPromise(
    Effect.flatMap(EventLog, (log) => Stream.runCollect(log.stream())).pipe(
      Effect.map((c) => [...c]),
      Effect.provide(logLayer(root)),
    ),
  )

export const audit = (root: string, opts: AuditOptions = {}): Promise<AuditReport> =>
  Effect.runPromise(auditStore(root, opts).pipe(Effect.provide(logLayer(root))))

const writeLayer = (root: string, l: FixtureLayer) => {
  const dir = path.join(root, l.digest)
  fs.mkdirSync(path.join(dir, "diff", "etc"), { recursive: true })
  fs.writeFileSync(path.join(dir, "diff", "etc", "hostname"), `layer ${l.digest}\n`)
  fs.writeFileSync(path.join(dir, "blob"), l.blob)
  fs.writeFileSync(path.join(dir, "info"), renderLayerInfo(layerFacts(l)))
}

export const makeFixture = async (): Promise<Fixture> => {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "als-audit-"))
  const root = path.join(base, "store")
  const pool = path.join(base, "pool")
  fs.mkdirSync(path.join(root, ".pool"), { recursive: true })
  const mk = (name: string, toc?: boolean): FixtureLayer => {
    const blob = Buffer.from(`blob of ${name}\n`.repeat(10))
    return { digest: sha(blob), diffId: sha(`tar of ${name}`), blob, ...(toc ? { toc: sha(`toc of ${name}`) } : {}) }
  }
  const a = mk("a")
  const b = mk("b", true)
  const c = mk("c")
  writeLayer(root, a)
  writeLayer(root, b)
  fs.symlinkSync(b.digest, path.join(root, b.toc!))
  // c lives in a pool: diff and blob link there, info is ours
  const poolLayer = path.join(pool, c.digest)
  fs.mkdirSync(path.join(poolLayer, "diff"), { recursive: true })
  fs.writeFileSync(path.join(poolLayer, "diff", "file"), "from the pool\n")
  fs.writeFileSync(path.join(poolLayer, "blob"), c.blob)
  fs.mkdirSync(path.join(root, c.digest))
  fs.symlinkSync(path.join(poolLayer, "diff"), path.join(root, c.digest, "diff"))
  fs.symlinkSync(path.join(poolLayer, "blob"), path.join(root, c.digest, "blob"))
  fs.writeFileSync(path.join(root, c.digest, "info"), renderLayerInfo(layerFacts(c)))
  const ref = "registry.example/app:1"
  const view = path.join(root, encodeRef(ref))
  fs.mkdirSync(view)
  for (const [key, target] of [[a.digest, a.digest], [b.digest, b.digest], [b.toc!, b.digest], [c.digest, c.digest]]) {
    fs.symlinkSync(`../${target}`, path.join(view, key!))
  }
  const committed = (l: FixtureLayer, source: "pull" | "link"): Event => ({
    _tag: "LayerCommitted",
    layer: l.digest,
    diffId: l.diffId,
    diffSize: 100,
    blobSize: l.blob.length,
    ...(l.toc ? { tocDigest: l.toc } : {}),
    source,
    ...(source === "link" ? { pool } : {}),
  })
  await appendEvents(root, [
    { _tag: "PullRequested", ref, platform: "linux/amd64" },
    { _tag: "LookupRequested", layer: a.digest, ref },
    { _tag: "LayerMissing", layer: a.digest },
    { _tag: "BlobFetched", layer: a.digest, bytes: a.blob.length, ms: 3 },
    committed(a, "pull"),
    { _tag: "LookupRequested", layer: b.digest, ref },
    { _tag: "LayerMissing", layer: b.digest },
    committed(b, "pull"),
    { _tag: "LookupRequested", layer: c.digest, ref },
    { _tag: "LayerLinked", layer: c.digest, pool, poolPath: poolLayer },
    committed(c, "link"),
    { _tag: "RefIndexed", ref, layers: [a.digest, b.digest, c.digest] },
    { _tag: "PullCompleted", ref, manifestDigest: sha("m"), found: 0, linked: 1, pulled: 2, bytesFetched: 0, ms: 9 },
  ])
  return {
    root,
    pool,
    ref,
    a,
    b,
    c,
    log: path.join(root, ".als", "log"),
    dispose: () => fs.rmSync(base, { recursive: true, force: true }),
  }
}
