/**
 * One layer, streamed once: blob bytes in → blob file written and hashed → decompressed →
 * DiffID hashed → tar parsed → overlay-format tree written into a staging dir. Nothing is held
 * whole in memory; each stage waits for the next (backpressure), so a slow disk slows the
 * download instead of buffering it.
 *
 *   source ─┬─ size check (fails as soon as the blob is longer than the descriptor says)
 *           ├─ blob digest, blob file, TOC byte range (zstd:chunked), progress
 *           └─ decoder (gzip / zstd / none, chosen by the magic bytes) ─┬─ DiffID digest (all bytes)
 *                                                                      └─ TarParser → OverlayWriter
 *
 * When the content is refused mid-stream (corrupt data, unsafe entry), the rest of the blob is
 * still read and hashed (not decompressed): if the blob does not match its descriptor, the
 * download is what went wrong, and the error says so (BlobDigestMismatch, retry) instead of
 * blaming the image. Local failures (disk full...) stop at once.
 */
import { createHash, type Hash } from "node:crypto"
import * as fs from "node:fs"
import { digestAlgorithm, type Digest } from "../domain/DigestSyntax.ts"
import type { LayerDescriptor, VerifiedLayer } from "../domain/LayerDescriptor.ts"
import type { SyscallsApi } from "../sys/SyscallsApi.ts"
import { CorruptStream, type Decoder, makeDecoder } from "./Decompress.ts"
import { errnoCode, ioFailure, LayerIoError, LayerRejected } from "./errors.ts"
import { type Compression, declaredCompression, knownLayerMediaTypes, SNIFF_BYTES, sniffCompression } from "./MediaType.ts"
import { OverlayWriter } from "./OverlayWriter.ts"
import { TarFormatError, TarNameError, type TarEntry, TarParser, type TarSink } from "./TarParser.ts"
import { Writeback } from "./Writeback.ts"
import { blobTooLong, checkBlob, checkDiffId } from "../verify/Blob.ts"
import { ESTARGZ_TOC_NAME, hashed, RangeHasher, tocExpectation, verifyToc, ZSTD_CHUNKED_FOOTER_SIZE } from "../verify/Toc.ts"

/**
 * The layer's descriptor (digest, size, DiffID, annotations for the TOC digest; a media type
 * that is not a layer tar is refused, UnsupportedMediaType), and where its bytes come from and go.
 */
export interface IngestInput extends Pick<LayerDescriptor, "digest" | "size" | "mediaType" | "diffId" | "annotations"> {
  /** the blob bytes as they arrive from the registry or a file */
  readonly source: AsyncIterable<Uint8Array>
  /** the blob is written here exactly as received */
  readonly blobPath: string
  /** an existing empty directory: the layer is extracted here */
  readonly diffDir: string
  /** default "trusted.overlay.opaque"; rootless stores use "user.overlay.opaque" */
  readonly opaqueXattr?: "trusted.overlay.opaque" | "user.overlay.opaque"
  /** progress: blob bytes received so far */
  readonly onBytes?: (blobBytesSoFar: number) => void
}

/** What ingest proved of the layer (the facts `info` records), and what it wrote. */
export interface IngestResult extends VerifiedLayer {
  /** size of the uncompressed tar (never -1 here) */
  readonly diffSize: number
  /** what the blob really is (its magic bytes), which may differ from its media type */
  readonly compression: Compression
  /** only when an annotation named it and the blob matched it */
  readonly tocDigest?: Digest
  /** entries written */
  readonly files: number
  /** file bytes written */
  readonly bytes: number
}

const rejected = (code: LayerRejected["code"], message: string, entry?: string) =>
  new LayerRejected(entry === undefined ? { code, message } : { code, message, entry })

const BROKEN_IMAGE = "The blob matches its digest, so the image itself is broken: rebuild or re-push it."

/** Turns a failure of the decode/extract stages into what we report, or rethrows a local one. */
const contentFailure = (layer: Digest, e: unknown): LayerRejected => {
  if (e instanceof LayerRejected) return e
  if (e instanceof CorruptStream) {
    return rejected("CorruptData", `layer ${layer}: ${e.message}. ${BROKEN_IMAGE}`)
  }
  if (e instanceof TarFormatError) {
    return rejected("CorruptData", `layer ${layer}: the layer is not a valid tar archive: ${e.message}. ${BROKEN_IMAGE}`)
  }
  if (e instanceof TarNameError) {
    return rejected(
      "UnsupportedEntry",
      `layer ${layer}: ${e.message}; such names cannot be extracted byte for byte. Pull this image without the layer store.`,
    )
  }
  throw e
}

