/**
 * Why a layer was not accepted. Two kinds, because they call for different actions:
 * - `LayerRejected`: the layer itself (or its download) is wrong; retrying on this host with the
 *   same data cannot help, except for the blob mismatches that a retry of the download may fix.
 * - `LayerIoError`: this host failed (disk full, permissions, I/O); the layer may be fine.
 * Both carry a complete human `message` (layer digest, entry, what to do), so they serialize
 * straight into failure events.
 */
export type LayerRejectedCode =
  | "BlobDigestMismatch"
  | "BlobSizeMismatch"
  | "DiffIdMismatch"
  | "TocDigestMismatch"
  | "CorruptData"
  | "UnsafeEntry"
  | "InvalidWhiteout"
  | "UnsupportedMediaType"
  | "UnsupportedEntry"

/**
 * Plain tagged errors (Effect matches them by `_tag`), not Schema classes: the extractor that
 * throws them also runs on a worker thread that loads no Effect runtime (IngestWorker.ts).
 */
export class LayerRejected extends Error {
  readonly _tag = "LayerRejected" as const
  readonly code: LayerRejectedCode
  /** the tar entry's name as written in the archive, when one entry is at fault */
  readonly entry?: string

  constructor(args: { readonly code: LayerRejectedCode; readonly message: string; readonly entry?: string | undefined }) {
    super(args.message)
    this.name = "LayerRejected"
    this.code = args.code
    if (args.entry !== undefined) this.entry = args.entry
  }
}

export type LayerIoErrorCode = "NoSpace" | "Io" | "Permission"

export class LayerIoError extends Error {
  readonly _tag = "LayerIoError" as const
  readonly code: LayerIoErrorCode
  readonly path: string

  constructor(args: { readonly code: LayerIoErrorCode; readonly path: string; readonly message: string }) {
    super(args.message)
    this.name = "LayerIoError"
    this.code = args.code
    this.path = args.path
  }
}

/** errno names of a Node fs error or a `SysError` (both carry `code`), else undefined. */
export const errnoCode = (e: unknown): string | undefined => {
  const code = (e as { code?: unknown } | null)?.code
  return typeof code === "string" && /^E[A-Z0-9]+$/.test(code) ? code : undefined
}

/**
 * A local failure while writing `path` for `layer`. ENOSPC/EDQUOT become NoSpace with advice,
 * EACCES/EPERM/EROFS become Permission; anything else is Io.
 */
export const ioFailure = (layer: string, path: string, what: string, e: unknown): LayerIoError => {
  const errno = errnoCode(e) ?? "EIO"
  const detail = e instanceof Error ? e.message : String(e)
  switch (errno) {
    case "ENOSPC":
    case "EDQUOT":
      return new LayerIoError({
        code: "NoSpace",
        path,
        message: `layer ${layer}: no space left while ${what} ${path} (${errno}). ` +
          `Free space on that filesystem (or raise the quota), then pull again.`,
      })
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new LayerIoError({
        code: "Permission",
        path,
        message: `layer ${layer}: permission denied while ${what} ${path} (${detail}). ` +
          `Extracting layers needs root (ownership, devices, trusted.* xattrs) and a writable store.`,
      })
    default:
      return new LayerIoError({
        code: "Io",
        path,
        message: `layer ${layer}: I/O error while ${what} ${path} (${detail}). Check the disk and pull again.`,
      })
  }
}
