// Hostile images for the trust-boundary tests: blobs and manifests pushed as they are (the
// registry's HTTP API, not skopeo, which would check or rewrite annotations).
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { MT_CONFIG, MT_MANIFEST, putManifest, uploadBlob } from "../../e2e/badImages.ts"
import { rawEntry, type RawEntry, sha256, TAR_END, type TestBlob } from "../../lib/tars.ts"
import * as zlib from "node:zlib"

export const ZSTD_TOC = "io.github.containers.zstd-chunked.manifest-checksum"
export const ZSTD_POSITION = "io.github.containers.zstd-chunked.manifest-position"
export const ESTARGZ_TOC = "containerd.io/snapshot/stargz/toc.digest"

export interface PushedLayer {
  readonly digest: string
  readonly size: number
  readonly diffId: string
  readonly mediaType: string
  readonly annotations: Record<string, string>
}

/** Uploads the blobs and a manifest naming them with the given (possibly forged) annotations. */
export const pushLayers = async (
  registryUrl: string,
  repo: string,
  tag: string,
  layers: ReadonlyArray<TestBlob & { readonly annotations: Record<string, string> }>,
): Promise<ReadonlyArray<PushedLayer>> => {
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: { Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
  }))
  await uploadBlob(registryUrl, repo, config)
  for (const l of layers) await uploadBlob(registryUrl, repo, l.blob)
  const manifest = new TextEncoder().encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: MT_MANIFEST,
    config: { mediaType: MT_CONFIG, digest: sha256(config), size: config.length },
    layers: layers.map((l) => ({
      mediaType: l.mediaType,
      digest: l.digest,
      size: l.size,
      ...(Object.keys(l.annotations).length ? { annotations: l.annotations } : {}),
    })),
  }))
  const res = await putManifest(registryUrl, repo, tag, manifest)
  if (!res.ok) throw new Error(`manifest PUT ${repo}:${tag}: HTTP ${res.status} ${await res.text()}`)
  return layers.map((l) => ({ digest: l.digest, size: l.size, diffId: l.diffId, mediaType: l.mediaType, annotations: l.annotations }))
}

const zc = (b: Uint8Array) => (zlib as unknown as { zstdCompressSync: (b: Uint8Array) => Buffer }).zstdCompressSync(b)

const skippable = (data: Uint8Array): Buffer => {
  const h = Buffer.alloc(8)
  h.writeUInt32LE(0x184d2a50, 0)
  h.writeUInt32LE(data.length, 4)
  return Buffer.concat([h, Buffer.from(data)])
}

/**
 * A zstd:chunked-shaped blob whose "TOC" range holds `inner` byte for byte, so that its TOC
 * digest, checked honestly against the blob, equals digest(inner): e.g. another layer's blob
 * digest. Its annotation claims exactly that, and it is true.
 */
export const blobWithTocOf = (entries: ReadonlyArray<RawEntry>, inner: Uint8Array): TestBlob & { annotations: Record<string, string> } => {
  const tarParts = entries.map(rawEntry)
  const frames: Array<Buffer> = [...tarParts.map(zc), zc(TAR_END)]
  const offset = frames.reduce((n, f) => n + f.length, 0) + 8
  frames.push(skippable(inner))
  const footer = Buffer.alloc(64)
  footer.writeBigUInt64LE(BigInt(offset), 0)
  footer.writeBigUInt64LE(BigInt(inner.length), 8)
  footer.writeBigUInt64LE(BigInt(inner.length), 16)
  footer.writeBigUInt64LE(1n, 24)
  footer.write("GNUlInUx", 56, "latin1")
  frames.push(skippable(footer))
  const blob = Buffer.concat(frames)
  return {
    blob,
    digest: sha256(blob),
    size: blob.length,
    diffId: sha256(Buffer.concat([...tarParts, TAR_END])),
    mediaType: "application/vnd.oci.image.layer.v1.tar+zstd",
    annotations: { [ZSTD_TOC]: sha256(inner), [ZSTD_POSITION]: `${offset}:${inner.length}:${inner.length}:1` },
  }
}

export const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64")

/** Temporary directories removed at the end. */
export class TempDirs {
  private readonly dirs: string[] = []
  make(prefix: string): string {
    const d = mkdtempSync(join(tmpdir(), `als-trust-${prefix}-`))
    this.dirs.push(d)
    return d
  }
  cleanup(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  }
}