/** The ingest was stopped (an interruption): it closed what it had open and wrote nothing more. */
export class Aborted extends Error {}

/** A media type that is not a layer tar: refused before a byte is read. */
export const mediaTypeRefusal = (input: Pick<IngestInput, "digest" | "mediaType">): LayerRejected | undefined =>
  declaredCompression(input.mediaType) === undefined
    ? rejected(
      "UnsupportedMediaType",
      `layer ${input.digest}: media type ${JSON.stringify(input.mediaType)} is not a layer type we can extract ` +
        `(expected one of ${knownLayerMediaTypes.join(", ")}). Pull this image without the layer store.`,
    )
    : undefined

/**
 * The whole stream of one layer on the calling thread (the caller runs it in line or on an
 * ingest worker, IngestOffThread.ts). Throws LayerRejected, LayerIoError, Aborted, or what the
 * source threw.
 */
export const ingestStream = async (input: IngestInput, sys: SyscallsApi, signal: AbortSignal): Promise<IngestResult> => {
  const layer = input.digest
  const refused = mediaTypeRefusal(input)
  if (refused !== undefined) throw refused
  const toc = tocExpectation(layer, input.annotations)

  const blobAlg = digestAlgorithm(input.digest)
  const blobHash = createHash(blobAlg)
  let blobSize = 0
  const diffAlg = digestAlgorithm(input.diffId)
  const diffHash = createHash(diffAlg)
  let diffSize = 0
  const tocRange = toc?.kind === "zstd:chunked" && toc.range !== undefined
    ? new RangeHasher(toc.range, digestAlgorithm(toc.digest))
    : undefined
  const wantFooter = toc?.kind === "zstd:chunked" && toc.range === undefined
  let tail: Uint8Array = new Uint8Array(0)

  let writer: OverlayWriter
  try {
    writer = new OverlayWriter({
      root: input.diffDir,
      layer,
      sys,
      opaqueXattr: input.opaqueXattr ?? "trusted.overlay.opaque",
    })
  } catch (e) {
    throw ioFailure(layer, input.diffDir, "opening", e)
  }
  const estargz = toc?.kind === "estargz" ? new EstargzTocSink(writer, digestAlgorithm(toc.digest)) : undefined
  const parser = new TarParser(estargz ?? writer)
  /** uncompressed blob with the same algorithm: the DiffID is the blob digest, hash once */
  let diffIsBlob = false
  const onOutput = (c: Uint8Array) => {
    if (!diffIsBlob) diffHash.update(c)
    diffSize += c.length
    parser.push(c)
  }

  let compression: Compression = "none"
  let decoder: Decoder | undefined
  let head: Array<Uint8Array> = []
  let headLen = 0
  /** a refusal of the content; the blob is still read to tell it from a bad download */
  let failure: LayerRejected | undefined

  const guard = async (step: () => Promise<void> | undefined | void) => {
    try {
      await step()
    } catch (e) {
      failure = contentFailure(layer, e)
      decoder?.destroy()
    }
  }
  const start = async () => {
    const first = head.length === 1 ? head[0] : Buffer.concat(head)
    head = []
    const sniffed = sniffCompression(first)
    if (sniffed === "xz" || sniffed === "bzip2") {
      failure = rejected(
        "UnsupportedMediaType",
        `layer ${layer}: the blob is ${sniffed}-compressed, which OCI layers may not be. Pull this image without the layer store.`,
      )
      return
    }
    compression = sniffed
    diffIsBlob = sniffed === "none" && diffAlg === blobAlg
    await guard(async () => {
      decoder = await makeDecoder(sniffed, onOutput)
      await decoder.write(first)
    })
  }

  const blobWriteback = new Writeback(sys.startWriteback)
  let blobFd: number
  try {
    blobFd = fs.openSync(
      input.blobPath,
      fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
      0o644,
    )
    fs.fchmodSync(blobFd, 0o644) // clients read it: whatever the umask
    blobWriteback.opened(blobFd)
  } catch (e) {
    throw ioFailure(layer, input.blobPath, "creating", e)
  }
  try {
    try {
      for await (const chunk of input.source) {
        if (signal.aborted) throw new Aborted("interrupted")
        const at = blobSize
        blobSize += chunk.length
        if (blobSize > input.size) throw blobTooLong(layer, input.size)
        blobHash.update(chunk)
        try {
          let off = 0
          while (off < chunk.length) off += fs.writeSync(blobFd, chunk, off, chunk.length - off)
          blobWriteback.wrote(chunk.length)
        } catch (e) {
          throw ioFailure(layer, input.blobPath, "writing", e)
        }
        tocRange?.feed(at, chunk)
        if (wantFooter) tail = keepTail(tail, chunk)
        input.onBytes?.(blobSize)
        if (failure !== undefined) continue
        if (decoder === undefined) {
          // a chunk kept across yields is copied (Buffer#slice would be a view): a source may
          // reuse its buffer
          head.push(headLen + chunk.length < SNIFF_BYTES ? new Uint8Array(chunk) : chunk)
          headLen += chunk.length
          if (headLen >= SNIFF_BYTES) await start()
        } else {
          const d = decoder
          await guard(() => d.write(chunk))
        }
      }
    } finally {
      blobWriteback.closing()
      fs.closeSync(blobFd)
    }
    if (failure === undefined && decoder === undefined) await start()
    if (failure === undefined) {
      const d = decoder!
      await guard(async () => {
        await d.end()
        parser.finish()
        writer.finish()
      })
    }
  } catch (e) {
    decoder?.destroy()
    if (e instanceof LayerRejected || e instanceof LayerIoError || e instanceof Aborted) throw e
    if (errnoCode(e) !== undefined) throw ioFailure(layer, input.diffDir, "extracting into", e)
    throw e
  } finally {
    writer.closeOpen()
  }

  // the download first: a bad blob explains any content failure
  const blobDigest = hashed(blobAlg, blobHash)
  const badBlob = checkBlob(layer, { size: blobSize, digest: blobDigest }, { size: input.size })
  if (badBlob !== undefined) throw badBlob
  if (failure !== undefined) throw failure
  const diffId = diffIsBlob ? blobDigest : hashed(diffAlg, diffHash)
  const badDiff = checkDiffId(layer, diffId, input.diffId)
  if (badDiff !== undefined) throw badDiff
  const tocDigest = toc === undefined ? undefined : verifyToc(layer, toc, {
    blobPath: input.blobPath,
    blobSize,
    tocRange,
    tail,
    estargz: estargz?.digest,
  })
  return {
    digest: blobDigest,
    size: blobSize,
    diffId,
    diffSize,
    compression,
    ...(tocDigest !== undefined ? { tocDigest } : {}),
    files: writer.files,
    bytes: writer.bytes,
  }
}

