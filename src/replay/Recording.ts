/**
 * The on-disk format of a recorded pull (docs/replay.md, events/README.md):
 *
 *     DIR/recording.json         what was run (refs, platform, jobs, tls-verify), when, by which als,
 *                                the store root it ran in, and one entry per committed layer
 *     DIR/inputs.json            the clock readings and the ids the pull took, in order
 *     DIR/exchanges.ndjson       one registry exchange per line, in the order the requests went out
 *     DIR/events.ndjson          the events the pull wrote, in log order
 *     DIR/trees/<hex>.ndjson     per committed layer: its extracted tree, one entry per line
 *     DIR/blobs/sha256-<hex>     response bodies, content-addressed (each stored once)
 *
 * Plain JSON so that a recording can be read and reviewed in a diff. Credentials are never
 * written: a request records only the *scheme* of its Authorization header.
 */
import process from "node:process"
import { createHash, type Hash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Schema } from "effect"
import type { Envelope, Event } from "../events/Events.ts"
import type { TreeEntry } from "./TreeFingerprint.ts"
import { requireRegularText } from "../sys/RegularFile.ts"

export const RECORDING_FORMAT = "als-recording"
export const RECORDING_VERSION = 1

export interface RecordedOptions {
  /** the references pulled, in order, as given */
  readonly refs: ReadonlyArray<string>
  /** os/arch[/variant]: the platform the pull chose (the host's unless --platform said) */
  readonly platform?: string | undefined
  readonly jobs: number
  readonly tlsVerify: boolean
}

export interface RecordedLayer {
  readonly layer: string
  readonly diffId: string
  readonly tocDigest?: string | undefined
  /** `trees/<hex>.ndjson` */
  readonly tree: string
  /** sha256 of that file: the tree's fingerprint */
  readonly treeDigest: string
  readonly entries: number
}

export interface RecordingManifest {
  readonly format: typeof RECORDING_FORMAT
  readonly version: number
  readonly alsVersion: string
  /** ISO 8601 */
  readonly recordedAt: string
  readonly options: RecordedOptions
  /** the store root of the recorded run: paths under it compare as `<root>` */
  readonly storeRoot: string
  /** whether requests carried credentials (Basic) or used a refresh token (POST to the token server) */
  readonly credentials: { readonly used: boolean; readonly identityToken: boolean }
  readonly counts: { readonly exchanges: number; readonly events: number; readonly blobs: number; readonly blobBytes: number }
  /** layers committed by the pull, with their extracted tree */
  readonly layers: ReadonlyArray<RecordedLayer>
}

export interface RecordedInputs {
  /** every Clock.currentTimeMillis reading, in order */
  readonly clock: ReadonlyArray<number>
  /** every id the Ids service handed out, in order */
  readonly ids: ReadonlyArray<string>
}

export interface RecordedBody {
  /** `sha256:<hex>` of the bytes in blobs/; absent for an empty body */
  readonly digest?: string | undefined
  readonly size: number
  /** false when the client stopped reading before the end (a discarded 401 or redirect body) */
  readonly complete: boolean
  /** the transfer broke after `size` bytes */
  readonly error?: RecordedError | undefined
}

export interface RecordedError {
  readonly name: string
  readonly message: string
  readonly code?: string | undefined
  /** Deno's fetch says "fetch failed" and keeps the reason here */
  readonly cause?: { readonly message: string; readonly code?: string | undefined } | undefined
}

export interface ExchangeRequest {
  readonly method: string
  readonly url: string
  /** only the headers that select what is answered: accept, range, content-type */
  readonly headers: Readonly<Record<string, string>>
  /** the Authorization scheme (`basic`, `bearer`), never its value */
  readonly auth?: string | undefined
  /** sha256 of a request body (a token POST), never the body itself */
  readonly bodyDigest?: string | undefined
  readonly insecureTls?: boolean | undefined
}

export interface ExchangeResponse {
  readonly status: number
  readonly statusText?: string | undefined
  /** every response header but set-cookie, names lowercased */
  readonly headers: Readonly<Record<string, string>>
  readonly body: RecordedBody
}

export interface Exchange {
  /** order in which the request was sent, from 0 */
  readonly seq: number
  readonly request: ExchangeRequest
  /** the answer, or… */
  readonly response?: ExchangeResponse | undefined
  /** …the failure of a request that got no answer (refused, reset, TLS) */
  readonly error?: RecordedError | undefined
}

export interface RecordedEvent {
  readonly envelope: Envelope
  readonly event: Event
}

/** A recording that cannot be read: what is wrong and where. */
export class RecordingError extends Schema.TaggedError<RecordingError>()("RecordingError", {
  dir: Schema.String,
  problem: Schema.String,
}) {
  override get message() {
    return `recording ${this.dir}: ${this.problem}`
  }
}

export const recordingFiles = (dir: string) => ({
  manifest: path.join(dir, "recording.json"),
  inputs: path.join(dir, "inputs.json"),
  exchanges: path.join(dir, "exchanges.ndjson"),
  events: path.join(dir, "events.ndjson"),
  trees: path.join(dir, "trees"),
  blobs: path.join(dir, "blobs"),
})

export const blobFile = (dir: string, digest: string): string => path.join(dir, "blobs", digest.replace(":", "-"))

const toNdjson = (items: ReadonlyArray<unknown>): string => items.map((i) => JSON.stringify(i)).join("\n") + (items.length ? "\n" : "")

/** Writes `text` to `file` through a temporary name, so a reader never sees half a file. */
export const writeFileAtomic = (file: string, text: string): void => {
  const tmp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}

export const writeNdjson = (file: string, items: ReadonlyArray<unknown>): void => writeFileAtomic(file, toNdjson(items))

