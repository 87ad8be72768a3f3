// Test images built from scratch with umoci (Debian's 0.4.7) and pushed with skopeo, cached
// under /var/tmp/als-test-cache so that repeated test and benchmark runs do not rebuild them.
//
// Every builder returns an OCI layout (`layoutDir`, `tag`) that `pushImage` copies to a registry.
// Builders are keyed by their parameters and IMAGES_VERSION: bump the version when a builder's
// output changes, and old cache entries are simply ignored (delete the cache dir to reclaim them).

import { createCipheriv, createHash } from "node:crypto"
import {
  chmodSync,
  chownSync,
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from "node:fs"
import { dirname, join } from "node:path"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { createGunzip } from "node:zlib"
import tar from "tar-stream"
import { ensureCacheInChroot, ensurePodman5, skopeo5, skopeo5Copy } from "./podman5.ts"
import { output, requireCommand, run, runOk } from "./sh.ts"

export const CACHE_ROOT = process.env.ALS_TEST_CACHE ?? "/var/tmp/als-test-cache"
/** Bump when any builder's output changes. */
export const IMAGES_VERSION = "v1"

const MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
const MT_INDEX = "application/vnd.oci.image.index.v1+json"
const MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

// ---- types -----------------------------------------------------------------------------------

export interface OciImage {
  /** OCI image layout directory (read-only: it is shared through the cache). */
  readonly layoutDir: string
  readonly tag: string
}

export interface ExpectedFile {
  readonly mode: number // permission bits incl. setuid/setgid/sticky (mode & 0o7777)
  readonly uid: number
  readonly gid: number
  readonly content?: string
  readonly sha256?: string
  readonly size?: number
  readonly mtime?: number // seconds since the epoch
  readonly xattrs?: Record<string, string>
}

export interface ExpectedDir {
  readonly mode: number
  readonly uid: number
  readonly gid: number
}

/** What the merged tree of the feature image must look like (paths relative to /). */
export interface FeatureExpectations {
  readonly files: Record<string, ExpectedFile>
  readonly dirs: Record<string, ExpectedDir>
  readonly symlinks: Record<string, string>
  readonly fifos: ReadonlyArray<string>
  readonly charDevices: Record<string, { readonly major: number; readonly minor: number }>
  /** Groups of paths that must share one inode. */
  readonly hardlinks: ReadonlyArray<ReadonlyArray<string>>
  /** Paths deleted by whiteouts (or hidden by an opaque dir): must not exist. */
  readonly absent: ReadonlyArray<string>
  /** Dirs made opaque in a later layer: their exact, complete list of children. */
  readonly opaqueDirs: Record<string, ReadonlyArray<string>>
}

export interface FeatureImage extends OciImage {
  /** umoci's own unpack of the final image: a reference merged tree to compare against. */
  readonly rootfsDir: string
  readonly layerCount: number
  readonly expect: FeatureExpectations
}

export type Compression = "gzip" | "zstd" | "zstd:chunked" | "none"

export interface PushedLayer {
  readonly digest: string
  readonly diffId: string
  readonly mediaType: string
  readonly size: number
  readonly annotations: Record<string, string>
}

export interface PushedManifest {
  readonly digest: string
  readonly mediaType: string
  readonly configDigest: string
  readonly platform?: { readonly os: string; readonly architecture: string; readonly variant?: string }
  readonly layers: ReadonlyArray<PushedLayer>
}

export interface PushedImage {
  /** `HOST/REPO:TAG`, what podman is given to pull. */
  readonly ref: string
  /** Digest of what the tag points to (an image manifest, or an index for multi-arch images). */
  readonly manifestDigest: string
  readonly mediaType: string
  /** Layers of the image manifest; empty when the tag is an index (see `manifests`). */
  readonly layers: ReadonlyArray<PushedLayer>
  readonly configDigest?: string
  /** The platform manifests when the tag is an index. */
  readonly manifests?: ReadonlyArray<PushedManifest>
}

export interface Credentials {
  readonly user: string
  readonly pass: string
}

export interface PushOptions {
  readonly compress?: Compression
  readonly creds?: Credentials
}

// ---- small fs helpers ------------------------------------------------------------------------

const sha256Hex = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex")

const sha256File = async (path: string): Promise<string> => {
  const h = createHash("sha256")
  await pipeline(createReadStream(path), async function* (src: AsyncIterable<Buffer>) {
    for await (const chunk of src) h.update(chunk)
  })
  return h.digest("hex")
}

const mkdirp = (path: string, mode: number, uid = 0, gid = 0): void => {
  mkdirSync(path, { recursive: true })
  chownSync(path, uid, gid)
  chmodSync(path, mode) // after chown: chown clears setuid/setgid bits
}

const writeFile = (path: string, content: string | Uint8Array, mode = 0o644, uid = 0, gid = 0): void => {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, content)
  chownSync(path, uid, gid)
  chmodSync(path, mode)
}

const setXattr = async (path: string, name: string, value: string): Promise<void> => {
  requireCommand("setfattr", "apt-get install attr")
  await runOk(["setfattr", "-h", "-n", name, "-v", value, path])
}

/** Deterministic pseudo-random bytes (AES-CTR keystream of a seed): same seed, same bytes. */
const randomStream = (seed: string) => {
  const key = createHash("sha256").update(`key:${seed}`).digest().subarray(0, 16)
  const iv = createHash("sha256").update(`iv:${seed}`).digest().subarray(0, 16)
  const cipher = createCipheriv("aes-128-ctr", key, iv)
  return (n: number): Buffer => cipher.update(Buffer.alloc(n))
}

const WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega layer store overlay podman registry blob digest".split(" ")

/** Deterministic text, roughly 4-6x compressible by gzip. */
const textStream = (seed: string) => {
  const next = randomStream(seed)
  let line = 0
  return (n: number): Buffer => {
    const parts: string[] = []
    let len = 0
    const r = next(Math.ceil(n / 4) + 64)
    let i = 0
    while (len < n) {
      const words: string[] = [`${line++}:`]
      for (let w = 0; w < 8; w++) words.push(WORDS[r[i++ % r.length]! % WORDS.length]!)
      const s = `${words.join(" ")}\n`
      parts.push(s)
      len += s.length
    }
    return Buffer.from(parts.join("")).subarray(0, n)
  }
}

/** Number of entries below `root` (not counting root itself), like `find root | wc -l` - 1. */
const countPaths = (root: string): number => {
  let n = 0
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      n++
      if (e.isDirectory()) walk(join(dir, e.name))
    }
  }
  walk(root)
  return n
}

