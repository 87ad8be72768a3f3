/**
 * The store on disk: what clients can see, and the only code that changes it.
 *
 * A layer becomes visible in one step: it is built in `.als/staging/`, then its directory is
 * renamed into place. Names that point at a layer (TOC aliases, the `:ref` view) are
 * symlinks made under a temporary name and renamed over the final one, so a client never
 * sees a half-made entry either.
 */
import { Effect, Scope } from "effect"
import * as fsSync from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { isDigest, type Digest } from "../domain/Digest.ts"
import type { VerifiedLayer } from "../domain/LayerDescriptor.ts"
import { type LayerInfoClaims, parseLayerInfo, renderLayerInfo } from "../domain/LayerInfo.ts"
import { decodeRef, LAYER_ENTRIES } from "../domain/StorePaths.ts"
import { ioError, StoreIoError } from "./errors.ts"
import { Syscalls } from "../sys/Syscalls.ts"
import { syncfsOffThread } from "../sys/SyncfsOffThread.ts"
import { StoreConfig } from "./StoreConfig.ts"
import { readPoolFile } from "../verify/PoolFiles.ts"
import { processAlive as pidAlive } from "../sys/ProcessAlive.ts"

export interface StoredLayer {
  readonly digest: Digest
  readonly path: string
  /** where `diff` points when the layer is linked into a pool */
  readonly linkedTo?: string
  /** what its `info` says (nothing when that is missing or malformed: `als audit` names it) */
  readonly facts: LayerInfoClaims
  readonly aliases: ReadonlyArray<Digest>
  readonly refs: ReadonlyArray<string>
  readonly complete: boolean
}

/** Events the caller logs around the rename that makes a layer visible. */
export interface CommitHooks {
  /** logged once the layer is complete and durable, before it becomes visible */
  readonly announce: Effect.Effect<void, unknown>
  /** logged when the rename then failed after all */
  readonly retract: (why: string) => Effect.Effect<void>
}

/** Where the symlink at `p` points; undefined when there is none (a cheap local call). */
const linkTarget = (p: string): string | undefined => {
  try {
    return fsSync.readlinkSync(p)
  } catch {
    return undefined
  }
}

const exists = (p: string) => fs.stat(p).then(() => true, () => false)

/** `<digest>.<host>.<pid>.<random>[.<kind>]`: who made a staging entry. */
const parseStagingName = (name: string): { host: string; pid: number } | undefined => {
  const m = /^(?:sha(?:256|512)-[a-f0-9]+|link)\.(.+)\.(\d+)\.[a-z0-9]+(?:\.[a-z]+)?$/.exec(name)
  return m ? { host: m[1]!, pid: Number(m[2]) } : undefined
}

/**
 * Modes als gives what it creates, whatever the caller's umask (docs/security.md):
 * what clients read is world-readable, what is als's own is the owner's only.
 */
export const Modes = {
  /** the store root, layer directories, `diff/`, `:ref` view directories, `.pool` */
  shared: 0o755,
  /** `info`, `blob` */
  file: 0o644,
  /** `.als`, `.als/staging` (and what is built there until it is committed), `.als/locks` */
  own: 0o700,
  /** `.als/log` */
  log: 0o600,
} as const

/** mkdir with an exact mode (mkdir's mode is masked by the umask; chmod is not). */
export const mkdirMode = (dir: string, mode: number): void => {
  fsSync.mkdirSync(dir, { mode })
  fsSync.chmodSync(dir, mode)
}

/** What a name in the root is now, for deciding whether a new name may take its place. */
const nameAt = (p: string): "absent" | "dir" | "dangling" | "link" | "other" => {
  let st: fsSync.Stats
  try {
    st = fsSync.lstatSync(p)
  } catch {
    return "absent"
  }
  if (st.isDirectory()) return "dir"
  if (!st.isSymbolicLink()) return "other"
  return fsSync.existsSync(p) ? "link" : "dangling"
}

/** How often a name is put again after gc removed its directory under it; each loss needs a
 * gc pass landing in a window of a few syscalls, so a handful is plenty. */
const MAKE_PARENT_TRIES = 8

const uniqueSuffix = () => `${os.hostname()}.${process.pid}.${Math.random().toString(36).slice(2, 10)}`