export const writeJson = (file: string, value: unknown): void => writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n")

/**
 * A response body on its way into blobs/: written to a temporary file and hashed as the
 * client reads it, then renamed to its digest (or dropped when that blob is already there).
 */
export class BlobSink {
  private fd: number | undefined
  private readonly tmp: string
  private readonly hash: Hash = createHash("sha256")
  size = 0
  result: RecordedBody | undefined

  constructor(private readonly dir: string, seq: number) {
    this.tmp = path.join(dir, "blobs", `.partial-${process.pid}-${seq}`)
  }

  write(chunk: Uint8Array): void {
    if (this.result) return
    if (this.fd === undefined) this.fd = fs.openSync(this.tmp, "w", 0o644)
    fs.writeSync(this.fd, chunk)
    this.hash.update(chunk)
    this.size += chunk.byteLength
  }

  /** Closes the body: `complete` when it was read to the end. Returns what to record. */
  finish(complete: boolean, error?: RecordedError): RecordedBody {
    if (this.result) return this.result
    if (this.fd !== undefined) fs.closeSync(this.fd)
    let digest: string | undefined
    if (this.size > 0) {
      digest = `sha256:${this.hash.digest("hex")}`
      const dest = blobFile(this.dir, digest)
      if (fs.existsSync(dest)) fs.rmSync(this.tmp, { force: true })
      else fs.renameSync(this.tmp, dest)
    }
    this.result = { ...(digest ? { digest } : {}), size: this.size, complete, ...(error ? { error } : {}) }
    return this.result
  }
}

/** An error as it may be recorded (and thrown again on replay). */
export const recordError = (e: unknown): RecordedError => {
  const err = e as { name?: unknown; message?: unknown; code?: unknown; cause?: { message?: unknown; code?: unknown } } | undefined
  const cause = err?.cause
  return {
    name: typeof err?.name === "string" ? err.name : "Error",
    message: typeof err?.message === "string" ? err.message : String(e),
    ...(typeof err?.code === "string" ? { code: err.code } : {}),
    ...(typeof cause?.message === "string"
      ? { cause: { message: cause.message, ...(typeof cause.code === "string" ? { code: cause.code } : {}) } }
      : {}),
  }
}

/** The recorded error as the client would have seen it (name, message, code and cause). */
export const reviveError = (r: RecordedError): Error => {
  const e = new Error(r.message) as Error & { code?: string; cause?: unknown }
  e.name = r.name
  if (r.code !== undefined) e.code = r.code
  if (r.cause) e.cause = Object.assign(new Error(r.cause.message), r.cause.code ? { code: r.cause.code } : {})
  return e
}

// ---- reading ---------------------------------------------------------------------------------

/** A recording's text files (manifest, inputs, exchanges) stay far below this. */
const MAX_RECORDING_TEXT_BYTES = 256 << 20

/** A regular file only: a FIFO or /dev/zero in a recording must not hang the replay. */
const readText = (dir: string, file: string): string =>
  requireRegularText(file, MAX_RECORDING_TEXT_BYTES, (reason) => new RecordingError({ dir, problem: `cannot read ${path.basename(file)}: ${reason}` }))

const parseJson = (dir: string, name: string, text: string, line?: number): unknown => {
  try {
    return JSON.parse(text)
  } catch (e) {
    const where = line === undefined ? name : `${name} line ${line}`
    throw new RecordingError({ dir, problem: `${where} is not JSON: ${(e as Error).message}` })
  }
}

const readNdjson = (dir: string, file: string): Array<unknown> =>
  readText(dir, file)
    .split("\n")
    .map((l, i) => [l, i + 1] as const)
    .filter(([l]) => l.trim() !== "")
    .map(([l, n]) => parseJson(dir, path.basename(file), l, n))

export interface LoadedRecording {
  readonly dir: string
  readonly manifest: RecordingManifest
  readonly inputs: RecordedInputs
  readonly exchanges: ReadonlyArray<Exchange>
  readonly events: ReadonlyArray<RecordedEvent>
}

/** Reads a recording's metadata (not its blobs or trees). Throws RecordingError. */
export const loadRecording = (dir: string): LoadedRecording => {
  const f = recordingFiles(dir)
  if (!fs.existsSync(f.manifest)) {
    throw new RecordingError({ dir, problem: "no recording.json here: not a recording made by `als pull --record`" })
  }
  const manifest = parseJson(dir, "recording.json", readText(dir, f.manifest)) as RecordingManifest
  if (manifest?.format !== RECORDING_FORMAT) throw new RecordingError({ dir, problem: "recording.json is not an als recording" })
  if (manifest.version > RECORDING_VERSION) {
    throw new RecordingError({ dir, problem: `format version ${manifest.version} is newer than this als reads (${RECORDING_VERSION})` })
  }
  const inputs = parseJson(dir, "inputs.json", readText(dir, f.inputs)) as RecordedInputs
  const exchanges = readNdjson(dir, f.exchanges) as Array<Exchange>
  const events = readNdjson(dir, f.events) as Array<RecordedEvent>
  for (const [i, e] of events.entries()) {
    if (typeof e?.event?._tag !== "string" || typeof e?.envelope?.workflow !== "string") {
      throw new RecordingError({ dir, problem: `events.ndjson line ${i + 1} has no envelope or event` })
    }
  }
  return { dir, manifest, inputs, exchanges, events }
}

/** A recorded layer's tree entries. Throws RecordingError. */
export const loadTree = (dir: string, layer: RecordedLayer): Array<TreeEntry> =>
  readNdjson(dir, path.join(dir, layer.tree)) as Array<TreeEntry>

