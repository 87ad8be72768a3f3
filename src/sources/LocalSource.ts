/**
 * Local images as ImageSources: an OCI layout directory, an oci-archive, a docker-archive.
 * The pull workflow treats them exactly as a registry image (same verification, events and
 * store result); only where the bytes come from differs.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import type { Digest } from "../domain/Digest.ts"
import { InvalidReference, referenceName, parseReference } from "../domain/Reference.ts"
import { formatPlatform, type Platform } from "../domain/Platform.ts"
import type { ImageSource, SourceImage } from "../workflows/ImageSource.ts"
import { type ArchiveImage, pickArchiveImage, readArchiveManifest, resolveArchive } from "./DockerArchive.ts"
import { archiveTree, directoryTree, type FileTree } from "./FileTree.ts"
import { entryTag, layoutBlob, pickEntry, readIndex, resolveLayout } from "./OciLayout.ts"
import { sourceError, type SourceError } from "./SourceError.ts"
import { archiveName, layoutName, ociArchiveName, type RecordedName } from "./SourceName.ts"
import { formatSourceSpec, type LocalSpec } from "./SourceSpec.ts"
import { TarIndexError } from "./TarIndex.ts"

export interface LocalPull {
  readonly source: ImageSource
  /** the `:ref` name and why it was chosen */
  readonly recorded: RecordedName
}

export interface LocalOptions {
  /** `--name`: the registry name podman will pull the image as */
  readonly name?: string | undefined
  /** the platform names are chosen for (a multi-arch layout's entries may carry different tags) */
  readonly platform: Platform
}

const needsName = (label: string, why: string) =>
  sourceError("NeedsName", label, `${why}; pass --name REF with the name podman will pull the image as (e.g. --name registry.example/app:1.0)`)

const checkPath = (label: string, p: string, want: "dir" | "file") =>
  Effect.gen(function*() {
    let st: fs.Stats
    try {
      st = fs.statSync(p)
    } catch {
      return yield* sourceError("NotFound", label, `${p} does not exist; check the path (relative paths start from ${process.cwd()})`)
    }
    if (want === "dir" && !st.isDirectory()) {
      return yield* sourceError("NotALayout", label, `${p} is a file, not an OCI layout directory${p.endsWith(".tar") ? `; for an archive use oci-archive:${p} or docker-archive:${p}` : ""}`)
    }
    if (want === "file" && !st.isFile()) {
      return yield* sourceError("NotALayout", label, `${p} is not a file${st.isDirectory() ? `; for a layout directory use oci:${p}` : ""}`)
    }
  })

const openArchive = (label: string, p: string) =>
  Effect.try({
    try: () => archiveTree(p),
    catch: (e) =>
      e instanceof TarIndexError
        ? sourceError("InvalidArchive", label, `${p} is not a readable tar archive (${e.message})`)
        : sourceError("Io", label, `cannot read ${p}: ${(e as Error).message}`),
  })

/** Resolves once per platform: the workflow resolves, then asks for blobs, which need the result. */
const once = <A, E>(f: (p: Platform) => Effect.Effect<A, E>) => {
  const memo = new Map<string, Effect.Effect<A, E>>()
  return (p: Platform) => {
    const key = formatPlatform(p)
    let e = memo.get(key)
    if (e === undefined) {
      e = Effect.runSync(Effect.cached(f(p)))
      memo.set(key, e)
    }
    return e
  }
}

const digestAliases = (name: string) => (image: SourceImage): ReadonlyArray<string> => {
  try {
    const n = referenceName(parseReference(name))
    return [...new Set([`${n}@${image.indexDigest ?? image.manifestDigest}`, `${n}@${image.manifestDigest}`])]
  } catch {
    return []
  }
}