/** What the LayerStore service is made of (the lean lookup path builds it without layers). */
export const makeLayerStore = Effect.gen(function*() {
  const { paths } = yield* StoreConfig
  const sys = yield* Syscalls

  const io = <A>(op: string, p: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: ioError(op, p) })

  /**
   * Creates the store's directories; true when the store did not exist before. Synchronous
   * calls: six stat/mkdir round trips through the thread pool cost ~2 ms of every lookup.
   */
  const init = Effect.fn("LayerStore.init")(function*() {
    const fresh = !fsSync.existsSync(paths.alsDir)
    const dirs: ReadonlyArray<readonly [string, number]> = [
      [paths.root, Modes.shared],
      [paths.alsDir, Modes.own],
      [paths.staging, Modes.own],
      [paths.locks, Modes.own],
      [paths.pool, Modes.shared],
    ]
    for (const [d, mode] of dirs) {
      yield* Effect.try({
        try: () => {
          if (fsSync.existsSync(d)) return // an existing directory keeps the mode its owner gave it
          if (d === paths.root) fsSync.mkdirSync(path.dirname(d), { recursive: true })
          mkdirMode(d, mode)
        },
        catch: ioError("create directory", d),
      })
    }
    return fresh
  })

  /** `.als/staging`, made owner-only when als has to make it. */
  const ensureStaging = () => {
    if (fsSync.existsSync(paths.staging)) return
    fsSync.mkdirSync(paths.alsDir, { recursive: true, mode: Modes.own })
    try {
      mkdirMode(paths.staging, Modes.own)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
    }
  }

  /** The test containers/storage applies: diff, info and blob all stat (following links). */
  const isComplete = (dir: string) =>
    Promise.all(LAYER_ENTRIES.map((e) => exists(path.join(dir, e)))).then((r) => r.every(Boolean))

  /**
   * The layer's directory when it is complete under its blob digest. Only the layer's own
   * directory counts: a TOC alias that happens to carry this name belongs to another layer.
   */
  const find = Effect.fn("LayerStore.find")(function*(digest: Digest) {
    const dir = paths.layer(digest)
    if (nameAt(dir) !== "dir") return undefined
    return (yield* io("stat", dir, () => isComplete(dir))) ? dir : undefined
  })

  /** A fresh staging directory, removed when the scope closes unless it was committed. */
  const stage = (digest: Digest): Effect.Effect<string, StoreIoError, Scope.Scope> =>
    Effect.acquireRelease(
      io("create staging directory", paths.staging, async () => {
        ensureStaging()
        const dir = path.join(paths.staging, `${digest.replace(":", "-")}.${uniqueSuffix()}`)
        // it becomes the layer directory clients read: 0755 from the start
        mkdirMode(dir, Modes.shared)
        return dir
      }),
      (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }).catch(() => undefined)),
    )

  /** A path in staging for a single file (e.g. a blob fetched for a pool-linked layer). */
  const stagingFile = (digest: Digest, kind: string) =>
    io("create staging directory", paths.staging, async () => {
      ensureStaging()
      return path.join(paths.staging, `${digest.replace(":", "-")}.${uniqueSuffix()}.${kind}`)
    })

  /**
   * Removes what dead processes left in staging: names carry host and pid, so a process on
   * this host that is gone is known for sure; another host's leftovers only once they are
   * old (a live pull touches its files continuously).
   */
  const cleanStaging = Effect.fn("LayerStore.cleanStaging")(function*(otherHostAgeMs = 24 * 3600_000) {
    const names = yield* io("read staging", paths.staging, () => fs.readdir(paths.staging).catch(() => [] as string[]))
    const host = os.hostname()
    const removed: string[] = []
    for (const name of names) {
      const owner = parseStagingName(name)
      const p = path.join(paths.staging, name)
      let dead: boolean
      if (owner && owner.host === host) dead = !pidAlive(owner.pid)
      else {
        const st = yield* Effect.promise(() => fs.lstat(p).catch(() => undefined))
        dead = st !== undefined && Date.now() - st.mtimeMs > otherHostAgeMs
      }
      if (dead) {
        yield* io("clean staging", p, () => fs.rm(p, { recursive: true, force: true }))
        removed.push(name)
      }
    }
    return removed
  })

  /** Symlink `name -> target`, replacing whatever `name` was, atomically. */
  /**
   * `name` -> `target`, made in staging (where a dead process's leftovers are cleaned) and
   * renamed into place. `makeParent` makes `name`'s directory when it is missing: `als gc`
   * removes empty `:ref` directories (pruneDanglingNames), and may do so between a pull
   * creating one and its first entry landing in it.
   */
  const putSymlink = (target: string, name: string, makeParent?: () => void) =>
    io("create symlink", name, async () => {
      ensureStaging()
      const tmp = path.join(paths.staging, `link.${uniqueSuffix()}.link`)
      await fs.symlink(target, tmp)
      try {
        for (let tries = 1; ; tries++) {
          makeParent?.()
          try {
            await fs.rename(tmp, name)
            return
          } catch (e) {
            const parentGone = (e as NodeJS.ErrnoException).code === "ENOENT" && nameAt(path.dirname(name)) === "absent"
            if (makeParent === undefined || !parentGone || tries >= MAKE_PARENT_TRIES) throw e
          }
        }
      } catch (e) {
        await fs.rm(tmp, { force: true })
        throw e
      }
    })

  const writeInfo = (dir: string, facts: VerifiedLayer) =>
    io("write layer info", path.join(dir, "info"), async () => {
      const f = path.join(dir, "info")
      const h = await fs.open(f, fsSync.constants.O_WRONLY | fsSync.constants.O_CREAT | fsSync.constants.O_TRUNC | fsSync.constants.O_NOFOLLOW, Modes.file)
      try {
        await h.chmod(Modes.file)
        await h.writeFile(renderLayerInfo(facts))
        await h.sync()
      } finally {
        await h.close()
      }
    })

  /**
   * Moves a complete staging directory (diff/ and blob in it) into place under the blob
   * digest, writing `info` first. If another process committed the same layer meanwhile,
   * theirs stays and ours is dropped with the staging scope: both were verified alike.
   */
  const commit = Effect.fn("LayerStore.commit")(function*(stagingDir: string, facts: VerifiedLayer, hooks?: CommitHooks) {
    yield* writeInfo(stagingDir, facts)
    // Durable before visible: after a crash or power loss a committed layer is whole.
    // One syncfs flushes the extracted tree; fsync per file would cost a syscall per entry.
    // Off the main thread: other layers keep downloading and extracting while the disk flushes.
    yield* Effect.tryPromise({ try: () => syncfsOffThread(sys, stagingDir), catch: ioError("sync", stagingDir) })
    // The log says it before the store shows it: a crash between the two leaves the log
    // ahead (the next pull simply commits the layer again), never a layer the log cannot
    // explain.
    if (hooks) yield* hooks.announce
    const dest = paths.layer(facts.digest)
    const rename = () =>
      fs.rename(stagingDir, dest).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          if (e.code === "EEXIST" || e.code === "ENOTEMPTY") return false
          throw e
        },
      )
    const moved = yield* io("commit layer", dest, async () => {
      // a name that is this layer's own digest belongs to it: a TOC alias that took it (another
      // layer's TOC happens to equal this blob digest) gives way to the real layer
      for (let tries = 0;; tries++) {
        const now = nameAt(dest)
        if (now === "link" || now === "dangling") await fs.rm(dest, { force: true })
        try {
          return await rename()
        } catch (e) {
          // an alias came back between the rm and the rename: once more
          if ((e as NodeJS.ErrnoException).code !== "ENOTDIR" || tries >= 3) throw e
        }
      }
    }).pipe(Effect.tapError((e) => hooks ? hooks.retract(e.message) : Effect.void))
    const aliasRefused = facts.tocDigest && facts.tocDigest !== facts.digest
      ? yield* putAlias(facts.tocDigest, facts.digest)
      : undefined
    return { path: dest, fresh: moved, ...(aliasRefused ? { aliasRefused } : {}) }
  })

  /**
   * The TOC alias `<root>/<toc> -> <blob digest>`, unless the name is taken: a layer
   * directory (its own blob digest) or another layer's alias is never replaced or shadowed.
   * Returns why it was not made, when it was not.
   */
  const putAlias = (toc: Digest, blobDigest: Digest) =>
    Effect.gen(function*() {
      const taken = aliasTaken(toc, blobDigest)
      if (taken !== undefined) return taken
      if (nameAt(paths.layer(toc)) === "link") return undefined
      // the layer whose digest this is may have been committed since: it keeps its name
      return yield* putSymlink(blobDigest, paths.layer(toc)).pipe(
        Effect.as(undefined),
        Effect.catchIf(
          (e) => e.code === "EISDIR" || e.code === "ENOTEMPTY" || e.code === "EEXIST",
          () => Effect.succeed(`${toc} is the digest of another layer in the store`),
        ),
      )
    })

  /**
   * Why `<root>/<toc>` cannot be an alias of `blobDigest` (another layer's directory or
   * alias holds the name), or undefined when it is free or already this layer's. Callers ask
   * before committing, so that a TOC digest that cannot be a name is not recorded as one.
   */
  const aliasTaken = (toc: Digest, blobDigest: Digest): string | undefined => {
    const name = paths.layer(toc)
    const now = nameAt(name)
    if (now === "absent" || now === "dangling") return undefined
    if (now === "link" && linkTarget(name) === blobDigest) return undefined
    return now === "dir"
      ? `${toc} is the digest of another layer in the store`
      : now === "link"
      ? `${toc} already names another layer (-> ${linkTarget(name)})`
      : `${toc} is taken by something that is not an alias`
  }

  /**
   * Makes a layer visible whose tree lives in a pool: `diff` (and `blob`, when the pool has
   * it) are symlinks into the pool, `info` is ours. No tree is copied. When the pool has no
   * blob the caller passes one it fetched and verified (`blobFile`), which is moved in.
   */
  const link = Effect.fn("LayerStore.link")(function*(
    facts: VerifiedLayer,
    target: { readonly diff: string; readonly blob?: string | undefined; readonly blobFile?: string | undefined },
    hooks?: CommitHooks,
  ) {
    return yield* Effect.scoped(Effect.gen(function*() {
      const dir = yield* stage(facts.digest)
      yield* io("link diff", dir, () => fs.symlink(target.diff, path.join(dir, "diff")))
      if (target.blob) {
        yield* io("link blob", dir, () => fs.symlink(target.blob!, path.join(dir, "blob")))
      } else if (target.blobFile) {
        yield* io("move blob", dir, async () => {
          await fs.chmod(target.blobFile!, Modes.file)
          await fs.rename(target.blobFile!, path.join(dir, "blob"))
        })
      }
      return yield* commit(dir, facts, hooks)
    }))
  })

  /**
   * The `:ref` view: `<root>/<b64(ref)>/<key> -> ../<blob digest>` for each key. Returns how
   * many names it had to make or change (0: the view was already so, nothing to log), and the
   * entries it refused because their key names another layer.
   */
  const indexRefReport = Effect.fn("LayerStore.indexRef")(function*(
    ref: string,
    entries: ReadonlyArray<{ readonly key: Digest; readonly blobDigest: Digest }>,
  ) {
    // A key that is a layer's own blob digest names that layer and no other: a TOC key equal
    // to it (in this batch, or to a layer in the store) is refused, never pointed elsewhere.
    const blobs = new Set(entries.map((e) => e.blobDigest))
    const refused: Array<{ readonly key: Digest; readonly blobDigest: Digest; readonly reason: string }> = []
    const keep = entries.filter((e) => {
      if (e.key === e.blobDigest) return true
      const why = blobs.has(e.key)
        ? `${e.key} is the digest of another layer of the image`
        : nameAt(paths.layer(e.key)) === "dir"
        ? `${e.key} is the digest of another layer in the store`
        : undefined
      if (why !== undefined) refused.push({ ...e, reason: why })
      return why === undefined
    })
    const wanted = keep.filter(({ key, blobDigest }) => linkTarget(paths.refEntry(ref, key)) !== `../${blobDigest}`)
    if (wanted.length === 0) return { changed: 0, refused }
    const dir = paths.refDir(ref)
    const makeDir = () => {
      if (nameAt(dir) !== "absent") return
      try {
        mkdirMode(dir, Modes.shared)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
      }
    }
    yield* io("create ref directory", dir, async () => makeDir())
    for (const { key, blobDigest } of wanted) {
      yield* putSymlink(`../${blobDigest}`, paths.refEntry(ref, key), makeDir)
    }
    return { changed: wanted.length, refused }
  })

  /** indexRefReport without the refusals: how many names it made or changed. */
  const indexRef = (ref: string, entries: ReadonlyArray<{ readonly key: Digest; readonly blobDigest: Digest }>) =>
    Effect.map(indexRefReport(ref, entries), (r) => r.changed)

  /**
   * The TOC digest a stored layer answers to: its `info`'s, which als wrote after checking
   * it, and only when that `info` names this very layer. Undefined when unreadable.
   */
  const storedToc = (dir: string, digest: Digest): Digest | undefined => {
    try {
      const r = readPoolFile(path.join(dir, "info"))
      if (r._tag !== "Read") return undefined
      const info = parseLayerInfo(r.text)
      return info.digest === digest ? info.tocDigest : undefined
    } catch {
      return undefined
    }
  }

  /**
   * Takes a layer out of the root in one step (rename into staging), then deletes it and
   * the names that pointed at it. False when it was not there.
   */
  const remove = Effect.fn("LayerStore.remove")(function*(digest: Digest) {
    const trash = path.join(paths.staging, `${digest.replace(":", "-")}.${uniqueSuffix()}.trash`)
    const moved = yield* io("remove layer", paths.layer(digest), async () => {
      ensureStaging()
      return fs.rename(paths.layer(digest), trash).then(() => true, (e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return false
        throw e
      })
    })
    if (!moved) return false
    yield* pruneDanglingNames()
    yield* io("delete layer", trash, () => fs.rm(trash, { recursive: true, force: true }))
    return true
  })

  /** Removes TOC aliases and `:ref` entries whose layer is gone, and empty ref directories. */
  const pruneDanglingNames = Effect.fn("LayerStore.pruneDanglingNames")(function*() {
    yield* io("prune names", paths.root, async () => {
      for (const d of await fs.readdir(paths.root, { withFileTypes: true })) {
        const p = path.join(paths.root, d.name)
        if (isDigest(d.name) && d.isSymbolicLink()) {
          if (!(await exists(p))) await fs.rm(p, { force: true })
        } else if (d.isDirectory() && decodeRef(d.name) !== undefined) {
          const entries = await fs.readdir(p)
          for (const e of entries) {
            if (!(await exists(path.join(p, e)))) await fs.rm(path.join(p, e), { force: true })
          }
          if ((await fs.readdir(p)).length === 0) await fs.rmdir(p).catch(() => undefined)
        }
      }
    })
  })

  /** Removes a `:ref` view (its layers stay until `als gc`). False when there was none. */
  const unindexRef = Effect.fn("LayerStore.unindexRef")(function*(ref: string) {
    const dir = paths.refDir(ref)
    return yield* io("remove ref", dir, () =>
      fs.rm(dir, { recursive: true }).then(() => true, (e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT") return false
        throw e
      }))
  })

  /** Every layer directory, its aliases and the refs that name it, read from disk. */
  const list = Effect.fn("LayerStore.list")(function*() {
    const names = yield* io("read store", paths.root, () => fs.readdir(paths.root, { withFileTypes: true }))
    const aliases = new Map<string, Digest[]>()
    const refs = new Map<string, string[]>()
    const layers: Array<Omit<StoredLayer, "aliases" | "refs">> = []
    for (const d of names) {
      if (isDigest(d.name) && d.isSymbolicLink()) {
        const t = yield* io("read link", d.name, () => fs.readlink(path.join(paths.root, d.name)))
        aliases.set(t, [...(aliases.get(t) ?? []), d.name])
      } else if (isDigest(d.name) && d.isDirectory()) {
        const dir = path.join(paths.root, d.name)
        const info = yield* io("read info", dir, async () => {
          const r = readPoolFile(path.join(dir, "info"))
          if (r._tag !== "Read") return {}
          try {
            return parseLayerInfo(r.text)
          } catch {
            return {} // `als audit` names a malformed info; here it only lacks facts
          }
        })
        const linkedTo = yield* io("read link", dir, () =>
          fs.readlink(path.join(dir, "diff")).catch(() => undefined))
        const complete = yield* io("stat", dir, () => isComplete(dir))
        layers.push({ digest: d.name, path: dir, facts: info, complete, ...(linkedTo ? { linkedTo } : {}) })
      } else if (d.isDirectory()) {
        const ref = decodeRef(d.name)
        if (ref === undefined) continue
        const entries = yield* io("read ref directory", d.name, () =>
          fs.readdir(path.join(paths.root, d.name)).catch(() => [] as string[]))
        for (const e of entries) {
          const t = yield* io("read link", e, () =>
            fs.readlink(path.join(paths.root, d.name, e)).catch(() => ""))
          const target = path.basename(t)
          refs.set(target, [...new Set([...(refs.get(target) ?? []), ref])])
        }
      }
    }
    return layers
      .sort((a, b) => a.digest.localeCompare(b.digest))
      .map((l): StoredLayer => ({ ...l, aliases: aliases.get(l.digest) ?? [], refs: refs.get(l.digest) ?? [] }))
  })

  return { paths, init, find, stage, stagingFile, cleanStaging, commit, link, indexRef, indexRefReport, storedToc, aliasTaken, unindexRef, remove, pruneDanglingNames, list, putSymlink } as const
})

export class LayerStore extends Effect.Service<LayerStore>()("als/LayerStore", { effect: makeLayerStore }) {}