const writeGenerated = (path: string, size: number, gen: (n: number) => Buffer): void => {
  mkdirSync(dirname(path), { recursive: true })
  const fd = openSync(path, "w", 0o644)
  try {
    const CHUNK = 1 << 20
    for (let done = 0; done < size; ) {
      const n = Math.min(CHUNK, size - done)
      writeSync(fd, gen(n))
      done += n
    }
  } finally {
    closeSync(fd)
  }
}

// ---- cache -----------------------------------------------------------------------------------

const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Delete `<dir>.tmp-<pid>-…` left by builders that died (their process is gone). */
const removeAbandonedBuilds = (dir: string): void => {
  const prefix = `${dir.split("/").pop()}.tmp-`
  for (const name of readdirSync(dirname(dir))) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length).split("-")[0])
    if (pid > 0 && !processAlive(pid)) rmSync(join(dirname(dir), name), { recursive: true, force: true })
  }
}

/**
 * Build into a temporary sibling dir and rename it into place when complete, so that a crash
 * leaves no half-built cache entry and concurrent builders (tests and benchmarks in parallel)
 * do not see each other's work in progress; the first one to finish wins.
 */
const cached = async <M>(key: string, build: (dir: string) => Promise<M>): Promise<{ dir: string; meta: M }> => {
  const dir = join(CACHE_ROOT, `${key}-${IMAGES_VERSION}`)
  const metaPath = join(dir, "meta.json")
  if (existsSync(metaPath)) return { dir, meta: JSON.parse(readFileSync(metaPath, "utf8")) as M }
  mkdirSync(CACHE_ROOT, { recursive: true })
  removeAbandonedBuilds(dir)
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  try {
    const meta = await build(tmp)
    writeFileSync(join(tmp, "meta.json"), JSON.stringify(meta, null, 1))
    try {
      renameSync(tmp, dir)
    } catch (e) {
      if (!existsSync(metaPath)) throw e // not a lost race: a real error
      rmSync(tmp, { recursive: true, force: true })
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true })
    throw e
  }
  return { dir, meta: JSON.parse(readFileSync(metaPath, "utf8")) as M }
}

// ---- umoci -----------------------------------------------------------------------------------

const umoci = async (...args: string[]): Promise<string> => {
  requireCommand("umoci", "apt-get install umoci")
  return output(["umoci", ...args], { timeoutMs: 30 * 60_000 })
}

/** An image being built layer by layer through one umoci bundle. */
class UmociBuilder {
  readonly image: string
  readonly bundle: string
  constructor(readonly layoutDir: string, readonly tag: string, workDir: string) {
    this.image = `${layoutDir}:${tag}`
    this.bundle = join(workDir, `bundle-${tag}`)
  }
  get rootfs(): string {
    return join(this.bundle, "rootfs")
  }
  static async create(layoutDir: string, tag: string, workDir: string): Promise<UmociBuilder> {
    if (!existsSync(join(layoutDir, "oci-layout"))) await umoci("init", "--layout", layoutDir)
    const b = new UmociBuilder(layoutDir, tag, workDir)
    await umoci("new", "--image", b.image)
    await b.unpack()
    return b
  }
  /** (Re)extract the current image into the bundle: needed after a layer added by hand. */
  async unpack(): Promise<void> {
    rmSync(this.bundle, { recursive: true, force: true })
    await umoci("unpack", "--image", this.image, this.bundle)
  }
  /** Commit the bundle's changes as one new layer (--refresh-bundle: the next repack diffs against it). */
  async repack(comment: string): Promise<void> {
    await umoci("repack", "--refresh-bundle", "--history.created_by", comment, "--image", this.image, this.bundle)
  }
  /** Append an uncompressed layer tar verbatim (umoci gzips it). */
  async addLayer(tarPath: string, comment: string): Promise<void> {
    await umoci("raw", "add-layer", "--history.created_by", comment, "--image", this.image, tarPath)
  }
  async config(...args: string[]): Promise<void> {
    await umoci("config", "--image", this.image, ...args)
  }
  dispose(): void {
    rmSync(this.bundle, { recursive: true, force: true })
  }
}

// ---- OCI layout reading ----------------------------------------------------------------------

interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: { os: string; architecture: string; variant?: string }
}

interface OciManifest {
  schemaVersion: 2
  mediaType?: string
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
}

interface OciIndex {
  schemaVersion: 2
  mediaType?: string
  manifests: Descriptor[]
  annotations?: Record<string, string>
}

export const blobPath = (layoutDir: string, digest: string): string => {
  const [alg, hex] = digest.split(":")
  return join(layoutDir, "blobs", alg!, hex!)
}

const readJsonBlob = <T>(layoutDir: string, digest: string): T => JSON.parse(readFileSync(blobPath(layoutDir, digest), "utf8")) as T

const writeBlob = (layoutDir: string, data: string | Uint8Array): { digest: string; size: number } => {
  const bytes = typeof data === "string" ? Buffer.from(data) : data
  const digest = `sha256:${sha256Hex(bytes)}`
  mkdirSync(join(layoutDir, "blobs", "sha256"), { recursive: true })
  writeFileSync(blobPath(layoutDir, digest), bytes)
  return { digest, size: bytes.length }
}

/** The descriptor a tag points to in an OCI layout's index.json. */
export const layoutTagDescriptor = (layoutDir: string, tag: string): Descriptor => {
  const index = JSON.parse(readFileSync(join(layoutDir, "index.json"), "utf8")) as OciIndex
  const d = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag)
  if (!d) throw new Error(`tag ${tag} not found in OCI layout ${layoutDir}`)
  return d
}

const setLayoutTag = (layoutDir: string, tag: string, desc: Descriptor): void => {
  const path = join(layoutDir, "index.json")
  const index = JSON.parse(readFileSync(path, "utf8")) as OciIndex
  index.manifests = index.manifests.filter((m) => m.annotations?.["org.opencontainers.image.ref.name"] !== tag)
  index.manifests.push({ ...desc, annotations: { ...desc.annotations, "org.opencontainers.image.ref.name": tag } })
  writeFileSync(path, JSON.stringify(index))
}

/** The image manifest of a tag (for an index, of its linux/amd64 entry or first entry). */
export const readLayoutManifest = (layoutDir: string, tag: string): OciManifest => {
  let d = layoutTagDescriptor(layoutDir, tag)
  if (d.mediaType === MT_INDEX) {
    const index = readJsonBlob<OciIndex>(layoutDir, d.digest)
    d = index.manifests.find((m) => m.platform?.architecture === "amd64") ?? index.manifests[0]!
  }
  return readJsonBlob<OciManifest>(layoutDir, d.digest)
}