const keepTail = (tail: Uint8Array, chunk: Uint8Array): Uint8Array => {
  if (chunk.length >= ZSTD_CHUNKED_FOOTER_SIZE) return chunk.slice(chunk.length - ZSTD_CHUNKED_FOOTER_SIZE)
  const both = new Uint8Array(tail.length + chunk.length)
  both.set(tail)
  both.set(chunk, tail.length)
  return both.slice(Math.max(0, both.length - ZSTD_CHUNKED_FOOTER_SIZE))
}

/** Passes entries to the writer and hashes the content of `stargz.index.json` on the way. */
class EstargzTocSink implements TarSink {
  digest: Digest | undefined
  private hash: Hash | undefined

  constructor(private readonly writer: OverlayWriter, private readonly algorithm: "sha256" | "sha512") {}

  entry(e: TarEntry): void {
    this.writer.entry(e)
    // the TOC is written into diff too: containers/storage's ordinary (non-lazy) pull of an
    // eStargz layer extracts every entry, and our diff must match what podman would make
    this.hash = e.kind === "file" && this.writer.currentPath === ESTARGZ_TOC_NAME
      ? createHash(this.algorithm)
      : undefined
  }

  data(chunk: Uint8Array): void {
    this.writer.data(chunk)
    this.hash?.update(chunk)
  }

  end(): void {
    this.writer.end()
    if (this.hash !== undefined) {
      this.digest = hashed(this.algorithm, this.hash)
      this.hash = undefined
    }
  }
}
