// Issue 15 item 1: als reads registries.conf as podman 4.3.1 does. Each test writes one
// configuration, gives it to both als and a real podman 4.3.1 through
// CONTAINERS_REGISTRIES_CONF, and checks that they fetch from the same place, record the same
// name, and (where the pull succeeds) that podman then takes every layer from the store.
// Neither is given --tls-verify: the configuration decides whether plain HTTP is allowed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { als, type AlsResult, describeResult } from "../../lib/als.ts"
import { createPodman, type Podman } from "../../lib/podman.ts"
import { startFaultProxy } from "../../lib/faultProxy.ts"
import { makeTempDir, pushLayout, type RegistryHandle, startRegistry } from "../../lib/registry.ts"
import { b64, completedRefs, deadPort, MIN, podmanPull, pushTo, type SmallImage, smallImage } from "./support.ts"

let origin: RegistryHandle
let mirror: RegistryHandle
let img: SmallImage
let onlyMirror: SmallImage
let dead: string
const dirs: string[] = []
const sessions: Podman[] = []

beforeAll(async () => {
  ;[origin, mirror] = await Promise.all([startRegistry(), startRegistry()])
  img = await smallImage("registries")
  onlyMirror = await smallImage("registries-mirror")
  await pushTo(img, `${origin.host}/team/app:1`)
  await pushTo(onlyMirror, `${mirror.host}/team/mirrored:1`)
  dead = `127.0.0.1:${await deadPort()}`
}, 5 * MIN)

afterAll(async () => {
  for (const s of sessions) await s.cleanup().catch(() => undefined)
  await Promise.all([origin?.stop(), mirror?.stop()])
  for (const d of [...dirs, img?.layout, onlyMirror?.layout]) if (d) rmSync(d, { recursive: true, force: true })
}, 5 * MIN)

const temp = (name: string) => {
  const d = makeTempDir(`als-podcfg-${name}-`)
  dirs.push(d)
  return d
}

/** A store, a registries.conf with `text`, and a podman session reading the same file. */
const setup = async (name: string, text: string) => {
  const dir = temp(name)
  const root = join(dir, "store")
  const conf = join(dir, "registries.conf")
  writeFileSync(conf, text)
  const podman = await createPodman()
  sessions.push(podman)
  writeFileSync(podman.env.CONTAINERS_REGISTRIES_CONF, text)
  const pull = (ref: string, extra: ReadonlyArray<string> = []): Promise<AlsResult> =>
    als(["pull", "--root", root, ...extra, ref], { env: { CONTAINERS_REGISTRIES_CONF: conf } })
  return { root, conf, podman, pull }
}

const expectOk = (r: AlsResult) => expect({ exit: r.exitCode, out: describeResult(r) }).toMatchObject({ exit: 0 })
const view = (root: string, name: string, layer: string) => join(root, b64(name), layer)

