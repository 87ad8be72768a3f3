/** The annotations that name a layer's table-of-contents digest (zstd:chunked, eStargz): spelled here only. */
export const TocAnnotation = {
  zstdChunked: "io.github.containers.zstd-chunked.manifest-checksum",
  zstdChunkedPosition: "io.github.containers.zstd-chunked.manifest-position",
  estargz: "containerd.io/snapshot/stargz/toc.digest",
} as const
