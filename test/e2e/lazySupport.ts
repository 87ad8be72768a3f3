// Images for the lazy-pulling tests: a runnable image (static busybox) with a large layer of
// incompressible data (deterministic: an AES-CTR keystream) and one small file, kept in the
// test cache as an OCI layout with uncompressed layers; pushing it with compress
// "zstd:chunked" converts it (Debian 13's skopeo) and caches the variant.

import { createCipheriv, createHash } from "node:crypto"
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"
import { CACHE_ROOT, type OciImage } from "../lib/images.ts"
import { busyboxLayer } from "./serveSupport.ts"

const MT_TAR = "application/vnd.oci.image.layer.v1.tar"

const header = (name: string, size: number, mode: number, type = "0"): Buffer => {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, "utf8")
  h.write(mode.toString(8).padStart(7, "0") + "\0", 100)
  h.write("0000000\0", 108)
  h.write("0000000\0", 116)
  h.write(size.toString(8).padStart(11, "0") + "\0", 124)
  h.write((1_700_000_000).toString(8).padStart(11, "0") + "\0", 136)
  h.write("        ", 148)
  h.write(type, 156)
  h.write("ustar\0", 257)
  h.write("00", 263)
  let sum = 0
  for (const x of h) sum += x
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148)
  return h
}

export interface BigImage extends OciImage {
  readonly smallFile: string
  readonly smallContent: string
  readonly bigBytes: number
}

/** `files` × `fileMiB` MiB of random data in data/, and etc/motd, over a busybox layer. */
export const buildBigLazyImage = async (files = 8, fileMiB = 64): Promise<BigImage> => {
  const dir = join(CACHE_ROOT, `lazy-big-${files}x${fileMiB}-v1`)
  const smallContent = "hello from a lazily served layer\n"
  const out: BigImage = { layoutDir: join(dir, "layout"), tag: "big", smallFile: "/etc/motd", smallContent, bigBytes: files * fileMiB << 20 }
  if (existsSync(join(dir, "done"))) return out
  const tmp = `${dir}.tmp-${process.pid}`
  rmSync(tmp, { recursive: true, force: true })
  const blobs = join(tmp, "layout", "blobs", "sha256")
  mkdirSync(blobs, { recursive: true })
  const put = (bytes: Uint8Array) => {
    const hex = createHash("sha256").update(bytes).digest("hex")
    writeFileSync(join(blobs, hex), bytes)
    return { digest: `sha256:${hex}`, size: bytes.length }
  }
  const bb = await busyboxLayer()
  const base = put(bb.tar)
  // the big layer, streamed to a file
  const bigPath = join(tmp, "big.tar")
  const fd = openSync(bigPath, "w")
  const h = createHash("sha256")
  let size = 0
  const w = (b: Uint8Array) => {
    writeSync(fd, b)
    h.update(b)
    size += b.length
  }
  w(header("etc/", 0, 0o755, "5"))
  const motd = Buffer.from(smallContent)
  w(header("etc/motd", motd.length, 0o644))
  w(motd)
  w(Buffer.alloc(512 - motd.length))
  w(header("data/", 0, 0o755, "5"))
  const zero = Buffer.alloc(1 << 20)
  for (let i = 0; i < files; i++) {
    const c = createCipheriv("aes-128-ctr", Buffer.alloc(16, i + 1), Buffer.alloc(16))
    w(header(`data/random-${i}.bin`, fileMiB << 20, 0o644))
    for (let m = 0; m < fileMiB; m++) w(c.update(zero))
  }
  w(Buffer.alloc(1024))
  closeSync(fd)
  const bigHex = h.digest("hex")
  renameSync(bigPath, join(blobs, bigHex))
  const big = { digest: `sha256:${bigHex}`, size }
  const config = put(Buffer.from(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: [base.digest, big.digest] },
  })))
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: MT_TAR, ...base }, { mediaType: MT_TAR, ...big }],
  })))
  writeFileSync(join(tmp, "layout", "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }))
  writeFileSync(join(tmp, "layout", "index.json"), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": "big" } }],
  }))
  writeFileSync(join(tmp, "done"), "")
  rmSync(dir, { recursive: true, force: true })
  renameSync(tmp, dir)
  return out
}