describe("registries.conf, als and podman 4.3.1 alike", () => {
  test("a short-name alias: both pull the aliased name; podman skips every layer through the store", async () => {
    const s = await setup("alias", `
[[registry]]
location = "${origin.host}"
insecure = true
[aliases]
"myapp" = "${origin.host}/team/app"
`)
    const r = await s.pull("myapp:1")
    expectOk(r)
    const name = `${origin.host}/team/app:1`
    expect(await completedRefs(s.root)).toEqual([name])
    for (const l of img.layers) expect(existsSync(view(s.root, name, l))).toBe(true)
    const p = await podmanPull(s.podman, "myapp:1", { root: s.root })
    expect({ exit: p.exitCode, skipped: [...p.skipped].sort(), copied: p.copied }).toEqual({ exit: 0, skipped: [...img.layers].sort(), copied: [] })
  }, 5 * MIN)

  test("unqualified search: candidates in order (the first lacks the image); enforcing refuses without a TTY, as podman does", async () => {
    const text = (mode: string) => `
unqualified-search-registries = ["${mirror.host}", "${origin.host}"]
short-name-mode = "${mode}"
[[registry]]
location = "${mirror.host}"
insecure = true
[[registry]]
location = "${origin.host}"
insecure = true
`
    const s = await setup("search", text("permissive"))
    expectOk(await s.pull("team/app:1"))
    const name = `${origin.host}/team/app:1`
    expect(await completedRefs(s.root)).toEqual([name])
    const p = await podmanPull(s.podman, "team/app:1", { root: s.root })
    expect({ exit: p.exitCode, skipped: [...p.skipped].sort(), copied: p.copied }).toEqual({ exit: 0, skipped: [...img.layers].sort(), copied: [] })

    const e = await setup("enforcing", text("enforcing"))
    const r = await e.pull("team/app:1")
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain("short-name resolution enforced but cannot prompt without a TTY")
    expect(r.stderr).toContain(`${mirror.host}/team/app:1, ${origin.host}/team/app:1`)
    expect(existsSync(join(e.root, b64(name)))).toBe(false)
    const pe = await podmanPull(e.podman, "team/app:1")
    expect(pe.exitCode).not.toBe(0)
    expect(pe.stderr).toContain("short-name resolution enforced but cannot prompt without a TTY")
  }, 5 * MIN)

  test("no search registries and no alias: refused, as podman refuses", async () => {
    const s = await setup("nosearch", `unqualified-search-registries = []\n`)
    const r = await s.pull("team/app:1")
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain("did not resolve to an alias and no unqualified-search registries are defined")
    const p = await podmanPull(s.podman, "team/app:1")
    expect(p.exitCode).not.toBe(0)
    expect(p.stderr).toContain("did not resolve to an alias and no unqualified-search registries are defined")
  }, 5 * MIN)

  test("a mirror of a registry that does not exist: pulled from the mirror, recorded under the original name; podman skips every layer", async () => {
    const s = await setup("mirror", `
[[registry]]
location = "${dead}"
insecure = true
[[registry.mirror]]
location = "${mirror.host}"
insecure = true
`)
    const name = `${dead}/team/mirrored:1`
    expectOk(await s.pull(name))
    expect(await completedRefs(s.root)).toEqual([name])
    for (const l of onlyMirror.layers) expect(existsSync(view(s.root, name, l))).toBe(true)
    // nothing is recorded under the mirror's name: podman never asks for it
    expect(existsSync(join(s.root, b64(`${mirror.host}/team/mirrored:1`)))).toBe(false)
    const p = await podmanPull(s.podman, name, { root: s.root })
    expect({ exit: p.exitCode, skipped: [...p.skipped].sort(), copied: p.copied }).toEqual({
      exit: 0,
      skipped: [...onlyMirror.layers].sort(),
      copied: [],
    })
  }, 5 * MIN)

  test("a mirror without the image: the registry itself serves it; every endpoint failing names each one", async () => {
    const s = await setup("mirror-miss", `
[[registry]]
location = "${origin.host}"
insecure = true
[[registry.mirror]]
location = "${mirror.host}"
insecure = true
`)
    const name = `${origin.host}/team/app:1`
    expectOk(await s.pull(name))
    expect(await completedRefs(s.root)).toEqual([name])
    const r = await s.pull(`${origin.host}/team/absent:1`)
    expect(r.exitCode).toBe(3)
    expect(r.stderr).toContain("Mirrors also failed")
    expect(r.stderr).toContain(`${mirror.host}/team/absent:1`)
  }, 5 * MIN)

  test("mirror-by-digest-only: a tag skips the mirror (the dead registry fails), a digest uses it", async () => {
    const s = await setup("digest-only", `
[[registry]]
location = "${dead}"
insecure = true
mirror-by-digest-only = true
[[registry.mirror]]
location = "${mirror.host}"
insecure = true
`)
    const byTag = await s.pull(`${dead}/team/mirrored:1`)
    expect(byTag.exitCode).toBe(3)
    expect(byTag.stderr).toContain(dead)
    const digest = (await (await fetch(`${mirror.url}/v2/team/mirrored/manifests/1`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    })).headers.get("docker-content-digest"))!
    const name = `${dead}/team/mirrored@${digest}`
    expectOk(await s.pull(name))
    expect(await completedRefs(s.root)).toEqual([name])
    const p = await podmanPull(s.podman, name, { root: s.root })
    expect({ exit: p.exitCode, skipped: [...p.skipped].sort(), copied: p.copied }).toEqual({
      exit: 0,
      skipped: [...onlyMirror.layers].sort(),
      copied: [],
    })
  }, 5 * MIN)

  test("insecure = true allows plain HTTP without --tls-verify=false; without it both refuse", async () => {
    const s = await setup("insecure", `
[[registry]]
location = "${origin.host}"
insecure = true
`)
    const name = `${origin.host}/team/app:1`
    expectOk(await s.pull(name))
    const p = await podmanPull(s.podman, name, { root: s.root })
    expect({ exit: p.exitCode, copied: p.copied }).toEqual({ exit: 0, copied: [] })

    const strict = await setup("secure", `unqualified-search-registries = []\n`)
    const r = await strict.pull(name)
    expect(r.exitCode).toBe(3)
    expect(r.stderr).toContain(origin.host)
    const ps = await podmanPull(strict.podman, name)
    expect(ps.exitCode).not.toBe(0)
  }, 5 * MIN)

  test("blocked = true: both refuse, naming the configuration; nothing is stored", async () => {
    const s = await setup("blocked", `
[[registry]]
location = "${origin.host}"
insecure = true
blocked = true
`)
    const name = `${origin.host}/team/app:1`
    const r = await s.pull(name)
    expect(r.exitCode).toBe(3)
    expect(r.stderr).toContain(`registry ${origin.host} is blocked in ${s.conf}`)
    for (const l of img.layers) expect(existsSync(join(s.root, l))).toBe(false)
    const p = await podmanPull(s.podman, name)
    expect(p.exitCode).not.toBe(0)
    expect(p.stderr).toContain(`registry ${origin.host} is blocked`)
  }, 5 * MIN)

  test("prefix → location rewriting: a name under one prefix is fetched from another place, recorded under the name", async () => {
    const s = await setup("rewrite", `
[[registry]]
prefix = "${dead}/legacy"
location = "${origin.host}/team"
insecure = true
`)
    const name = `${dead}/legacy/app:1`
    expectOk(await s.pull(name))
    expect(await completedRefs(s.root)).toEqual([name])
    const p = await podmanPull(s.podman, name, { root: s.root })
    expect({ exit: p.exitCode, skipped: [...p.skipped].sort(), copied: p.copied }).toEqual({ exit: 0, skipped: [...img.layers].sort(), copied: [] })
  }, 5 * MIN)

  test("a broken registries.conf is a usage error naming the file", async () => {
    const s = await setup("broken", `[[registry]]\nlocation = "https://x.example"\n`)
    const r = await s.pull(`${origin.host}/team/app:1`)
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain(s.conf)
    expect(r.stderr).toContain("URI schemes are not supported")
  }, 5 * MIN)
})