export interface LayerEntry {
  readonly name: string
  readonly type: string
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  readonly linkname?: string
  readonly pax?: Record<string, string>
}

/** The tar headers of a layer blob (gzip or uncompressed), streamed. */
export const listLayerEntries = async (blobFile: string): Promise<LayerEntry[]> => {
  const head = Buffer.alloc(2)
  const fd = openSync(blobFile, "r")
  try {
    readSync(fd, head, 0, 2, 0)
  } finally {
    closeSync(fd)
  }
  const gz = head[0] === 0x1f && head[1] === 0x8b
  const extract = tar.extract()
  const entries: LayerEntry[] = []
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header as tar.Header & { pax?: Record<string, string> }
      entries.push({
        name: h.name,
        type: h.type ?? "file",
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        size: h.size ?? 0,
        ...(h.linkname ? { linkname: h.linkname } : {}),
        ...(h.pax ? { pax: h.pax } : {}),
      })
      entry.resume()
    }
  })()
  // tar-stream 3 streams are streamx streams: feed the extractor by hand, with backpressure.
  const feed = async () => {
    const src = createReadStream(blobFile)
    const chunks: AsyncIterable<Buffer> = gz ? src.pipe(createGunzip()) : src
    for await (const chunk of chunks) {
      if (!extract.write(chunk)) await new Promise<void>((r) => extract.once("drain", () => r()))
    }
    (extract as unknown as { end(): void }).end()
  }
  await Promise.all([feed(), done])
  return entries
}

// ---- the feature image -----------------------------------------------------------------------

const OLD_MTIME = Date.UTC(2001, 1, 3, 4, 5, 6) / 1000
const FIXED_MTIME = 1_700_000_000
const BLOB_SIZE = 1 << 20

/** The hand-written layer 3: whiteouts, an opaque dir, a PAX xattr, an in-layer hardlink. */
const writeLayer3Tar = async (path: string): Promise<void> => {
  const pack = tar.pack()
  const out = pipeline(Readable.from(pack), createWriteStream(path))
  const mtime = new Date(1_700_000_000_000)
  const dir = (name: string, mode = 0o755) => pack.entry({ name, type: "directory", mode, mtime })
  const file = (name: string, content: string, extra: Partial<tar.Header> = {}) =>
    pack.entry({ name, type: "file", mode: 0o644, mtime, ...extra }, content)
  // Whiteouts are empty regular files (mode 0, epoch mtime, as umoci writes them).
  const whiteout = (name: string) => pack.entry({ name, type: "file", mode: 0, mtime: new Date(0), size: 0 }, "")
  dir("data/")
  whiteout("data/.wh.delete-me.txt")
  file("data/pax-xattr", "xattr set through a PAX record\n", { pax: { "SCHILY.xattr.user.pax": "yes" } })
  whiteout(".wh.removed-dir")
  dir("links/")
  whiteout("links/.wh.dangling")
  dir("replaced/")
  whiteout("replaced/.wh..wh..opq")
  file("replaced/new1", "replaced dir, new file\n")
  pack.entry({ name: "replaced/new1-link", type: "link", linkname: "replaced/new1", mode: 0o644, mtime, size: 0 })
  dir("replaced/sub2/")
  file("replaced/sub2/new2", "replaced dir, new nested file\n")
  pack.finalize()
  await out
}

