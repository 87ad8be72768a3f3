/**
 * Layer media types and compression sniffing. The media type only says whether we accept the
 * descriptor at all; the compression actually used is read from the blob's first bytes, because
 * registries and tools mislabel layers (a `tar+gzip` that is plain tar, zstd served as gzip),
 * and containers/storage trusts the magic too.
 */

export type Compression = "none" | "gzip" | "zstd"

const layerMediaTypes: ReadonlyMap<string, Compression> = new Map([
  ["application/vnd.oci.image.layer.v1.tar", "none"],
  ["application/vnd.oci.image.layer.v1.tar+gzip", "gzip"],
  ["application/vnd.oci.image.layer.v1.tar+zstd", "zstd"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar", "none"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "gzip"],
  ["application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", "zstd"],
  ["application/vnd.docker.image.rootfs.diff.tar", "none"],
  ["application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"],
  ["application/vnd.docker.image.rootfs.foreign.diff.tar", "none"],
  ["application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", "gzip"],
] as const)

/** The compression a layer media type declares; undefined for anything that is not a layer. */
export const declaredCompression = (mediaType: string): Compression | undefined =>
  layerMediaTypes.get(mediaType.trim().toLowerCase())

export const knownLayerMediaTypes: ReadonlyArray<string> = [...layerMediaTypes.keys()]

/** What the first bytes say. "xz"/"bzip2" are recognized only to be refused with a clear error. */
export type Sniffed = Compression | "xz" | "bzip2"

/** Needs at least 6 bytes unless the blob is shorter. */
export const sniffCompression = (head: Uint8Array): Sniffed => {
  const b = head
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip"
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return "zstd"
  // a zstd skippable frame (magic 0x184D2A50..5F, little endian) can start a zstd:chunked blob
  if (b.length >= 4 && (b[0] & 0xf0) === 0x50 && b[1] === 0x2a && b[2] === 0x4d && b[3] === 0x18) return "zstd"
  if (
    b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a &&
    b[5] === 0x00
  ) return "xz"
  if (b.length >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return "bzip2"
  return "none"
}

export const SNIFF_BYTES = 6
