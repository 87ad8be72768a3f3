/**
 * Test harness for the layer pipeline: a sandbox under /tmp (sentinel files around a staging dir,
 * so that a write outside `diff` shows up), and a one-call `ingest` that returns Either.
 */
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Digest } from "../../../src/domain/Digest.ts"
import type { LayerIoError, LayerRejected } from "../../../src/extract/errors.ts"
import { ingestLayer, type IngestInput, type IngestResult } from "../../../src/extract/LayerIngest.ts"
import { Syscalls, SyscallsLive, type SyscallsApi } from "../../../src/sys/Syscalls.ts"
import { chunks, type TestBlob } from "../../lib/tars.ts"
import { listPaths } from "../../lib/tree.ts"

export const sys: SyscallsApi = await Effect.runPromise(Effect.provide(Syscalls, SyscallsLive))

export interface Sandbox {
  /** the sandbox root: sentinel files plus stage/ */
  readonly root: string
  readonly diffDir: string
  readonly blobPath: string
  /** throws if anything outside stage/ changed */
  readonly assertUntouched: () => void
  readonly cleanup: () => void
}

/**
 * root/
 *   outside.txt, etc/passwd, secret/       sentinels (must never change)
 *   stage/blob, stage/diff/                what the ingest writes
 */
export const sandbox = (): Sandbox => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "als-extract-"))
  fs.writeFileSync(path.join(root, "outside.txt"), "sentinel\n")
  fs.mkdirSync(path.join(root, "etc"))
  fs.writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n")
  fs.mkdirSync(path.join(root, "secret"))
  fs.mkdirSync(path.join(root, "stage"))
  const diffDir = path.join(root, "stage", "diff")
  fs.mkdirSync(diffDir)
  const before = listPaths(root).filter((p) => !p.startsWith("stage/"))
  return {
    root,
    diffDir,
    blobPath: path.join(root, "stage", "blob"),
    assertUntouched: () => {
      const now = listPaths(root).filter((p) => !p.startsWith("stage/"))
      if (JSON.stringify(now) !== JSON.stringify(before)) {
        throw new Error(`paths outside stage/ changed: ${JSON.stringify(before)} → ${JSON.stringify(now)}`)
      }
      if (fs.readFileSync(path.join(root, "outside.txt"), "utf8") !== "sentinel\n") throw new Error("outside.txt changed")
      if (fs.readFileSync(path.join(root, "etc", "passwd"), "utf8") !== "root:x:0:0::/root:/bin/sh\n") {
        throw new Error("etc/passwd changed")
      }
      if (fs.readdirSync(path.join(root, "stage")).some((n) => n !== "diff" && n !== "blob")) {
        throw new Error("stage/ holds more than diff and blob")
      }
    },
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  }
}

export type Outcome = Either.Either<IngestResult, LayerRejected | LayerIoError>

/** What ingest is given for `blob` in `box`: its bytes in chunks, its descriptor, the sandbox's paths. */
export const inputFor = (
  blob: TestBlob,
  box: Sandbox,
  over: Partial<IngestInput> & { chunkSize?: number; digest?: Digest } = {},
): IngestInput => {
  const { chunkSize, ...rest } = over
  return {
    source: chunks(blob.blob, chunkSize),
    digest: blob.digest,
    size: blob.size,
    mediaType: blob.mediaType,
    diffId: blob.diffId,
    annotations: blob.annotations,
    blobPath: box.blobPath,
    diffDir: box.diffDir,
    ...rest,
  }
}

export const ingest = (
  blob: TestBlob,
  box: Sandbox,
  over: Partial<IngestInput> & { chunkSize?: number; digest?: Digest } = {},
): Promise<Outcome> =>
  Effect.runPromise(
    ingestLayer(inputFor(blob, box, over)).pipe(Effect.provideService(Syscalls, sys), // test sources never fail on their own
      Effect.mapError((e) => e as LayerRejected | LayerIoError),
      Effect.either),
  )

/** The result of a successful ingest, or a thrown error describing the failure. */
export const ok = (o: Outcome): IngestResult => {
  if (Either.isLeft(o)) throw new Error(`ingest failed: ${o.left._tag} ${JSON.stringify(o.left)}`)
  return o.right
}

/** The failure of a failed ingest, or a thrown error if it succeeded. */
export const failure = (o: Outcome): LayerRejected | LayerIoError => {
  if (Either.isRight(o)) throw new Error(`ingest succeeded, expected a failure: ${JSON.stringify(o.right)}`)
  return o.left
}

/** Runs `f` with a fresh sandbox and removes it afterwards. */
export const withSandbox = async <A>(f: (box: Sandbox) => Promise<A>): Promise<A> => {
  const box = sandbox()
  try {
    return await f(box)
  } finally {
    box.cleanup()
  }
}