/** Build (or reuse from the cache) the 4-layer image that exercises every layer feature. */
export const buildFeatureImage = async (): Promise<FeatureImage> => {
  const { dir, meta } = await cached("feature", async (work) => {
    const layoutDir = join(work, "layout")
    const tag = "feature"
    const b = await UmociBuilder.create(layoutDir, tag, work)
    const r = (p: string) => join(b.rootfs, p)
    const blob = randomStream("feature-blob")(BLOB_SIZE)

    // Layer 1: base files and dirs, some of which later layers delete or replace.
    for (const d of ["etc", "usr", "usr/bin", "usr/share", "usr/share/doc", "opt", "opt/app", "data", "data/keep", "var", "var/log"])
      mkdirp(r(d), 0o755)
    writeFile(r("etc/hostname"), "als-feature\n")
    writeFile(r("etc/os-release"), 'NAME="als feature image"\nID=als\n')
    writeFile(r("usr/bin/tool"), "#!/bin/sh\necho tool\n", 0o755)
    writeFile(r("usr/share/doc/README"), "documentation that layer 4 deletes\n".repeat(200))
    writeFile(r("opt/app/config.json"), '{"answer":42}\n')
    writeFile(r("data/keep/kept.txt"), "kept across all layers\n")
    writeFile(r("data/delete-me.txt"), "deleted by a whiteout in layer 3\n")
    writeFile(r("data/empty"), "")
    writeFile(r("data/blob.bin"), blob)
    mkdirp(r("removed-dir/nested"), 0o755)
    writeFile(r("removed-dir/a"), "in a dir removed by layer 3\n")
    writeFile(r("removed-dir/nested/b"), "nested in a dir removed by layer 3\n")
    mkdirp(r("replaced/sub"), 0o755)
    writeFile(r("replaced/old1"), "hidden by the opaque dir of layer 3\n")
    writeFile(r("replaced/sub/old2"), "hidden by the opaque dir of layer 3\n")
    await b.repack("layer 1: base")

    // Layer 2: every kind of entry and metadata.
    mkdirp(r("links"), 0o755)
    writeFile(r("links/hl-a"), "hardlinked\n")
    linkSync(r("links/hl-a"), r("links/hl-b"))
    symlinkSync("../etc/hostname", r("links/rel"))
    symlinkSync("/etc/hostname", r("links/abs"))
    symlinkSync("/nonexistent", r("links/dangling"))
    symlinkSync("../usr/share", r("links/dir-link"))
    await run(["mkfifo", "-m", "0644", r("links/fifo")]).then((x) => {
      if (x.exitCode !== 0) throw new Error(`mkfifo failed: ${x.stderr}`)
    })
    writeFile(r("usr/bin/suid"), "#!/bin/sh\necho suid\n", 0o4755)
    writeFile(r("usr/bin/sgid"), "#!/bin/sh\necho sgid\n", 0o2755, 0, 42)
    mkdirp(r("shared"), 0o2775, 0, 42)
    mkdirp(r("tmp"), 0o1777)
    mkdirp(r("home"), 0o755)
    mkdirp(r("home/user"), 0o750, 1000, 1000)
    writeFile(r("home/user/file"), "owned by 1000:1000\n", 0o640, 1000, 1000)
    mkdirp(r("srv"), 0o755)
    writeFile(r("srv/group-file"), "owned by 0:42\n", 0o640, 0, 42)
    writeFile(r("data/xattr-file"), "has user.test=1\n")
    await setXattr(r("data/xattr-file"), "user.test", "1")
    writeFile(r("data/old-mtime"), "mtime 2001-02-03T04:05:06Z\n")
    utimesSync(r("data/old-mtime"), OLD_MTIME, OLD_MTIME)
    writeFile(r("data/mode0444"), "read-only\n", 0o444)
    writeFile(r("data/spaced name ü.txt"), "a name with a space and a non-ASCII letter\n")
    mkdirp(r("dev"), 0o755)
    await runOk(["mknod", "-m", "0666", r("dev/null"), "c", "1", "3"])
    await b.repack("layer 2: links, special files, ownership, modes, xattrs, mtimes")

    // Layer 3 by hand: umoci repack writes one whiteout per deleted file, never an opaque dir.
    const layer3 = join(work, "layer3.tar")
    await writeLayer3Tar(layer3)
    await b.addLayer(layer3, "layer 3: whiteouts and an opaque dir")
    const l3 = readLayoutManifest(layoutDir, tag).layers[2]!
    const l3Names = (await listLayerEntries(blobPath(layoutDir, l3.digest))).map((e) => e.name)
    if (!l3Names.includes("replaced/.wh..wh..opq")) throw new Error(`layer 3 lacks the opaque marker: ${l3Names.join(", ")}`)
    rmSync(layer3)

    // Layer 4: a small change on top (fresh unpack so that the bundle sees layer 3).
    await b.unpack()
    writeFile(r("etc/hostname"), "als-feature layer4\n")
    writeFile(r("data/layer4.txt"), "added by layer 4\n")
    chmodSync(r("opt/app/config.json"), 0o600)
    unlinkSync(r("usr/share/doc/README"))
    await b.repack("layer 4: small changes")
    await b.config("--config.cmd", "/bin/sh", "--author", "als-test", "--os", "linux", "--architecture", "amd64")
    b.dispose()
    await umoci("gc", "--layout", layoutDir)

    // The reference tree: umoci's own extraction of the final image.
    const ref = join(work, "ref")
    await umoci("unpack", "--image", `${layoutDir}:${tag}`, ref)
    renameSync(join(ref, "rootfs"), join(work, "rootfs"))
    rmSync(ref, { recursive: true, force: true })
    return { tag, layerCount: readLayoutManifest(layoutDir, tag).layers.length, blobSha256: sha256Hex(blob) }
  })

  const expect: FeatureExpectations = {
    files: {
      "etc/hostname": { mode: 0o644, uid: 0, gid: 0, content: "als-feature layer4\n" },
      "etc/os-release": { mode: 0o644, uid: 0, gid: 0, content: 'NAME="als feature image"\nID=als\n' },
      "usr/bin/tool": { mode: 0o755, uid: 0, gid: 0, content: "#!/bin/sh\necho tool\n" },
      "usr/bin/suid": { mode: 0o4755, uid: 0, gid: 0 },
      "usr/bin/sgid": { mode: 0o2755, uid: 0, gid: 42 },
      "opt/app/config.json": { mode: 0o600, uid: 0, gid: 0, content: '{"answer":42}\n' },
      "data/keep/kept.txt": { mode: 0o644, uid: 0, gid: 0, content: "kept across all layers\n" },
      "data/empty": { mode: 0o644, uid: 0, gid: 0, content: "" },
      "data/blob.bin": { mode: 0o644, uid: 0, gid: 0, size: BLOB_SIZE, sha256: meta.blobSha256 },
      "data/xattr-file": { mode: 0o644, uid: 0, gid: 0, xattrs: { "user.test": "1" } },
      "data/pax-xattr": { mode: 0o644, uid: 0, gid: 0, content: "xattr set through a PAX record\n", xattrs: { "user.pax": "yes" } },
      "data/old-mtime": { mode: 0o644, uid: 0, gid: 0, mtime: OLD_MTIME },
      "data/mode0444": { mode: 0o444, uid: 0, gid: 0, content: "read-only\n" },
      "data/spaced name ü.txt": { mode: 0o644, uid: 0, gid: 0 },
      "data/layer4.txt": { mode: 0o644, uid: 0, gid: 0, content: "added by layer 4\n" },
      "home/user/file": { mode: 0o640, uid: 1000, gid: 1000, content: "owned by 1000:1000\n" },
      "srv/group-file": { mode: 0o640, uid: 0, gid: 42 },
      "links/hl-a": { mode: 0o644, uid: 0, gid: 0, content: "hardlinked\n" },
      "links/hl-b": { mode: 0o644, uid: 0, gid: 0, content: "hardlinked\n" },
      "replaced/new1": { mode: 0o644, uid: 0, gid: 0, content: "replaced dir, new file\n" },
      "replaced/new1-link": { mode: 0o644, uid: 0, gid: 0, content: "replaced dir, new file\n" },
      "replaced/sub2/new2": { mode: 0o644, uid: 0, gid: 0, content: "replaced dir, new nested file\n" },
    },
    dirs: {
      shared: { mode: 0o2775, uid: 0, gid: 42 },
      tmp: { mode: 0o1777, uid: 0, gid: 0 },
      "home/user": { mode: 0o750, uid: 1000, gid: 1000 },
      "data/keep": { mode: 0o755, uid: 0, gid: 0 },
      replaced: { mode: 0o755, uid: 0, gid: 0 },
    },
    symlinks: { "links/rel": "../etc/hostname", "links/abs": "/etc/hostname", "links/dir-link": "../usr/share" },
    fifos: ["links/fifo"],
    charDevices: { "dev/null": { major: 1, minor: 3 } },
    hardlinks: [
      ["links/hl-a", "links/hl-b"],
      ["replaced/new1", "replaced/new1-link"],
    ],
    absent: [
      "data/delete-me.txt",
      "removed-dir",
      "removed-dir/a",
      "removed-dir/nested/b",
      "replaced/old1",
      "replaced/sub",
      "replaced/sub/old2",
      "links/dangling",
      "usr/share/doc/README",
    ],
    opaqueDirs: { replaced: ["new1", "new1-link", "sub2"] },
  }
  return {
    layoutDir: join(dir, "layout"),
    tag: meta.tag,
    rootfsDir: join(dir, "rootfs"),
    layerCount: meta.layerCount,
    expect,
  }
}

