// Issue 14, FUSE passthrough: "files already complete are read through FUSE passthrough where
// the kernel offers it, so hot paths do not cross als". A zstd:chunked image served lazily by
// `als serve`; an overlay mount over the layers' lazy `diff`s, as podman makes one (the overlay
// keeps the lazy nodes after the layer is complete, as a running container does). Before the
// background pull completes the layer, a file's bytes cross als (its writes to /dev/fuse grow by
// the file's size: /proc/PID/io, counted by the kernel, load does not change it); once the layer
// is committed, a read of a file through the same overlay is answered by the kernel from the
// store's copy: right bytes, and als writes next to nothing. A file all of whose chunks were
// fetched is read the same way before the layer is complete (its own checked copy on disk); and
// the background completion fetches only what reads did not (a counting proxy in front of the
// registry: the blob bytes fetched in all are the blobs' size, not that plus what was read).

import { afterAll, beforeAll, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { join } from "node:path"
import { type CountingProxy, startCountingProxy } from "../lib/countingProxy.ts"
import { push, type PushedImage } from "../lib/images.ts"
import type { Podman } from "../lib/podman.ts"
import { startRegistry, type RegistryHandle } from "../lib/registry.ts"
import { b64, MIN, Resources } from "./support.ts"
import { type Serving, startServe, stopServers } from "./serveSupport.ts"
import { type BigImage, buildBigLazyImage } from "./lazySupport.ts"

const FILE_MIB = 16

let registry: RegistryHandle
let proxy: CountingProxy
let big: BigImage
let pushed: PushedImage
const res = new Resources()
/** podman sessions, released before the servers stop */
const podmen = new Resources()
const servers: Serving[] = []
const overlays: string[] = []

beforeAll(async () => {
  registry = await startRegistry()
  proxy = await startCountingProxy(registry.url)
  big = await buildBigLazyImage(2, FILE_MIB)
  pushed = await push(big, registry.host, "lazy/passthrough", "1", { compress: "zstd:chunked" })
}, 30 * MIN)

afterAll(async () => {
  // the overlays and containers first (they hold the lazy diffs), then the server, then the dirs
  await podmen.cleanup().catch(() => undefined)
  for (const m of overlays) {
    try {
      execFileSync("umount", [m])
    } catch {
      // already gone
    }
  }
  await stopServers(servers)
  await res.cleanup()
  await proxy?.stop()
  await registry?.stop()
}, 5 * MIN)

/** bytes the process wrote (write(2) and friends, /dev/fuse included), as the kernel counts them */
const wchar = (pid: number) => Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, "utf8"))![1])

const sha256 = (file: string) => createHash("sha256").update(fs.readFileSync(file)).digest("hex")

// reads a file whole after dropping its cached pages (POSIX_FADV_DONTNEED, which overlay hands to
// the lower file): a read answered from the page cache would cross als in no mode
const READER = `import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
h = hashlib.sha256()
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    h.update(b)
print(h.hexdigest())`

/** reads FILE in another process: what als wrote meanwhile, and the bytes' digest */
const catThrough = async (pid: number, file: string) => {
  const before = wchar(pid)
  const child = Bun.spawn(["python3", "-c", READER, file], { stdout: "pipe", stderr: "pipe" })
  const out = await new Response(child.stdout).text()
  const err = await new Response(child.stderr).text()
  expect({ code: await child.exited, err }).toEqual({ code: 0, err: "" })
  return { alsWrote: wchar(pid) - before, digest: out.trim() }
}

