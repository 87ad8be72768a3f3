// Issue 15 item 2: TLS like podman 4.3.1. A registry serves HTTPS with a certificate signed by
// a CA made here with openssl; als and a real podman 4.3.1 trust it only through --cert-dir or
// a certs.d directory named HOST:PORT (`*.crt` CAs, `NAME.cert` + `NAME.key` client pairs).
// Neither is given --tls-verify.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { als, type AlsResult, describeResult, REPO_ROOT } from "../../lib/als.ts"
import { run } from "../../lib/sh.ts"
import { createPodman, type Podman } from "../../lib/podman.ts"
import { makeTempDir, type RegistryHandle, startRegistry } from "../../lib/registry.ts"
import { b64, completedRefs, MIN, makePki, type Pki, podmanPull, pushTo, type SmallImage, smallImage, startTlsRegistry, type TlsRegistry } from "./support.ts"

let plain: RegistryHandle
let tls: TlsRegistry
let mtls: TlsRegistry
let pki: Pki
let img: SmallImage
const dirs: string[] = []
const sessions: Podman[] = []

beforeAll(async () => {
  plain = await startRegistry()
  img = await smallImage("certs")
  await pushTo(img, `${plain.host}/team/app:1`)
  pki = makePki()
  // the same storage, served over TLS: without and with a required client certificate
  tls = await startTlsRegistry(join(plain.dir, "data"), pki)
  mtls = await startTlsRegistry(join(plain.dir, "data"), pki, true)
}, 5 * MIN)

afterAll(async () => {
  for (const s of sessions) await s.cleanup().catch(() => undefined)
  await Promise.all([tls?.stop(), mtls?.stop()])
  await plain?.stop()
  for (const d of [...dirs, pki?.dir, img?.layout]) if (d) rmSync(d, { recursive: true, force: true })
}, 5 * MIN)

const temp = (name: string) => {
  const d = makeTempDir(`als-podcfg-${name}-`)
  dirs.push(d)
  return d
}

/** A certs directory holding the given files (`ca.crt`, `client.cert`, `client.key`). */
const certsDir = (dir: string, files: { ca?: boolean; cert?: boolean; key?: boolean }) => {
  mkdirSync(dir, { recursive: true })
  if (files.ca) copyFileSync(pki.caCert, join(dir, "ca.crt"))
  if (files.cert) copyFileSync(pki.clientCert, join(dir, "client.cert"))
  if (files.key) copyFileSync(pki.clientKey, join(dir, "client.key"))
  return dir
}

const newPodman = async () => {
  const p = await createPodman()
  sessions.push(p)
  return p
}

/** als pull with HOME pointing at `home` (where ~/.config/containers/certs.d is looked for). */
const pull = (root: string, ref: string, home: string, extra: ReadonlyArray<string> = []): Promise<AlsResult> =>
  als(["pull", "--root", root, ...extra, ref], { env: { HOME: home } })

const expectOk = (r: AlsResult) => expect({ exit: r.exitCode, out: describeResult(r) }).toMatchObject({ exit: 0 })

describe("certs.d and --cert-dir, als and podman 4.3.1 alike", () => {
  test("--cert-dir with an openssl-made CA: both pull over TLS (podman skips every layer); without it both refuse the certificate", async () => {
    const dir = temp("certdir")
    const home = temp("home-empty")
    const root = join(dir, "store")
    const certs = certsDir(join(dir, "certs"), { ca: true })
    const ref = `${tls.host}/team/app:1`

    const refused = await pull(root, ref, home)
    expect(refused.exitCode).toBe(3)
    expect(refused.stderr).toContain("not trusted")

    expectOk(await pull(root, ref, home, ["--cert-dir", certs]))
    expect(await completedRefs(root)).toEqual([ref])
    for (const l of img.layers) expect(existsSync(join(root, b64(ref), l))).toBe(true)

    const p = await newPodman()
    const denied = await podmanPull(p, ref, { env: { HOME: home } })
    expect(denied.exitCode).not.toBe(0)
    expect(denied.stderr).toContain("certificate signed by unknown authority")
    const ok = await podmanPull(p, ref, { root, args: ["--cert-dir", certs], env: { HOME: home } })
    expect({ exit: ok.exitCode, skipped: [...ok.skipped].sort(), copied: ok.copied }).toEqual({ exit: 0, skipped: [...img.layers].sort(), copied: [] })
  }, 5 * MIN)

  test("~/.config/containers/certs.d/HOST:PORT with a CA and a client certificate: both pull from a registry that requires it", async () => {
    const dir = temp("certsd")
    const home = join(dir, "home")
    const root = join(dir, "store")
    const ref = `${mtls.host}/team/app:1`
    const hostDir = join(home, ".config/containers/certs.d", mtls.host)

    // the CA alone is not enough: the registry asks for a client certificate
    certsDir(hostDir, { ca: true })
    const noClient = await pull(root, ref, home)
    expect(noClient.exitCode).toBe(3)

    certsDir(hostDir, { cert: true, key: true })
    expectOk(await pull(root, ref, home))
    expect(await completedRefs(root)).toEqual([ref])

    const p = await newPodman()
    const r = await podmanPull(p, ref, { root, env: { HOME: home } })
    expect({ exit: r.exitCode, skipped: [...r.skipped].sort(), copied: r.copied }).toEqual({ exit: 0, skipped: [...img.layers].sort(), copied: [] })
  }, 5 * MIN)

  test("a client certificate without its key is refused, naming both files, as podman refuses it", async () => {
    const dir = temp("halfpair")
    const home = temp("home-empty2")
    const certs = certsDir(join(dir, "certs"), { ca: true, cert: true })
    const ref = `${mtls.host}/team/app:1`
    const r = await pull(join(dir, "store"), ref, home, ["--cert-dir", certs])
    expect(r.exitCode).toBe(3)
    expect(r.stderr).toContain("missing key client.key for client certificate client.cert")
    const p = await newPodman()
    const pr = await podmanPull(p, ref, { args: ["--cert-dir", certs], env: { HOME: home } })
    expect(pr.exitCode).not.toBe(0)
    expect(pr.stderr).toContain("missing key client.key for client certificate client.cert")
  }, 5 * MIN)

  test("on Deno too: a CA and a client pair from --cert-dir reach the registry that requires them; without them the certificate is refused", async () => {
    const dir = temp("deno")
    const home = temp("home-empty3")
    const certs = certsDir(join(dir, "certs"), { ca: true, cert: true, key: true })
    const ref = `${mtls.host}/team/app:1`
    const root = join(dir, "store")
    const deno = (extra: ReadonlyArray<string>) =>
      run(["npx", "deno", "run", "--allow-all", join(REPO_ROOT, "bin/als.ts"), "pull", "--root", root, ...extra, ref], {
        cwd: REPO_ROOT,
        env: { HOME: home, NO_COLOR: "1" },
        timeoutMs: 5 * MIN,
      })
    const refused = await deno([])
    expect(refused.exitCode).toBe(3)
    expect(refused.stderr).toContain("not trusted")
    const ok = await deno(["--cert-dir", certs])
    expect({ exit: ok.exitCode, err: ok.stderr.slice(-2000) }).toMatchObject({ exit: 0 })
    expect(await completedRefs(root)).toEqual([ref])
  }, 5 * MIN)
})