// ---- multi-arch index ------------------------------------------------------------------------

export interface MultiArchImage extends OciImage {
  readonly platforms: ReadonlyArray<{ readonly architecture: string; readonly tag: string; readonly archFile: string }>
}

/**
 * Two single-platform images (linux/amd64 and linux/arm64, each with a shared base layer and
 * an arch-specific one: /arch.txt holds the architecture) joined by an OCI index under `tag`.
 */
export const buildMultiArchIndex = async (): Promise<MultiArchImage> => {
  const arches = ["amd64", "arm64"] as const
  const { dir, meta } = await cached("multiarch", async (work) => {
    const layoutDir = join(work, "layout")
    const tag = "multi"
    const entries: Descriptor[] = []
    for (const arch of arches) {
      const b = await UmociBuilder.create(layoutDir, arch, work)
      mkdirp(join(b.rootfs, "etc"), 0o755)
      writeFile(join(b.rootfs, "etc/base.txt"), "shared by both platforms\n")
      // Same bytes on both platforms (a shared blob) only if the mtimes are the same too.
      for (const p of ["etc/base.txt", "etc", "."]) lutimesSync(join(b.rootfs, p), FIXED_MTIME, FIXED_MTIME)
      await b.repack("base")
      writeFile(join(b.rootfs, "arch.txt"), `${arch}\n`)
      writeFile(join(b.rootfs, `only-${arch}`), `${arch} only\n`)
      await b.repack(`${arch} layer`)
      await b.config("--os", "linux", "--architecture", arch)
      b.dispose()
      const d = layoutTagDescriptor(layoutDir, arch)
      entries.push({ mediaType: d.mediaType, digest: d.digest, size: d.size, platform: { os: "linux", architecture: arch } })
    }
    const index: OciIndex = { schemaVersion: 2, mediaType: MT_INDEX, manifests: entries }
    const blob = writeBlob(layoutDir, JSON.stringify(index))
    setLayoutTag(layoutDir, tag, { mediaType: MT_INDEX, ...blob })
    await umoci("gc", "--layout", layoutDir)
    return { tag }
  })
  return {
    layoutDir: join(dir, "layout"),
    tag: meta.tag,
    platforms: arches.map((architecture) => ({ architecture, tag: architecture, archFile: `${architecture}\n` })),
  }
}

// ---- benchmark images ------------------------------------------------------------------------

export interface LargeLayerSpec {
  readonly sizeMiB: number
  /** random: incompressible; text: compressible (gzip ≈ 4-6x). */
  readonly kind: "random" | "text"
  /** Split the layer into this many files (default 1). */
  readonly files?: number
}

export interface BuiltImage extends OciImage {
  readonly layerCount: number
  /** Entries in the final merged tree (root excluded). */
  readonly paths: number
}

/** One layer per spec, each holding big deterministic files. Default: 2 × 500 MiB (random, text). */
export const buildLargeImage = async (
  layers: ReadonlyArray<LargeLayerSpec> = [
    { sizeMiB: 500, kind: "random" },
    { sizeMiB: 500, kind: "text" },
  ],
): Promise<BuiltImage> => {
  const key = `large-${layers.map((l) => `${l.kind}${l.sizeMiB}x${l.files ?? 1}`).join("_")}`
  const { dir, meta } = await cached(key, async (work) => {
    const layoutDir = join(work, "layout")
    const tag = "large"
    const b = await UmociBuilder.create(layoutDir, tag, work)
    let paths = 0
    for (const [i, l] of layers.entries()) {
      const files = l.files ?? 1
      const each = Math.floor((l.sizeMiB * 1024 * 1024) / files)
      const gen = l.kind === "random" ? randomStream(`${key}-${i}`) : textStream(`${key}-${i}`)
      mkdirp(join(b.rootfs, `layer${i}`), 0o755)
      for (let f = 0; f < files; f++) writeGenerated(join(b.rootfs, `layer${i}/${l.kind}-${f}.bin`), each, gen)
      paths += files + 1
      await b.repack(`layer ${i}: ${l.sizeMiB} MiB ${l.kind}`)
      // The next layer's files only: the bundle's old files stay, unchanged, so no new diff.
    }
    b.dispose()
    await umoci("gc", "--layout", layoutDir)
    return { tag, layerCount: layers.length, paths }
  })
  return { layoutDir: join(dir, "layout"), tag: meta.tag, layerCount: meta.layerCount, paths: meta.paths }
}

export interface ManySmallFilesSpec {
  readonly files?: number // total regular files added over all layers (default 50_000)
  readonly layers?: number // default 5
  readonly maxFileSize?: number // bytes (default 4096)
}

/**
 * Many small files spread over layers, with hardlinks, symlinks, xattrs, and from layer 2 on
 * deletions of some files of the previous layer (whiteouts).
 */
export const buildManySmallFilesImage = async (spec: ManySmallFilesSpec = {}): Promise<BuiltImage> => {
  const files = spec.files ?? 50_000
  const layers = spec.layers ?? 5
  const maxSize = spec.maxFileSize ?? 4096
  const key = `small-${files}f-${layers}l-${maxSize}b`
  const { dir, meta } = await cached(key, async (work) => {
    const layoutDir = join(work, "layout")
    const tag = "small"
    const b = await UmociBuilder.create(layoutDir, tag, work)
    const rnd = randomStream(key)
    const perLayer = Math.ceil(files / layers)
    const perDir = 100
    for (let l = 0; l < layers; l++) {
      const base = join(b.rootfs, `l${l}`)
      const count = Math.min(perLayer, files - l * perLayer)
      const sizes = rnd(count * 2)
      for (let i = 0; i < count; i++) {
        const d = join(base, `d${Math.floor(i / perDir)}`)
        if (i % perDir === 0) mkdirSync(d, { recursive: true })
        const size = ((sizes[2 * i]! << 8) | sizes[2 * i + 1]!) % (maxSize + 1)
        const p = join(d, `f${i}`)
        writeFileSync(p, rnd(size))
        if (i % 97 === 0) linkSync(p, `${p}.hl`)
        if (i % 89 === 0) symlinkSync(`f${i}`, `${p}.sl`)
        if (i % 211 === 0) await setXattr(p, "user.n", String(i))
      }
      if (l > 0) {
        // Delete every 50th file and one whole dir of the previous layer.
        const prev = join(b.rootfs, `l${l - 1}`)
        for (const d of readdirSync(prev).sort()) {
          const dd = join(prev, d)
          for (const f of readdirSync(dd)) if (/^f\d+$/.test(f) && Number(f.slice(1)) % 50 === 0) unlinkSync(join(dd, f))
        }
        rmSync(join(prev, "d0"), { recursive: true, force: true })
      }
      await b.repack(`layer ${l}: ${count} small files`)
    }
    const paths = countPaths(b.rootfs)
    b.dispose()
    await umoci("gc", "--layout", layoutDir)
    return { tag, layerCount: layers, paths }
  })
  return { layoutDir: join(dir, "layout"), tag: meta.tag, layerCount: meta.layerCount, paths: meta.paths }
}

