#!/usr/bin/env bun
/**
 * Re-creates the recordings in events/ (see events/README.md) against a real docker-registry
 * on 127.0.0.1, then replays each one to check it.
 *
 *   npx bun scripts/record-events.ts            # all of them
 *   npx bun scripts/record-events.ts NAME…      # only these (e.g. multiarch-index)
 *
 * Needs docker-registry, skopeo, umoci (scripts/install-deps.sh) and, for the zstd:chunked
 * image, the Debian 13 chroot (scripts/setup-podman5.sh, set up on first use; slow once).
 * Each recording is made into a fresh scratch store, so every layer is pulled.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { buildFeatureImage, buildMultiArchIndex, push, pushImage } from "../test/lib/images.ts"
import { startRegistry } from "../test/lib/registry.ts"

const REPO = resolve(import.meta.dir, "..")
const EVENTS = join(REPO, "events")

interface Spec {
  readonly name: string
  /** pushes the image; returns the reference to pull */
  readonly push: (host: string) => Promise<string>
  readonly extra?: ReadonlyArray<string>
  /** the recorded pull is expected to fail (a recording of a failure) */
  readonly fails?: boolean
}

const specs: ReadonlyArray<Spec> = [
  {
    name: "hello-whiteout",
    push: async (host) => {
      await pushImage(join(REPO, "test/fixtures/hello"), "latest", host, "test/hello", "1")
      return `${host}/test/hello:1`
    },
  },
  {
    name: "feature-zstd-chunked",
    push: async (host) => {
      await push(await buildFeatureImage(), host, "test/feature", "chunked", { compress: "zstd:chunked" })
      return `${host}/test/feature:chunked`
    },
  },
  {
    name: "multiarch-index",
    push: async (host) => {
      await push(await buildMultiArchIndex(), host, "test/multi", "1")
      return `${host}/test/multi:1`
    },
    extra: ["--platform", "linux/arm64"],
  },
  {
    name: "missing-tag",
    push: async (host) => {
      await pushImage(join(REPO, "test/fixtures/hello"), "latest", host, "test/hello", "1")
      return `${host}/test/hello:no-such-tag`
    },
    fails: true,
  },
]

const als = (args: ReadonlyArray<string>) => {
  const r = spawnSync("npx", ["bun", join(REPO, "bin/als.ts"), ...args], { cwd: REPO, encoding: "utf8" })
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` }
}

const wanted = new Set(process.argv.slice(2))
const chosen = specs.filter((s) => wanted.size === 0 || wanted.has(s.name))
if (chosen.length === 0) {
  console.error(`no such recording; known: ${specs.map((s) => s.name).join(", ")}`)
  process.exit(2)
}

const registry = await startRegistry()
let failed = false
try {
  for (const spec of chosen) {
    const ref = await spec.push(registry.host)
    const dir = join(EVENTS, spec.name)
    rmSync(dir, { recursive: true, force: true })
    const root = mkdtempSync(join(tmpdir(), "als-record-"))
    try {
      const r = als(["pull", "--root", root, "--tls-verify=false", "--record", dir, ...(spec.extra ?? []), ref])
      if ((r.code === 0) === Boolean(spec.fails)) {
        console.error(`${spec.name}: als pull exited ${r.code}:\n${r.out}`)
        failed = true
        continue
      }
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
    const replay = als(["replay", dir])
    console.log(replay.out.trimEnd())
    if (replay.code !== 0) failed = true
  }
} finally {
  await registry.stop()
}
process.exit(failed ? 1 : 0)
