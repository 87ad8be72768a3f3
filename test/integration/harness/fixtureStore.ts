// A minimal, static Additional Layer Store made from layers podman itself extracted: it proves
// the harness's `als` option, and its "Skipping blob" / "looked up by TOC" parsing, against the
// real clients without depending on the project's store. Layout per ALS-PROTOCOL.md section 2.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { PushedImage } from "../../lib/images.ts"
import { runOk } from "../../lib/sh.ts"

interface StorageLayer {
  id: string
  "compressed-diff-digest"?: string
  "diff-digest"?: string
  "diff-size"?: number
}

const COMPRESSION: Record<string, number> = { "+gzip": 2, "+zstd": 4 }
const TOC_ANNOTATION = "io.github.containers.zstd-chunked.manifest-checksum"

/**
 * Write `<storeRoot>/<base64(ref)>/<key>/{diff,info,blob}` for every layer of `pushed`, copying
 * each diff from a graphroot where podman already pulled the image. `key` "digest" uses the
 * compressed digest (podman 4.3.1), "toc" the zstd:chunked TOC digest (podman 5.4.2).
 */
export const writeFixtureStore = async (opts: {
  storeRoot: string
  /** Host path of the graphroot holding the pulled image. */
  graphRoot: string
  registryUrl: string
  repo: string
  pushed: PushedImage
  key: "digest" | "toc"
}): Promise<string[]> => {
  const layers = JSON.parse(readFileSync(join(opts.graphRoot, "overlay-layers", "layers.json"), "utf8")) as StorageLayer[]
  const refDir = join(opts.storeRoot, Buffer.from(opts.pushed.ref).toString("base64"))
  const keys: string[] = []
  for (const l of opts.pushed.layers) {
    const own = layers.find((x) => x["compressed-diff-digest"] === l.digest || x["diff-digest"] === l.diffId)
    if (!own) throw new Error(`layer ${l.digest} not in ${opts.graphRoot}`)
    const toc = l.annotations[TOC_ANNOTATION]
    const key = opts.key === "toc" ? toc : l.digest
    if (!key) throw new Error(`layer ${l.digest} has no TOC digest annotation`)
    const dir = join(refDir, key)
    mkdirSync(dir, { recursive: true })
    // cp -a keeps owners, modes, xattrs (trusted.overlay.opaque), whiteout devices, hardlinks.
    await runOk(["cp", "-a", join(opts.graphRoot, "overlay", own.id, "diff"), join(dir, "diff")])
    const res = await fetch(`${opts.registryUrl}/v2/${opts.repo}/blobs/${l.digest}`)
    if (!res.ok) throw new Error(`blob ${l.digest}: HTTP ${res.status}`)
    writeFileSync(join(dir, "blob"), new Uint8Array(await res.arrayBuffer()))
    const compression = Object.entries(COMPRESSION).find(([s]) => l.mediaType.endsWith(s))?.[1] ?? 0
    const info = {
      id: "",
      "compressed-diff-digest": l.digest,
      "compressed-size": l.size,
      "diff-digest": l.diffId,
      "diff-size": own["diff-size"] ?? -1,
      compression,
      ...(toc ? { "toc-digest": toc } : {}),
      flags: { "expected-layer-diffid": l.diffId },
    }
    writeFileSync(join(dir, "info"), JSON.stringify(info))
    keys.push(key)
  }
  return keys
}