/** The Debian archive URI of the host's apt sources (deb822 or one-line style), not the security one. */
export const debianMirror = (): string => {
  if (process.env.ALS_DEBIAN_MIRROR) return process.env.ALS_DEBIAN_MIRROR
  const dir = "/etc/apt/sources.list.d"
  const files = existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : []
  for (const f of files.filter((f) => f.endsWith(".sources"))) {
    for (const block of readFileSync(f, "utf8").split(/\n\s*\n/)) {
      const field = (name: string) => block.match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1]?.trim() ?? ""
      const uri = field("URIs").split(/\s+/)[0] ?? ""
      const isDebian = /debian/i.test(uri) || /debian-archive-keyring/.test(field("Signed-By"))
      if (uri && isDebian && !/security/.test(uri + field("Suites"))) return uri
    }
  }
  for (const f of ["/etc/apt/sources.list", ...files.filter((f) => f.endsWith(".list"))]) {
    if (!existsSync(f)) continue
    for (const line of readFileSync(f, "utf8").split("\n")) {
      const m = line.match(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/)
      if (m && /debian/i.test(m[1]!) && !/security/.test(m[1]! + m[2]!)) return m[1]!
    }
  }
  throw new Error("no Debian mirror in /etc/apt/sources.list{,.d/*}: set ALS_DEBIAN_MIRROR")
}

/**
 * A Debian minbase rootfs (debootstrap from the host's mirror) in 3 layers: /usr; the rest;
 * then the deletion of /usr/share/doc/* and /usr/share/man (whiteouts) plus a small file.
 */
export const buildDebianImage = async (suite = "bookworm"): Promise<BuiltImage> => {
  const { dir, meta } = await cached(`debian-${suite}-minbase`, async (work) => {
    if (Bun.which("debootstrap") === null)
      await runOk(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"], {
        env: { DEBIAN_FRONTEND: "noninteractive" },
        timeoutMs: 10 * 60_000,
      })
    const src = join(work, "debootstrap")
    await runOk(["debootstrap", "--variant=minbase", suite, src, debianMirror()], { timeoutMs: 30 * 60_000 })
    // Runtime-only state that does not belong in an image.
    for (const d of ["dev", "proc", "sys", "run", "tmp", "var/cache/apt/archives", "var/lib/apt/lists"]) {
      const p = join(src, d)
      if (!existsSync(p)) continue
      for (const e of readdirSync(p)) if (e !== "partial" && e !== "lock") rmSync(join(p, e), { recursive: true, force: true })
    }
    const layoutDir = join(work, "layout")
    const tag = "debian"
    const b = await UmociBuilder.create(layoutDir, tag, work)
    // Same filesystem: rename instead of copy.
    renameSync(join(src, "usr"), join(b.rootfs, "usr"))
    await b.repack("layer 1: /usr")
    for (const e of readdirSync(src)) renameSync(join(src, e), join(b.rootfs, e))
    await b.repack("layer 2: everything else")
    const doc = join(b.rootfs, "usr/share/doc")
    for (const e of readdirSync(doc)) rmSync(join(doc, e), { recursive: true, force: true })
    rmSync(join(b.rootfs, "usr/share/man"), { recursive: true, force: true })
    writeFile(join(b.rootfs, "etc/als-layer3"), "docs removed\n")
    await b.repack("layer 3: remove docs")
    await b.config("--config.cmd", "/bin/bash", "--os", "linux", "--architecture", "amd64")
    const paths = countPaths(b.rootfs)
    b.dispose()
    rmSync(src, { recursive: true, force: true })
    await umoci("gc", "--layout", layoutDir)
    return { tag, layerCount: 3, paths }
  })
  return { layoutDir: join(dir, "layout"), tag: meta.tag, layerCount: meta.layerCount, paths: meta.paths }
}

/**
 * umoci's own extraction of an image (cached by the tag's digest): the reference merged tree to
 * compare a podman mount against (compareTrees in podman.ts). For an index: its amd64 image.
 */
export const referenceRootfs = async (img: OciImage): Promise<string> => {
  const { dir } = await cached(`rootfs-${tagDigestHex(img).slice(0, 24)}`, async (work) => {
    let image = `${img.layoutDir}:${img.tag}`
    const top = layoutTagDescriptor(img.layoutDir, img.tag)
    if (top.mediaType === MT_INDEX) {
      // umoci unpacks only image manifests: tag the platform manifest in a private copy.
      const copy = join(work, "layout")
      await runOk(["cp", "-a", "--reflink=auto", img.layoutDir, copy])
      const index = readJsonBlob<OciIndex>(img.layoutDir, top.digest)
      const d = index.manifests.find((m) => m.platform?.architecture === "amd64") ?? index.manifests[0]!
      setLayoutTag(copy, "amd64-ref", { mediaType: d.mediaType, digest: d.digest, size: d.size })
      image = `${copy}:amd64-ref`
    }
    await umoci("unpack", "--image", image, join(work, "bundle"))
    renameSync(join(work, "bundle", "rootfs"), join(work, "rootfs"))
    rmSync(join(work, "bundle"), { recursive: true, force: true })
    rmSync(join(work, "layout"), { recursive: true, force: true })
    return {}
  })
  return join(dir, "rootfs")
}

// ---- compression variants --------------------------------------------------------------------

/** The tag's content digest: cache key of its variants. */
const tagDigestHex = (img: OciImage): string => layoutTagDescriptor(img.layoutDir, img.tag).digest.split(":")[1]!