const layoutSource = (tree: FileTree, label: string, path: string, tag: string | undefined, opts: LocalOptions, archive: boolean) =>
  Effect.gen(function*() {
    const manifests = yield* readIndex(tree, label)
    const pick = pickEntry(manifests, tag, opts.platform)
    const refName = pick._tag === "Picked" ? entryTag(pick.entry) : undefined
    const recorded = archive ? ociArchiveName({ name: opts.name, refName }) : layoutName({ name: opts.name, path, tag, refName })
    if (recorded === undefined) {
      return yield* needsName(label, archive ? "the archive's index.json gives the image no name" : `podman cannot name an image after the path ${JSON.stringify(path)}`)
    }
    const source: ImageSource = {
      name: recorded.name,
      display: label,
      resolve: once((platform) => resolveLayout(tree, label, tag, platform)),
      blob: (digest, o) => layoutBlob(tree, label, digest, o?.offset),
      aliases: digestAliases(recorded.name),
    }
    return { source, recorded } satisfies LocalPull
  })

const dockerArchiveSource = (spec: Extract<LocalSpec, { kind: "docker-archive" }>, label: string, opts: LocalOptions) =>
  Effect.gen(function*() {
    yield* checkPath(label, spec.path, "file")
    const tree = yield* openArchive(label, spec.path)
    const entries = yield* readArchiveManifest(tree, label)
    const pick = pickArchiveImage(entries, { reference: spec.reference, index: spec.index })
    switch (pick._tag) {
      case "Empty":
        return yield* sourceError("NotALayout", label, "manifest.json lists no image")
      case "TagNotFound":
        return yield* sourceError(
          "TagNotFound",
          label,
          `no image ${spec.index !== undefined ? `@${spec.index}` : `tagged ${JSON.stringify(spec.reference)}`} in the archive; it has ${pick.tags.length ? pick.tags.join(", ") : "no tags"}`,
        )
      case "Ambiguous":
        return yield* sourceError(
          "Ambiguous",
          label,
          `the archive holds several images; name one with docker-archive:${spec.path}:REPO:TAG or :@N. It has: ${pick.choices.join("; ")}`,
        )
    }
    const entry = pick.entry
    const recorded = archiveName({ name: opts.name, reference: spec.reference, repoTags: entry.RepoTags ?? [] })
    if (recorded === undefined) return yield* needsName(label, "the image has no tag in the archive")
    const resolve = once(() => resolveArchive(tree, label, entry))
    const forBlobs = () => resolve(opts.platform)
    const source: ImageSource = {
      name: recorded.name,
      display: label,
      resolve,
      blob: (digest: Digest, o) =>
        Effect.gen(function*() {
          const image: ArchiveImage = yield* forBlobs()
          const file = image.files.get(digest)
          if (file === undefined) return yield* sourceError("BlobMissing", label, `layer ${digest} is not in the archive`)
          return { size: tree.size(file), body: tree.stream(file, o?.offset ?? 0) }
        }),
      // a synthesized manifest digest is nothing podman could pull by
      aliases: () => [],
    }
    return { source, recorded } satisfies LocalPull
  })

/** The ImageSource for a local spec, with the name its layers will be recorded under. */
export const localSource = (spec: LocalSpec, opts: LocalOptions): Effect.Effect<LocalPull, SourceError | InvalidReference> => {
  const label = formatSourceSpec(spec)
  const run = Effect.gen(function*() {
    switch (spec.kind) {
      case "oci": {
        yield* checkPath(label, spec.path, "dir")
        return yield* layoutSource(directoryTree(spec.path), label, spec.path, spec.reference, opts, false)
      }
      case "oci-archive": {
        yield* checkPath(label, spec.path, "file")
        const tree = yield* openArchive(label, spec.path)
        return yield* layoutSource(tree, label, spec.path, spec.reference, opts, true)
      }
      case "docker-archive":
        return yield* dockerArchiveSource(spec, label, opts)
    }
  })
  // an invalid --name is thrown by the pure naming code
  return Effect.catchAllDefect(run, (d) => (d instanceof InvalidReference ? Effect.fail(d) : Effect.die(d)))
}