const waitFor = async (what: string, cond: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

test("a file of a lazily served layer crosses als until it is complete; after, a read through the same overlay is the kernel's (passthrough): right bytes, als writes next to nothing; the completion fetches only the bytes reads did not (blob bytes in all: the blobs' size)", async () => {
  const size = FILE_MIB << 20
  // through the counting proxy: every blob byte fetched is counted
  const ref = pushed.ref.replace(registry.host, proxy.host)
  const root = res.tempDir("lazy-pt-store")
  const mnt = res.tempDir("lazy-pt-mnt")
  const blobBytesBefore = await proxy.blobBytes()
  // the background pull starts 20 s after the lookup: time enough for the reads before it
  const server = await startServe(root, mnt, ["--lazy-delay", "20"])
  servers.push(server)
  const diffs = pushed.layers.map((l) => join(mnt, b64(ref), l.digest, "diff"))
  const bigLayer = pushed.layers[pushed.layers.length - 1]!
  for (const d of diffs) expect(fs.statSync(d).isDirectory()).toBe(true)
  expect(fs.existsSync(join(root, bigLayer.digest))).toBe(false) // served lazily

  // an overlay over the lazy diffs, top layer first, as podman mounts a container's rootfs
  // (this also shows our stack depth leaves room for it); a `:` in a lower's path is escaped
  const ovl = res.tempDir("lazy-pt-ovl")
  for (const d of ["upper", "work", "merged"]) fs.mkdirSync(join(ovl, d))
  const merged = join(ovl, "merged")
  execFileSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${[...diffs].reverse().map((d) => d.replaceAll(":", "\\:")).join(":")},upperdir=${ovl}/upper,workdir=${ovl}/work`, merged])
  overlays.push(merged)

  // before completion: the bytes come through als
  const early = await catThrough(server.pid, join(merged, "data", "random-0.bin"))
  expect(early.alsWrote).toBeGreaterThanOrEqual(size)
  expect(fs.existsSync(join(root, bigLayer.digest, "blob"))).toBe(false) // still lazy when it was read
  const fetchedEarly = (await proxy.blobBytes()) - blobBytesBefore
  expect(fetchedEarly).toBeGreaterThanOrEqual(size) // random bytes: the chunks of a 16 MiB file are 16 MiB

  // the background pull commits the layers (checked against digest and DiffID)
  await waitFor("the layers committed", () => pushed.layers.every((l) => fs.existsSync(join(root, l.digest, "blob"))), 10 * MIN)
  const committed = join(root, bigLayer.digest, "diff", "data")
  expect(early.digest).toBe(sha256(join(committed, "random-0.bin")))
  // what was fetched for the reads was not fetched again: in all, about the blobs' size (the
  // config blob and a few short held ranges fetched again with their neighbours on top), not
  // that plus the 16 MiB read first
  const total = pushed.layers.reduce((a, l) => a + l.size, 0)
  const fetchedAll = (await proxy.blobBytes()) - blobBytesBefore
  process.stderr.write(`blob bytes fetched: ${fetchedEarly} before completion, ${fetchedAll} in all, blobs ${total} (${(fetchedAll / total).toFixed(4)}x)\n`)
  expect(fetchedAll).toBeGreaterThanOrEqual(total)
  expect(fetchedAll).toBeLessThan(total + (1 << 20))

  // after: a file never read, and the one read before, through the same overlay (the same lazy
  // nodes): passthrough. The layer's completion reaches the server just after the blob appears:
  // the first open may still come before it, so wait for the reads to stop crossing (bounded)
  let late = await catThrough(server.pid, join(merged, "data", "random-1.bin"))
  for (let i = 0; i < 40 && late.alsWrote >= size; i++) {
    await new Promise((r) => setTimeout(r, 250))
    late = await catThrough(server.pid, join(merged, "data", "random-1.bin"))
  }
  expect(late.digest).toBe(sha256(join(committed, "random-1.bin")))
  expect(late.alsWrote).toBeLessThan(256 << 10) // a few replies, no file bytes: 16 MiB read
  const again = await catThrough(server.pid, join(merged, "data", "random-0.bin"))
  expect(again.digest).toBe(early.digest)
  expect(again.alsWrote).toBeLessThan(256 << 10)
  expect(server.stderr()).not.toContain("passthrough off")
  process.stderr.write(`als wrote while cat read ${FILE_MIB} MiB: ${early.alsWrote} bytes through als (lazy), ${late.alsWrote} and ${again.alsWrote} bytes by passthrough (complete)\n`)

  execFileSync("umount", [merged])
  overlays.splice(overlays.indexOf(merged), 1)
  expect(await server.stop()).toBe(0)
}, 20 * MIN)

test("a file all of whose chunks were fetched is read by the kernel (passthrough) while its layer is still not complete: the second read does not cross als", async () => {
  const size = FILE_MIB << 20
  const ref = pushed.ref
  const root = res.tempDir("lazy-ptf-store")
  const mnt = res.tempDir("lazy-ptf-mnt")
  // the background pull is held back for the whole test
  const server = await startServe(root, mnt, ["--lazy-delay", "3600"])
  servers.push(server)
  const bigLayer = pushed.layers[pushed.layers.length - 1]!
  const file = join(mnt, b64(ref), bigLayer.digest, "diff", "data", "random-0.bin")
  const first = await catThrough(server.pid, file)
  expect(first.alsWrote).toBeGreaterThanOrEqual(size) // not complete when opened: the bytes crossed als
  // every chunk is in now, and als writes the file's checked copy (docs/fuse-passthrough.md); its
  // writes count in als's wchar too, so wait for the copy before measuring the next read
  const copies = join(root, ".als", "cache", "lazy", bigLayer.digest.replace(":", "-"), "files")
  await waitFor("the file's copy", () => fs.existsSync(copies) && fs.readdirSync(copies).some((f) => /^\d+$/.test(f) && fs.statSync(join(copies, f)).size === size), 2 * MIN)
  // the next open is answered in passthrough against the copy (the first open's RELEASE reaches
  // als after cat exits, and until it does the node is read the plain way: read again until it
  // is not, bounded)
  let second = await catThrough(server.pid, file)
  for (let i = 0; i < 40 && second.alsWrote >= size; i++) {
    await new Promise((r) => setTimeout(r, 250))
    second = await catThrough(server.pid, file)
  }
  expect(second.digest).toBe(first.digest)
  expect(second.alsWrote).toBeLessThan(256 << 10) // a few replies, no file bytes: 16 MiB read
  // and the layer is still served lazily: nothing of it is in the store
  expect(fs.existsSync(join(root, bigLayer.digest))).toBe(false)
  // a file none of whose chunks were fetched still crosses
  const other = await catThrough(server.pid, join(mnt, b64(ref), bigLayer.digest, "diff", "data", "random-1.bin"))
  expect(other.alsWrote).toBeGreaterThanOrEqual(size)
  expect(server.stderr()).not.toContain("passthrough off")
  expect(server.stderr()).not.toContain("passthrough not used")
  process.stderr.write(`a complete file of a lazy layer, ${FILE_MIB} MiB: ${first.alsWrote} bytes written by als on the first read, ${second.alsWrote} on the next (passthrough)\n`)
  expect(await server.stop()).toBe(0)
}, 20 * MIN)

test("podman 4.3.1: a container started while its layer is served lazily reads a file through als; after the layer is committed the same container's reads are the kernel's", async () => {
  const size = FILE_MIB << 20
  const ref = pushed.ref
  const root = res.tempDir("lazy-pt4-store")
  const mnt = res.tempDir("lazy-pt4-mnt")
  const server = await startServe(root, mnt, ["--lazy-delay", "30"])
  servers.push(server)
  const podman: Podman = await podmen.podman4()
  fs.appendFileSync(join(podman.dir, "registries.conf"), `\n[[registry]]\nlocation = "${registry.host}"\ninsecure = true\n`)
  const als = ["--storage-opt", `overlay.additionallayerstore=${mnt}:ref`]
  await podman.podman([...als, "run", "-d", "--name", "pt", "--network", "none", ref, "/bin/busybox", "sleep", "3600"])
  const bigLayer = pushed.layers[pushed.layers.length - 1]!
  expect(podman.additionalLayers().length).toBe(pushed.layers.length) // podman used the store's layers
  // the container's rootfs, an overlay over the lazy diffs, as the host sees it
  const mergedDir = (await podman.podman(["inspect", "--format", "{{.GraphDriver.Data.MergedDir}}", "pt"])).stdout.trim()
  const inContainer = async (file: string) =>
    (await podman.podman(["exec", "pt", "/bin/busybox", "sha256sum", file])).stdout.split(" ")[0]

  const early = await catThrough(server.pid, join(mergedDir, "data", "random-0.bin"))
  expect(early.alsWrote).toBeGreaterThanOrEqual(size)
  expect(fs.existsSync(join(root, bigLayer.digest, "blob"))).toBe(false)

  await waitFor("the layer committed", () => fs.existsSync(join(root, bigLayer.digest, "blob")), 10 * MIN)
  const committed = join(root, bigLayer.digest, "diff", "data")
  let late = await catThrough(server.pid, join(mergedDir, "data", "random-1.bin"))
  for (let i = 0; i < 40 && late.alsWrote >= size; i++) {
    await new Promise((r) => setTimeout(r, 250))
    late = await catThrough(server.pid, join(mergedDir, "data", "random-1.bin"))
  }
  expect(late.digest).toBe(sha256(join(committed, "random-1.bin")))
  expect(late.alsWrote).toBeLessThan(256 << 10)
  // and inside the container: the same bytes, als still out of the way
  const before = wchar(server.pid)
  expect(await inContainer("/data/random-0.bin")).toBe(sha256(join(committed, "random-0.bin")))
  expect(wchar(server.pid) - before).toBeLessThan(256 << 10)
  expect(server.stderr()).not.toContain("passthrough off")
  process.stderr.write(`podman container, ${FILE_MIB} MiB: ${early.alsWrote} bytes written by als (lazy), ${late.alsWrote} (passthrough)\n`)

  await podman.podman(["rm", "--force", "pt"])
  await podmen.cleanup()
  expect(await server.stop()).toBe(0)
}, 20 * MIN)
