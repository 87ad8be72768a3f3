// Pieces of the `als serve` end-to-end tests: a serving process started and stopped like a
// service, small runnable images (a static busybox) built and pushed to the test registry, and
// readers for the use counts and fetches in a store's log.

import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import * as tar from "tar-stream"
import { alsCommand, type AlsLogEvent, REPO_ROOT } from "../lib/als.ts"
import { type BuiltLayer, pushLayout, writeOciImage } from "../lib/registry.ts"
import { run } from "../lib/sh.ts"

const BUN = join(REPO_ROOT, "node_modules", ".bin", "bun")

export interface Serving {
  readonly pid: number
  readonly mountpoint: string
  /** stderr so far */
  stderr(): string
  /** resolves with the exit code */
  readonly exited: Promise<number>
  /** sends `signal` and waits for the exit code */
  stop(signal?: NodeJS.Signals): Promise<number>
}

/**
 * `als serve --root ROOT --tls-verify=false [extra…] MNT`, resolved once it says it serves
 * (event-based: its stderr line, not a sleep). Throws with its output if it exits first.
 * `wrap` runs it under another command that ends by exec'ing it (say `unshare … sh -c '…; exec "$@"' sh`),
 * so that `pid` is still the serving process's.
 */
export const startServe = async (root: string, mnt: string, extra: ReadonlyArray<string> = [], wrap: ReadonlyArray<string> = []): Promise<Serving> => {
  // `npx bun …` would take the signals meant for als: run the pinned bun itself
  const prefix = (await alsCommand()).map((w, i, all) => (w === "npx" && all[i + 1] === "bun" ? "" : w === "bun" && all[i - 1] === "npx" ? BUN : w))
    .filter((w) => w !== "")
  const proc = Bun.spawn([...wrap, ...prefix, "serve", "--root", root, "--tls-verify=false", ...extra, mnt], {
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  })
  let err = ""
  let ready!: () => void
  const isReady = new Promise<void>((r) => (ready = r))
  void (async () => {
    const dec = new TextDecoder()
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      err += dec.decode(chunk, { stream: true })
      if (err.includes("als serve: serving")) ready()
    }
  })()
  const exited = proc.exited
  const first = await Promise.race([isReady.then(() => "ready" as const), exited.then((c) => c)])
  if (first !== "ready") throw new Error(`als serve exited ${first} before serving:\n${err}`)
  return {
    pid: proc.pid,
    mountpoint: mnt,
    stderr: () => err,
    exited,
    async stop(signal = "SIGTERM") {
      proc.kill(signal)
      return exited
    },
  }
}

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`

/**
 * A gzipped layer: `files` (path → content or {content, mode}), `links` (path → target),
 * directories made as needed.
 */
export const layerOf = async (
  files: Readonly<Record<string, string | Uint8Array | { content: Uint8Array; mode: number }>>,
  links: Readonly<Record<string, string>> = {},
): Promise<BuiltLayer> => {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on("data", (c: unknown) => void chunks.push(c as Buffer))
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", () => resolve())
    pack.on("error", reject)
  })
  const dirs = new Set<string>()
  const parents = (p: string) => {
    const parts = p.split("/").slice(0, -1)
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/")
      if (!dirs.has(d)) {
        dirs.add(d)
        pack.entry({ name: `${d}/`, type: "directory", mode: 0o755, mtime: new Date(0) })
      }
    }
  }
  for (const [p, c] of Object.entries(files)) {
    parents(p)
    const { content, mode } = typeof c === "string" || c instanceof Uint8Array ? { content: c, mode: 0o644 } : c
    const body = Buffer.from(content)
    pack.entry({ name: p, type: "file", mode, mtime: new Date(0), size: body.length }, body)
  }
  for (const [p, target] of Object.entries(links)) {
    parents(p)
    pack.entry({ name: p, type: "symlink", linkname: target, mode: 0o777, mtime: new Date(0) })
  }
  pack.finalize()
  await done
  const tarBytes = new Uint8Array(Buffer.concat(chunks))
  const blob = new Uint8Array(gzipSync(tarBytes))
  return { tar: tarBytes, blob, diffId: sha256(tarBytes), digest: sha256(blob), size: blob.length }
}

/** A layer with the host's static busybox as /bin/busybox and /bin/sh: enough to `podman run`. */
export const busyboxLayer = () =>
  layerOf({ "bin/busybox": { content: readFileSync("/bin/busybox"), mode: 0o755 } }, { "bin/sh": "busybox", "bin/ls": "busybox", "bin/cat": "busybox" })

/** Pushes an amd64 image of `layers` as `host/repo:tag`; returns the ref. */
export const pushLayers = async (host: string, repo: string, tag: string, layers: ReadonlyArray<BuiltLayer>): Promise<string> => {
  const dir = mkdtempSync(join(tmpdir(), "als-serve-img-"))
  try {
    writeOciImage(join(dir, "layout"), tag, { os: "linux", architecture: "amd64" }, layers)
    const ref = `${host}/${repo}:${tag}`
    await pushLayout(join(dir, "layout"), tag, ref)
    return ref
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Holders per layer from LayerAcquired / LayerReleased events (the fold's rule: never below 0). */
export const useCounts = (events: ReadonlyArray<AlsLogEvent>): Map<string, number> => {
  const uses = new Map<string, number>()
  for (const e of events) {
    if (e.type !== "LayerAcquired" && e.type !== "LayerReleased") continue
    const layer = (e as unknown as { layer: string }).layer
    const n = (uses.get(layer) ?? 0) + (e.type === "LayerAcquired" ? 1 : -1)
    uses.set(layer, Math.max(0, n))
  }
  return uses
}

/** BlobFetched events per layer digest. */
export const fetchesPerLayer = (events: ReadonlyArray<AlsLogEvent>): Map<string, number> => {
  const n = new Map<string, number>()
  for (const e of events) {
    if (e.type !== "BlobFetched") continue
    const layer = (e as unknown as { layer: string }).layer
    n.set(layer, (n.get(layer) ?? 0) + 1)
  }
  return n
}

/**
 * Ends a test file's servers: SIGTERM (SIGKILL after 10 s), then a lazy unmount of each mount,
 * so that the temp dirs under them can be removed afterwards (a live mount makes rm fail and
 * leaves every later dir of the file in /tmp).
 */
export const stopServers = async (servers: ReadonlyArray<Serving>): Promise<void> => {
  for (const s of servers) {
    s.stop("SIGTERM")
    const done = await Promise.race([s.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))])
    if (!done) await s.stop("SIGKILL")
  }
  for (const s of servers) await run(["umount", "-l", s.mountpoint]).catch(() => undefined)
}
