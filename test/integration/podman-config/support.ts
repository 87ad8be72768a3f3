// Pieces of the registries.conf / certs.d tests: a small image pushed to real registries, an
// openssl-made CA with server and client certificates, a docker-registry serving TLS with
// them (optionally requiring a client certificate), and a podman pull that passes no
// --tls-verify flag, so that podman's own configuration decides.

import { spawnSync } from "node:child_process"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { alsLog, type AlsLogEvent } from "../../lib/als.ts"
import { type Podman, parsePullLog, type PullResult, RUNC } from "../../lib/podman.ts"
import { run } from "../../lib/sh.ts"
import { buildLayer, freePort, makeTempDir, pushLayout, writeOciImage } from "../../lib/registry.ts"

export const MIN = 60_000

export const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64")

export interface SmallImage {
  readonly layout: string
  readonly layers: ReadonlyArray<string>
}

/** A two-layer image in an OCI layout (tag "1"); `mark` makes its layers unique to a test file. */
export const smallImage = async (mark: string): Promise<SmallImage> => {
  const layout = makeTempDir("als-podcfg-layout-")
  const l1 = await buildLayer({ "etc/os-release": `ID=als-${mark}\n`, "bin/hello": "#!/bin/sh\necho hello\n" })
  const l2 = await buildLayer({ [`srv/${mark}/data.txt`]: `data of ${mark}\n`.repeat(100) })
  writeOciImage(layout, "1", { os: "linux", architecture: "amd64" }, [l1, l2])
  return { layout, layers: [l1.digest, l2.digest] }
}

export const pushTo = (img: SmallImage, dest: string) => pushLayout(img.layout, "1", dest)

/** A TCP port on 127.0.0.1 where nothing listens (a registry that does not exist). */
export const deadPort = async () => freePort()

const openssl = (args: ReadonlyArray<string>) => {
  const r = spawnSync("openssl", args as string[], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`)
}

export interface Pki {
  readonly dir: string
  readonly caCert: string
  readonly serverCert: string
  readonly serverKey: string
  readonly clientCert: string
  readonly clientKey: string
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it. */
export const makePki = (): Pki => {
  const dir = makeTempDir("als-podcfg-pki-")
  const p = (n: string) => join(dir, n)
  openssl([
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-subj", "/CN=als-test-ca",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    "-keyout", p("ca.key"), "-out", p("ca.pem"),
  ])
  const leaf = (name: string, ext: string) => {
    openssl(["req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", `/CN=${name}`, "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`)])
    writeFileSync(p(`${name}.ext`), ext)
    openssl([
      "x509", "-req", "-in", p(`${name}.csr`), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
      "-days", "2", "-sha256", "-extfile", p(`${name}.ext`), "-out", p(`${name}.pem`),
    ])
  }
  leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
  leaf("client", "extendedKeyUsage=clientAuth\n")
  return {
    dir,
    caCert: p("ca.pem"),
    serverCert: p("server.pem"),
    serverKey: p("server.key"),
    clientCert: p("client.pem"),
    clientKey: p("client.key"),
  }
}

export interface TlsRegistry {
  readonly host: string
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * docker-registry over TLS with the PKI's server certificate, serving `storage` (the data dir
 * of a plain registry the image was pushed to); with `requireClientCert`, only clients
 * presenting a certificate signed by the CA get an answer.
 */
export const startTlsRegistry = async (storage: string, pki: Pki, requireClientCert = false): Promise<TlsRegistry> => {
  const dir = makeTempDir("als-podcfg-tlsreg-")
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const config = [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${JSON.stringify(storage)}`,
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "  secret: als-test-secret",
      "  tls:",
      `    certificate: ${JSON.stringify(pki.serverCert)}`,
      `    key: ${JSON.stringify(pki.serverKey)}`,
      ...(requireClientCert ? ["    clientcas:", `      - ${JSON.stringify(pki.caCert)}`] : []),
      "",
    ].join("\n")
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, "config.yml"), config)
    const proc = Bun.spawn(["docker-registry", "serve", join(dir, "config.yml")], { stdout: "ignore", stderr: "pipe" })
    let stderr = ""
    void (async () => {
      for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk)
    })()
    const host = `127.0.0.1:${port}`
    const tls = {
      rejectUnauthorized: false,
      ...(requireClientCert ? { cert: Bun.file(pki.clientCert), key: Bun.file(pki.clientKey) } : {}),
    }
    const deadline = Date.now() + 15_000
    let up = false
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        const res = await fetch(`https://${host}/v2/`, { tls } as RequestInit)
        await res.arrayBuffer()
        up = true
        break
      } catch {
        await sleep(50)
      }
    }
    const stop = async () => {
      proc.kill("SIGTERM")
      const exited = await Promise.race([proc.exited.then(() => true), sleep(3000).then(() => false)])
      if (!exited) proc.kill("SIGKILL")
      await proc.exited
    }
    if (up) {
      return {
        host,
        async stop() {
          await stop()
          rmSync(dir, { recursive: true, force: true })
        },
      }
    }
    await stop()
    if (attempt < 2 && /address already in use/i.test(stderr)) continue
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`docker-registry (TLS) did not start: ${stderr.trim().slice(0, 2000)}`)
  }
}

/**
 * `podman pull REF` through the store with no --tls-verify flag: podman's registries.conf
 * (the session's CONTAINERS_REGISTRIES_CONF) and certs.d decide, as they do for users.
 */
export const podmanPull = async (
  p: Podman,
  ref: string,
  opts: { root?: string; args?: ReadonlyArray<string>; env?: Record<string, string> } = {},
): Promise<PullResult & { exitCode: number }> => {
  const base = baseArgs(p)
  const cmd = [
    ...base,
    ...(opts.root ? ["--storage-opt", `overlay.additionallayerstore=${opts.root}:ref`] : []),
    "--log-level=debug",
    "pull",
    ...(opts.args ?? []),
    ref,
  ]
  const r = await run(cmd, { env: { ...p.env, ...opts.env }, timeoutMs: 5 * MIN })
  const parsed = parsePullLog(`${r.stdout}\n${r.stderr}`)
  return {
    stdout: r.stdout,
    stderr: r.stderr,
    imageId: r.stdout.trim().split("\n").pop() ?? "",
    ...parsed,
    durationMs: r.durationMs,
    exitCode: r.exitCode,
  }
}

/** The isolation flags of a podman session (the same ones test/lib/podman.ts passes). */
const baseArgs = (p: Podman): string[] => ["podman", "--root", p.graphRoot, "--runroot", p.runRoot, "--tmpdir", join(p.dir, "libpod-tmp"), "--storage-driver", "overlay", "--runtime", RUNC]

/** The refs that completed pulls were recorded under. */
export const completedRefs = async (root: string): Promise<string[]> =>
  (await alsLog(root)).filter((e: AlsLogEvent) => e.type === "PullCompleted").map((e) => String((e as { ref?: unknown }).ref))
