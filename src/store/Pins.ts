/**
 * Pins: what a running pull holds on to. A pull commits (or finds) layers one by one, but
 * names them by its ref only at the end; in between, a layer no ref names is exactly what
 * `als gc` removes. So a pull keeps a pin directory, `<root>/.als/pins/<host>.<pid>.<random>/`,
 * with one empty file per layer digest it works on, written under the layer's lock before
 * the layer is looked up or committed, and removes the directory when it ends — done, failed
 * or interrupted. gc, holding the same layer lock, keeps every layer a live pin names.
 *
 * A pin whose process is gone cannot protect anything: on this host a dead pid is known for
 * sure (its pin is ignored and removed); another host's pin counts until it is a day old.
 */
import { Effect, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type Digest, isDigest } from "../domain/Digest.ts"
import { ioError, type StoreIoError } from "./errors.ts"
import { processAlive as pidAlive } from "../sys/ProcessAlive.ts"

/** Other hosts' pins older than this belong to pulls that died without cleaning up. */
export const OTHER_HOST_PIN_MAX_AGE_MS = 24 * 3600_000

const DIR_MODE = 0o700
const FILE_MODE = 0o600

export const pinsDir = (alsDir: string) => path.join(alsDir, "pins")

/** `sha256:…` as a file name (':' is fine on Linux, but the store's lock names avoid it too). */
const pinFileName = (d: Digest) => d.replace(":", "-")
const digestOfPinFile = (name: string): Digest | undefined => {
  const d = name.replace("-", ":")
  return isDigest(d) ? d : undefined
}

/** `<host>.<pid>.<random>`: who holds a pin. Hostnames may hold dots; pid and random may not. */
export const parsePinName = (name: string): { readonly host: string; readonly pid: number } | undefined => {
  const m = /^(.+)\.([1-9]\d{0,9})\.[a-z0-9]{6,16}$/.exec(name)
  return m ? { host: m[1]!, pid: Number(m[2]) } : undefined
}

export interface Pin {
  readonly dir: string
  /** pins `digest` until the pull ends; call it holding the layer's lock */
  readonly add: (digest: Digest) => Effect.Effect<void, StoreIoError>
}

/** A pin directory for this pull, removed when the scope closes (also on failure and interrupt). */
export const acquirePin = (alsDir: string): Effect.Effect<Pin, StoreIoError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const parent = pinsDir(alsDir)
        fs.mkdirSync(parent, { recursive: true })
        fs.chmodSync(parent, DIR_MODE)
        const dir = path.join(parent, `${os.hostname()}.${process.pid}.${Math.random().toString(36).slice(2, 10).padEnd(6, "0")}`)
        fs.mkdirSync(dir, { mode: DIR_MODE })
        fs.chmodSync(dir, DIR_MODE)
        return dir
      },
      catch: ioError("create pin", pinsDir(alsDir)),
    }),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })),
  ).pipe(Effect.map((dir): Pin => ({
    dir,
    add: (digest) =>
      Effect.try({
        try: () => {
          const f = path.join(dir, pinFileName(digest))
          fs.closeSync(fs.openSync(f, fs.constants.O_CREAT | fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW, FILE_MODE))
          fs.chmodSync(f, FILE_MODE)
        },
        catch: ioError("pin layer", dir),
      }),
  })))

export interface PinHolder {
  readonly name: string
  readonly host: string
  readonly pid: number
  readonly dir: string
}

/**
 * The pin directories that still count. Pins of dead processes on this host are removed on
 * the way; an entry that is not a pin directory is ignored (it protects nothing, and it is
 * not ours to delete).
 */
const livePinDirs = (alsDir: string, now: number): ReadonlyArray<PinHolder> => {
  const parent = pinsDir(alsDir)
  let names: string[]
  try {
    names = fs.readdirSync(parent)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return []
    throw e
  }
  const host = os.hostname()
  const live: PinHolder[] = []
  for (const name of names) {
    const owner = parsePinName(name)
    if (owner === undefined) continue
    const dir = path.join(parent, name)
    const st = fs.lstatSync(dir, { throwIfNoEntry: false })
    if (st === undefined || !st.isDirectory()) continue
    if (owner.host === host) {
      if (!pidAlive(owner.pid)) {
        fs.rmSync(dir, { recursive: true, force: true })
        continue
      }
    } else if (now - st.mtimeMs > OTHER_HOST_PIN_MAX_AGE_MS) continue
    live.push({ name, ...owner, dir })
  }
  return live
}

/** The live pins naming `digest`; gc asks this holding the layer's lock. */
export const livePinsOf = (alsDir: string, digest: Digest, now = Date.now()): Effect.Effect<ReadonlyArray<PinHolder>, StoreIoError> =>
  Effect.try({
    try: () => livePinDirs(alsDir, now).filter((p) => fs.lstatSync(path.join(p.dir, pinFileName(digest)), { throwIfNoEntry: false }) !== undefined),
    catch: ioError("read pins", pinsDir(alsDir)),
  })

/** Every digest some live pin names (what a dry run reports as kept). */
export const pinnedDigests = (alsDir: string, now = Date.now()): Effect.Effect<ReadonlySet<Digest>, StoreIoError> =>
  Effect.try({
    try: () => {
      const out = new Set<Digest>()
      for (const p of livePinDirs(alsDir, now)) {
        for (const f of fs.readdirSync(p.dir)) {
          const d = digestOfPinFile(f)
          if (d !== undefined) out.add(d)
        }
      }
      return out
    },
    catch: ioError("read pins", pinsDir(alsDir)),
  })
