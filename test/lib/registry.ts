/**
 * Real registries for tests: Debian's docker-registry (distribution 2.8) on a free
 * 127.0.0.1 port with temp storage, optionally behind htpasswd Basic auth, token auth (with
 * the token server below) or self-signed TLS; plus builders for small OCI images and a
 * `skopeo copy` push. Bun only (tests run under `bun test`).
 */
import { spawnSync } from "node:child_process"
import { createHash, randomBytes, sign } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gzipSync } from "node:zlib"
import tar from "tar-stream"

export interface RegistryHandle {
  /** `127.0.0.1:PORT`, as it goes in image references */
  readonly host: string
  /** `http://127.0.0.1:PORT` (https with `tls`) */
  readonly url: string
  readonly dir: string
  /** PEM of the self-signed certificate when started with `tls` */
  readonly certFile?: string
  stop(): Promise<void>
}

/** What docker-registry needs to trust a token server (a TokenServer has all of it). */
export interface TokenAuth {
  readonly realm: string
  readonly service: string
  readonly issuer: string
  readonly rootCertBundle: string
}

export interface StartRegistryOptions {
  readonly htpasswd?: { readonly user: string; readonly pass: string }
  readonly token?: TokenAuth
  /** serve HTTPS with a fresh self-signed certificate for 127.0.0.1 */
  readonly tls?: boolean
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address()
      const port = typeof addr === "object" && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })

const run = (cmd: string, args: ReadonlyArray<string>, input?: string): string => {
  const r = spawnSync(cmd, args as string[], { input, encoding: "utf8" })
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`)
  return r.stdout
}

/** A self-signed certificate (RSA) for `cn`, valid for 127.0.0.1. */
export const selfSignedCert = (dir: string, name: string): { cert: string; key: string } => {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  run("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
    "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", key, "-out", cert,
  ])
  return { cert, key }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// Registries still running when the test process exits (a crashed suite) die with it.
const running = new Set<ReturnType<typeof Bun.spawn>>()
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL")
})

const yamlString = (s: string) => JSON.stringify(s)

export const startRegistry = async (options: StartRegistryOptions = {}): Promise<RegistryHandle> => {
  const dir = mkdtempSync(join(tmpdir(), "als-registry-"))
  try {
    let auth = ""
    if (options.htpasswd) {
      const hash = await Bun.password.hash(options.htpasswd.pass, { algorithm: "bcrypt", cost: 4 })
      writeFileSync(join(dir, "htpasswd"), `${options.htpasswd.user}:${hash}\n`)
      auth = `auth:\n  htpasswd:\n    realm: als-test\n    path: ${yamlString(join(dir, "htpasswd"))}\n`
    } else if (options.token) {
      const t = options.token
      auth = [
        "auth:",
        "  token:",
        `    realm: ${yamlString(t.realm)}`,
        `    service: ${yamlString(t.service)}`,
        `    issuer: ${yamlString(t.issuer)}`,
        `    rootcertbundle: ${yamlString(t.rootCertBundle)}`,
        "",
      ].join("\n")
    }
    const tls = options.tls ? selfSignedCert(dir, "registry") : undefined
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
        `    rootdirectory: ${yamlString(join(dir, "data"))}`,
        "  delete:",
        "    enabled: true",
        "http:",
        `  addr: 127.0.0.1:${port}`,
        "  secret: als-test-secret",
        ...(tls ? ["  tls:", `    certificate: ${yamlString(tls.cert)}`, `    key: ${yamlString(tls.key)}`] : []),
        auth,
      ].join("\n")
      const configFile = join(dir, "config.yml")
      writeFileSync(configFile, config)
      const proc = Bun.spawn(["docker-registry", "serve", configFile], { stdout: "ignore", stderr: "pipe" })
      running.add(proc)
      void proc.exited.then(() => running.delete(proc))
      let stderr = ""
      void (async () => {
        for await (const chunk of proc.stderr) stderr += new TextDecoder().decode(chunk)
      })()
      const host = `127.0.0.1:${port}`
      const url = `${tls ? "https" : "http"}://${host}`
      const deadline = Date.now() + 10_000
      let up = false
      while (Date.now() < deadline && proc.exitCode === null) {
        try {
          const res = await fetch(`${url}/v2/`, { tls: { rejectUnauthorized: false } } as RequestInit)
          await res.arrayBuffer()
          up = true
          break
        } catch {
          await sleep(50)
        }
      }
      if (up) {
        return {
          host,
          url,
          dir,
          certFile: tls?.cert,
          async stop() {
            proc.kill("SIGTERM")
            const exited = await Promise.race([proc.exited.then(() => true), sleep(3000).then(() => false)])
            if (!exited) {
              proc.kill("SIGKILL")
              await proc.exited
            }
            rmSync(dir, { recursive: true, force: true })
          },
        }
      }
      proc.kill("SIGKILL")
      await proc.exited
      if (attempt < 2 && /address already in use/i.test(stderr)) continue
      throw new Error(`docker-registry did not start: ${stderr.trim().slice(0, 2000)}`)
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

// ---- token server ----------------------------------------------------------------------

export interface TokenServerRequest {
  readonly method: string
  readonly scopes: ReadonlyArray<string>
  readonly service: string | null
  /** the user whose Basic credentials (or refresh token) were accepted; null when anonymous */
  readonly user: string | null
  readonly grantType: string | null
}

export interface TokenServer extends TokenAuth {
  readonly url: string
  /** every request the server got, in order */
  readonly requests: TokenServerRequest[]
  /**
   * Lifetimes of the tokens issued from now on: `expiresIn` is what the answer says,
   * `jwtLifetime` what the signed token allows (set it shorter to make a client's cached
   * token go stale before the client expects it).
   */
  readonly lifetimes: { expiresIn: number; jwtLifetime: number }
  /** how many of the next tokens to issue already expired (the registry will refuse them) */
  badTokens: number
  stop(): Promise<void>
}

export interface TokenServerOptions {
  readonly users?: Readonly<Record<string, string>>
  /** refresh tokens (OAuth2 identity tokens) and the user each stands for */
  readonly refreshTokens?: Readonly<Record<string, string>>
  /** grant `pull` to anonymous requests */
  readonly anonymousPull?: boolean
  readonly expiresIn?: number
  /** answer with `access_token` only (as OAuth2 servers do) instead of `token` */
  readonly accessTokenField?: boolean
  readonly service?: string
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url")

/** A token server for distribution's `auth: token:` that signs RS256 JWTs with x5c. */
export const startTokenServer = async (options: TokenServerOptions = {}): Promise<TokenServer> => {
  const dir = mkdtempSync(join(tmpdir(), "als-token-"))
  const { cert, key } = selfSignedCert(dir, "als-test-token")
  const keyPem = readFileSync(key, "utf8")
  const certDer = readFileSync(cert, "utf8").replace(/-----[^-]+-----/g, "").replace(/\s+/g, "")
  const service = options.service ?? "als-test-registry"
  const issuer = "als-test-issuer"
  const lifetimes = { expiresIn: options.expiresIn ?? 300, jwtLifetime: options.expiresIn ?? 300 }
  const requests: TokenServerRequest[] = []
  const state = { badTokens: 0 }

  const issue = (user: string | null, scopes: ReadonlyArray<string>) => {
    const now = Math.floor(Date.now() / 1000)
    const bad = state.badTokens > 0
    if (bad) state.badTokens--
    const access = scopes.flatMap((s) => {
      const first = s.indexOf(":")
      const last = s.lastIndexOf(":")
      if (first === -1 || last === first) return []
      const type = s.slice(0, first)
      const name = s.slice(first + 1, last)
      const asked = s.slice(last + 1).split(",")
      const actions = user ? asked : options.anonymousPull ? asked.filter((a) => a === "pull") : []
      return actions.length ? [{ type, name, actions }] : []
    })
    const header = b64url(JSON.stringify({ typ: "JWT", alg: "RS256", x5c: [certDer] }))
    const claims = b64url(
      JSON.stringify({ iss: issuer, sub: user ?? "", aud: service, exp: bad ? now - 3600 : now + lifetimes.jwtLifetime, nbf: bad ? now - 7200 : now - 10, iat: bad ? now - 7200 : now, jti: randomBytes(8).toString("hex"), access }),
    )
    const signature = sign("sha256", Buffer.from(`${header}.${claims}`), keyPem).toString("base64url")
    const token = `${header}.${claims}.${signature}`
    const body = options.accessTokenField
      ? { access_token: token, expires_in: lifetimes.expiresIn }
      : { token, expires_in: lifetimes.expiresIn, issued_at: new Date().toISOString() }
    return Response.json(body)
  }

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url)
      if (u.pathname !== "/token") return new Response("not found", { status: 404 })
      if (req.method === "POST") {
        const form = new URLSearchParams(await req.text())
        const user = options.refreshTokens?.[form.get("refresh_token") ?? ""] ?? null
        const scopes = (form.get("scope") ?? "").split(" ").filter(Boolean)
        requests.push({ method: "POST", scopes, service: form.get("service"), user, grantType: form.get("grant_type") })
        if (form.get("grant_type") !== "refresh_token" || !user) return Response.json({ error: "invalid_grant" }, { status: 401 })
        return issue(user, scopes)
      }
      const scopes = u.searchParams.getAll("scope").flatMap((s) => s.split(" ")).filter(Boolean)
      let user: string | null = null
      const authz = req.headers.get("authorization")
      if (authz?.startsWith("Basic ")) {
        const [name, ...rest] = Buffer.from(authz.slice(6), "base64").toString("utf8").split(":")
        if (options.users?.[name] === undefined || options.users[name] !== rest.join(":")) {
          requests.push({ method: "GET", scopes, service: u.searchParams.get("service"), user: null, grantType: null })
          return Response.json({ errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] }, { status: 401 })
        }
        user = name
      }
      requests.push({ method: "GET", scopes, service: u.searchParams.get("service"), user, grantType: null })
      return issue(user, scopes)
    },
  })
  const url = `http://127.0.0.1:${server.port}`
  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    rootCertBundle: cert,
    requests,
    lifetimes,
    get badTokens() {
      return state.badTokens
    },
    set badTokens(n: number) {
      state.badTokens = n
    },
    async stop() {
      await server.stop(true)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

// ---- images ---------------------------------------------------------------------------

export interface BuiltLayer {
  readonly tar: Uint8Array
  readonly blob: Uint8Array
  /** sha256 of the uncompressed tar */
  readonly diffId: string
  /** sha256 of the gzipped blob */
  readonly digest: string
  readonly size: number
}

const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`

/** A gzipped layer tar holding `files` (path → content), directories made as needed. */
export const buildLayer = async (files: Readonly<Record<string, string | Uint8Array>>): Promise<BuiltLayer> => {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer)
  })
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", () => resolve())
    pack.on("error", reject)
  })
  const dirs = new Set<string>()
  for (const [path, content] of Object.entries(files)) {
    const parts = path.split("/").slice(0, -1)
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join("/")
      if (!dirs.has(d)) {
        dirs.add(d)
        pack.entry({ name: `${d}/`, type: "directory", mode: 0o755, mtime: new Date(0) })
      }
    }
    const body = typeof content === "string" ? Buffer.from(content) : Buffer.from(content)
    pack.entry({ name: path, type: "file", mode: 0o644, mtime: new Date(0), size: body.length }, body)
  }
  pack.finalize()
  await done
  const tarBytes = new Uint8Array(Buffer.concat(chunks))
  const blob = new Uint8Array(gzipSync(tarBytes))
  return { tar: tarBytes, blob, diffId: sha256(tarBytes), digest: sha256(blob), size: blob.length }
}

export interface ImagePlatform {
  readonly os: string
  readonly architecture: string
  readonly variant?: string
}

export interface BuiltImage {
  readonly platform: ImagePlatform
  readonly layers: ReadonlyArray<BuiltLayer>
  readonly configDigest: string
  readonly manifestDigest: string
  readonly manifestSize: number
}

const writeBlob = (layout: string, bytes: Uint8Array): { digest: string; size: number } => {
  const digest = sha256(bytes)
  const path = join(layout, "blobs", "sha256")
  mkdirSync(path, { recursive: true })
  writeFileSync(join(path, digest.slice(7)), bytes)
  return { digest, size: bytes.length }
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v))

/** Writes config + manifest for `layers` into an OCI layout (not yet referenced by index.json). */
export const writeImage = (
  layout: string,
  platform: ImagePlatform,
  layers: ReadonlyArray<BuiltLayer>,
  layerAnnotations: ReadonlyArray<Readonly<Record<string, string>> | undefined> = [],
): BuiltImage => {
  mkdirSync(layout, { recursive: true })
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }))
  for (const l of layers) writeBlob(layout, l.blob)
  const config = writeBlob(
    layout,
    json({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    }),
  )
  const manifest = writeBlob(
    layout,
    json({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: config.digest, size: config.size },
      layers: layers.map((l, i) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
        digest: l.digest,
        size: l.size,
        ...(layerAnnotations[i] ? { annotations: layerAnnotations[i] } : {}),
      })),
    }),
  )
  return { platform, layers, configDigest: config.digest, manifestDigest: manifest.digest, manifestSize: manifest.size }
}

/** Points `tag` in the layout's index.json at a manifest or index blob. */
export const tagLayout = (layout: string, tag: string, mediaType: string, digest: string, size: number) => {
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType, digest, size, annotations: { "org.opencontainers.image.ref.name": tag } }],
    }),
  )
}

/** A one-platform image in a fresh OCI layout, tagged `tag`. */
export const writeOciImage = (layout: string, tag: string, platform: ImagePlatform, layers: ReadonlyArray<BuiltLayer>) => {
  const image = writeImage(layout, platform, layers)
  tagLayout(layout, tag, "application/vnd.oci.image.manifest.v1+json", image.manifestDigest, image.manifestSize)
  return image
}

/** A multi-platform image (an OCI index) in a fresh OCI layout, tagged `tag`. */
export const writeOciIndex = (
  layout: string,
  tag: string,
  images: ReadonlyArray<{ readonly platform: ImagePlatform; readonly layers: ReadonlyArray<BuiltLayer> }>,
) => {
  const built = images.map((i) => writeImage(layout, i.platform, i.layers))
  const index = writeBlob(
    layout,
    json({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: built.map((b) => ({
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: b.manifestDigest,
        size: b.manifestSize,
        platform: b.platform,
      })),
    }),
  )
  tagLayout(layout, tag, "application/vnd.oci.image.index.v1+json", index.digest, index.size)
  return { indexDigest: index.digest, images: built }
}

/**
 * `skopeo copy` of `oci:LAYOUT:TAG` to `docker://DEST` on a plain-HTTP or self-signed
 * registry. Asynchronous: a token server in this process must keep answering meanwhile.
 */
export const pushLayout = async (layout: string, tag: string, dest: string, options: { all?: boolean; creds?: string } = {}) => {
  const args = [
    "skopeo",
    "--insecure-policy",
    "copy",
    "--quiet",
    "--dest-tls-verify=false",
    ...(options.all ? ["--all"] : []),
    ...(options.creds ? ["--dest-creds", options.creds] : []),
    `oci:${layout}:${tag}`,
    `docker://${dest}`,
  ]
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" })
  const [out, errText, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  if (code !== 0) throw new Error(`${args.join(" ")} failed (${code}): ${errText || out}`)
}

export const makeTempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix))