/** A copy of the image with every layer recompressed as `compress`, cached next to the others. */
export const compressionVariant = async (img: OciImage, compress: Exclude<Compression, "gzip">): Promise<OciImage> => {
  const key = `variant-${tagDigestHex(img).slice(0, 24)}-${compress.replace(":", "-")}`
  const { dir, meta } = await cached(key, async (work) => {
    const out = join(work, "layout")
    const isIndex = layoutTagDescriptor(img.layoutDir, img.tag).mediaType === MT_INDEX
    if (compress === "zstd") {
      // The host's skopeo 1.9.3 writes plain zstd (its zstd:chunked format is too old, see below).
      await runOk(
        ["skopeo", "copy", ...(isIndex ? ["--all"] : []), "--dest-compress", "--dest-compress-format", "zstd", `oci:${img.layoutDir}:${img.tag}`, `oci:${out}:${img.tag}`],
        { timeoutMs: 30 * 60_000 },
      )
    } else if (compress === "zstd:chunked") {
      // skopeo 1.9.3 (Debian 12) writes the old `io.containers.zstd-chunked.*` annotations, which
      // podman 5 does not read as zstd:chunked: use Debian 13's skopeo in the chroot, which sees
      // the cache at the same path through a bind mount.
      await ensurePodman5()
      await ensureCacheInChroot(CACHE_ROOT)
      await skopeo5(
        ["copy", ...(isIndex ? ["--all"] : []), "--dest-compress", "--dest-compress-format", "zstd:chunked", `oci:${img.layoutDir}:${img.tag}`, `oci:${out}:${img.tag}`],
        { timeoutMs: 30 * 60_000 },
      )
    } else {
      await decompressLayout(img, out)
    }
    return { tag: img.tag }
  })
  return { layoutDir: join(dir, "layout"), tag: meta.tag }
}

/** Copy an image into `out` with gunzipped layers (skopeo always compresses for registries). */
const decompressLayout = async (img: OciImage, out: string): Promise<void> => {
  mkdirSync(join(out, "blobs", "sha256"), { recursive: true })
  writeFileSync(join(out, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }))
  writeFileSync(join(out, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [] }))
  const copyBlob = (digest: string) => {
    const dst = blobPath(out, digest)
    if (!existsSync(dst)) writeFileSync(dst, readFileSync(blobPath(img.layoutDir, digest)))
  }
  const convertManifest = async (d: Descriptor): Promise<Descriptor> => {
    const m = readJsonBlob<OciManifest>(img.layoutDir, d.digest)
    copyBlob(m.config.digest)
    const layers: Descriptor[] = []
    for (const l of m.layers) {
      if (!l.mediaType.endsWith("+gzip")) {
        copyBlob(l.digest)
        layers.push(l)
        continue
      }
      const tmp = join(out, "blobs", "tmp-layer")
      const h = createHash("sha256")
      let size = 0
      await pipeline(
        createReadStream(blobPath(img.layoutDir, l.digest)),
        createGunzip(),
        async function* (src: AsyncIterable<Buffer>) {
          for await (const c of src) {
            h.update(c)
            size += c.length
            yield c
          }
        },
        createWriteStream(tmp),
      )
      const digest = `sha256:${h.digest("hex")}`
      renameSync(tmp, blobPath(out, digest))
      const { annotations } = l
      layers.push({ mediaType: MT_LAYER_TAR, digest, size, ...(annotations ? { annotations } : {}) })
    }
    const blob = writeBlob(out, JSON.stringify({ ...m, layers }))
    return { mediaType: d.mediaType, ...blob, ...(d.platform ? { platform: d.platform } : {}) }
  }
  const top = layoutTagDescriptor(img.layoutDir, img.tag)
  if (top.mediaType === MT_INDEX) {
    const index = readJsonBlob<OciIndex>(img.layoutDir, top.digest)
    const manifests: Descriptor[] = []
    for (const m of index.manifests) manifests.push(await convertManifest(m))
    setLayoutTag(out, img.tag, { mediaType: MT_INDEX, ...writeBlob(out, JSON.stringify({ ...index, manifests })) })
  } else {
    setLayoutTag(out, img.tag, await convertManifest(top))
  }
}

// ---- push ------------------------------------------------------------------------------------

const authHeader = (creds?: Credentials): Record<string, string> =>
  creds ? { authorization: `Basic ${Buffer.from(`${creds.user}:${creds.pass}`).toString("base64")}` } : {}

/** Push an OCI layout's blobs and manifests with the registry HTTP API (no recompression). */
const pushLayoutHttp = async (img: OciImage, host: string, repo: string, tag: string, creds?: Credentials): Promise<void> => {
  const base = `http://${host}/v2/${repo}`
  const headers = authHeader(creds)
  const check = async (res: Response, what: string) => {
    if (!res.ok) throw new Error(`registry ${host}: ${what} failed: HTTP ${res.status} ${await res.text()}`)
    return res
  }
  const pushBlob = async (digest: string) => {
    const head = await fetch(`${base}/blobs/${digest}`, { method: "HEAD", headers })
    if (head.ok) return
    const start = await check(await fetch(`${base}/blobs/uploads/`, { method: "POST", headers }), `upload start of ${digest}`)
    const loc = new URL(start.headers.get("location")!, `http://${host}`)
    loc.searchParams.set("digest", digest)
    const file = Bun.file(blobPath(img.layoutDir, digest))
    await check(
      await fetch(loc, { method: "PUT", headers: { ...headers, "content-type": "application/octet-stream", "content-length": String(file.size) }, body: file }),
      `upload of ${digest}`,
    )
  }
  const pushManifest = async (d: Descriptor, reference: string) => {
    const body = readFileSync(blobPath(img.layoutDir, d.digest))
    await check(
      await fetch(`${base}/manifests/${reference}`, { method: "PUT", headers: { ...headers, "content-type": d.mediaType }, body }),
      `manifest PUT ${reference}`,
    )
  }
  const pushImageManifest = async (d: Descriptor, reference: string) => {
    const m = readJsonBlob<OciManifest>(img.layoutDir, d.digest)
    for (const l of [m.config, ...m.layers]) await pushBlob(l.digest)
    await pushManifest(d, reference)
  }
  const top = layoutTagDescriptor(img.layoutDir, img.tag)
  if (top.mediaType === MT_INDEX) {
    for (const m of readJsonBlob<OciIndex>(img.layoutDir, top.digest).manifests) await pushImageManifest(m, m.digest)
    await pushManifest(top, tag)
  } else {
    await pushImageManifest(top, tag)
  }
}