describe("credentials and mirrors", () => {
  test("--creds goes to the registry the name belongs to, never to a mirror on another host (podman's rule)", async () => {
    const originAuth = await startRegistry({ htpasswd: { user: "owner", pass: "s3cret" } })
    const mirrorAuth = await startRegistry({ htpasswd: { user: "other", pass: "x" } })
    const proxy = await startFaultProxy(mirrorAuth.url)
    try {
      await pushLayout(img.layout, "1", `${originAuth.host}/team/app:1`, { creds: "owner:s3cret" })
      const dir = temp("creds")
      const conf = join(dir, "registries.conf")
      writeFileSync(conf, `
[[registry]]
location = "${originAuth.host}"
insecure = true
[[registry.mirror]]
location = "${proxy.host}"
insecure = true
`)
      const root = join(dir, "store")
      const name = `${originAuth.host}/team/app:1`
      const r = await als(["pull", "--root", root, "--creds", "owner:s3cret", name], {
        env: { CONTAINERS_REGISTRIES_CONF: conf, REGISTRY_AUTH_FILE: join(dir, "none.json"), HOME: dir },
      })
      expectOk(r)
      expect(await completedRefs(root)).toEqual([name])
      // the mirror was asked (and refused: it has other users), without the user's password
      expect(proxy.requests.length).toBeGreaterThan(0)
      const secret = Buffer.from("owner:s3cret").toString("base64")
      expect(proxy.requests.filter((q) => (q.headers.authorization ?? "").includes(secret))).toEqual([])
    } finally {
      await proxy.stop()
      await Promise.all([originAuth.stop(), mirrorAuth.stop()])
    }
  }, 5 * MIN)
})
