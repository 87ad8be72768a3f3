/**
 * The setup several fault tests share: a real docker-registry on 127.0.0.1, a fault proxy in
 * front of it (test/lib/faultProxy.ts), and one image of two layers, a small one and a big
 * random one, whose big blob the tests break. Call `faultFixture(...)` at a test file's top
 * level: it registers the beforeAll that starts it all and the afterAll that stops it and
 * removes the file's temp dirs and children (`left`).
 */
import { afterAll, beforeAll } from "bun:test"
import { statSync } from "node:fs"
import { join } from "node:path"
import { alsCommand } from "./als.ts"
import { type FaultProxy, startFaultProxy } from "./faultProxy.ts"
import { type RegistryHandle, startRegistry } from "./registry.ts"
import {
  gzipLayer,
  Leftovers,
  MIN,
  pushTestImage,
  randomLayer,
  refOf,
  stagingDir,
  stagingEntries,
  type TestImage,
} from "../integration/crash/support.ts"

export interface FaultFixture {
  readonly registry: RegistryHandle
  readonly proxy: FaultProxy
  readonly img: TestImage
  /** temp dirs and child processes of the file, released in afterAll */
  readonly left: Leftovers
  /** the small layer's and the big layer's digests */
  readonly small: () => string
  readonly big: () => string
  /** the image through the proxy: `127.0.0.1:PORT/repo:tag` */
  readonly ref: () => string
}

/** `repo:1` with a small layer and a random one of `bigBytes` (random, so gzip cannot shrink it). */
export const faultFixture = (repo: string, bigBytes: number): FaultFixture => {
  const left = new Leftovers()
  let registry: RegistryHandle | undefined
  let proxy: FaultProxy | undefined
  let img: TestImage | undefined
  const ready = <A>(a: A | undefined, what: string): A => {
    if (a === undefined) throw new Error(`faultFixture: ${what} used before beforeAll ran`)
    return a
  }
  beforeAll(async () => {
    registry = await startRegistry()
    proxy = await startFaultProxy(registry.url)
    img = await pushTestImage(registry.url, repo, "1", [
      gzipLayer([{ name: "etc/small", content: "a small layer\n" }]),
      randomLayer("big.bin", bigBytes),
    ])
    // the binary built (when src/ is newer) before any test times a pull
    await alsCommand()
  }, 5 * MIN)
  afterAll(async () => {
    await left.cleanup()
    await proxy?.stop()
    await registry?.stop()
  }, MIN)
  return {
    get registry() {
      return ready(registry, "the registry")
    },
    get proxy() {
      return ready(proxy, "the fault proxy")
    },
    get img() {
      return ready(img, "the image")
    },
    left,
    small: () => ready(img, "the image").layers[0]!.digest,
    big: () => ready(img, "the image").layers[1]!.digest,
    ref: () => refOf(ready(proxy, "the fault proxy").host, ready(img, "the image")),
  }
}

/** Bytes of the biggest blob a pull into `root` has written into its staging so far. */
export const stagedBlobBytes = (root: string): number =>
  Math.max(0, ...stagingEntries(root).map((e) => {
    try {
      return statSync(join(stagingDir(root), e, "blob")).size
    } catch {
      return 0
    }
  }))