const ACCEPT = [MT_INDEX, MT_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json"].join(", ")

/** Read what a registry serves for `reference` (tag or digest): manifests, configs, DiffIDs. */
export const inspectRemote = async (host: string, repo: string, reference: string, creds?: Credentials): Promise<PushedImage> => {
  const base = `http://${host}/v2/${repo}`
  const headers = authHeader(creds)
  const getManifest = async (refOrDigest: string) => {
    const res = await fetch(`${base}/manifests/${refOrDigest}`, { headers: { ...headers, accept: ACCEPT } })
    if (!res.ok) throw new Error(`registry ${host}: GET manifest ${repo}:${refOrDigest}: HTTP ${res.status} ${await res.text()}`)
    const bytes = new Uint8Array(await res.arrayBuffer())
    const json = JSON.parse(new TextDecoder().decode(bytes)) as Partial<OciManifest & OciIndex>
    return { digest: `sha256:${sha256Hex(bytes)}`, mediaType: json.mediaType ?? res.headers.get("content-type") ?? "", json }
  }
  const describe = async (digest: string, mediaType: string, m: Partial<OciManifest>): Promise<PushedManifest> => {
    const res = await fetch(`${base}/blobs/${m.config!.digest}`, { headers })
    if (!res.ok) throw new Error(`registry ${host}: GET config ${m.config!.digest}: HTTP ${res.status}`)
    const config = (await res.json()) as { rootfs?: { diff_ids?: string[] } }
    const diffIds = config.rootfs?.diff_ids ?? []
    return {
      digest,
      mediaType,
      configDigest: m.config!.digest,
      layers: (m.layers ?? []).map((l, i) => ({
        digest: l.digest,
        diffId: diffIds[i] ?? "",
        mediaType: l.mediaType,
        size: l.size,
        annotations: l.annotations ?? {},
      })),
    }
  }
  const top = await getManifest(reference)
  const ref = `${host}/${repo}${reference.startsWith("sha256:") ? "@" : ":"}${reference}`
  if (top.json.manifests) {
    const manifests: PushedManifest[] = []
    for (const d of top.json.manifests) {
      const m = await getManifest(d.digest)
      manifests.push({ ...(await describe(m.digest, m.mediaType, m.json)), ...(d.platform ? { platform: d.platform } : {}) })
    }
    return { ref, manifestDigest: top.digest, mediaType: top.mediaType, layers: [], manifests }
  }
  const m = await describe(top.digest, top.mediaType, top.json)
  return { ref, manifestDigest: top.digest, mediaType: top.mediaType, layers: m.layers, configDigest: m.configDigest }
}

/**
 * Push `layoutDir:srcTag` to `registryHost/repo:destTag` (multi-arch indexes with all their
 * images), with layers compressed as asked (default gzip, which umoci writes), and read back
 * what the registry serves.
 *
 * gzip → skopeo as is; zstd → host skopeo recompresses into a cached layout first, then pushes
 * it; zstd:chunked → Debian 13's skopeo (chroot) converts and pushes (sets the chroot up when
 * needed); none → pushed over HTTP by this module, because skopeo always compresses
 * uncompressed layers for a registry. Recompressing into a layout first (never straight to the
 * registry) matters: skopeo 1.9.3 "reuses" a blob the registry already holds in gzip form and
 * so silently skips the recompression.
 */
export const pushImage = async (
  layoutDir: string,
  srcTag: string,
  registryHost: string,
  repo: string,
  destTag: string,
  opts: PushOptions = {},
): Promise<PushedImage> => {
  const compress = opts.compress ?? "gzip"
  const img = compress === "gzip" ? { layoutDir, tag: srcTag } : await compressionVariant({ layoutDir, tag: srcTag }, compress)
  if (compress === "none") {
    await pushLayoutHttp(img, registryHost, repo, destTag, opts.creds)
  } else if (compress === "zstd:chunked") {
    // The variant sits in the cache, which the chroot sees at the same path.
    await ensureCacheInChroot(CACHE_ROOT)
    const isIndex = layoutTagDescriptor(img.layoutDir, img.tag).mediaType === MT_INDEX
    await skopeo5Copy(`oci:${img.layoutDir}:${img.tag}`, `docker://${registryHost}/${repo}:${destTag}`, {
      all: isIndex,
      ...(opts.creds ? { creds: opts.creds } : {}),
    })
  } else {
    requireCommand("skopeo", "apt-get install skopeo")
    const isIndex = layoutTagDescriptor(img.layoutDir, img.tag).mediaType === MT_INDEX
    await runOk(
      [
        "skopeo",
        "copy",
        "--quiet",
        ...(isIndex ? ["--all"] : []),
        "--dest-tls-verify=false",
        ...(opts.creds ? ["--dest-creds", `${opts.creds.user}:${opts.creds.pass}`] : []),
        // Keep the layout's manifest (and so its digests) exactly as built.
        "--preserve-digests",
        `oci:${img.layoutDir}:${img.tag}`,
        `docker://${registryHost}/${repo}:${destTag}`,
      ],
      { timeoutMs: 30 * 60_000 },
    )
  }
  const pushed = await inspectRemote(registryHost, repo, destTag, opts.creds)
  const expected = layoutTagDescriptor(img.layoutDir, img.tag).digest
  if (pushed.manifestDigest !== expected)
    throw new Error(`pushed ${pushed.ref} but the registry serves ${pushed.manifestDigest}, not the layout's ${expected}`)
  return pushed
}

/** Push an image built by this module (convenience over pushImage). */
export const push = (img: OciImage, registryHost: string, repo: string, destTag = "latest", opts: PushOptions = {}): Promise<PushedImage> =>
  pushImage(img.layoutDir, img.tag, registryHost, repo, destTag, opts)

/** Sizes of an OCI layout's tag: for benchmark reports. */
export const layoutSizes = (img: OciImage): { compressed: number; layers: number } => {
  const m = readLayoutManifest(img.layoutDir, img.tag)
  return { compressed: m.layers.reduce((a, l) => a + l.size, 0), layers: m.layers.length }
}

/** Verify a file on disk against an ExpectedFile's content/hash (helper for tests). */
export const fileMatches = async (path: string, e: ExpectedFile): Promise<string | null> => {
  const st = statSync(path)
  if (e.size !== undefined && st.size !== e.size) return `${path}: size ${st.size}, expected ${e.size}`
  if (e.content !== undefined && readFileSync(path, "utf8") !== e.content) return `${path}: content differs`
  if (e.sha256 !== undefined && (await sha256File(path)) !== e.sha256) return `${path}: sha256 differs`
  return null
}

