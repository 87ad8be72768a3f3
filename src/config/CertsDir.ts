/**
 * TLS material for a registry as podman 4.3.1 finds it: `--cert-dir DIR` for every registry,
 * else the first existing `HOST[:PORT]` directory under ~/.config/containers/certs.d,
 * /etc/containers/certs.d, /etc/docker/certs.d. In it, every `*.crt` is a CA added to the
 * trusted ones, and every `NAME.cert` with its `NAME.key` is a client certificate; a `.cert`
 * without its `.key` (or the reverse) is an error, as it is for podman.
 */
import { Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { requireRegularText } from "../sys/RegularFile.ts"

/** certificates and keys are a few KiB; a bundle of many CAs stays well under this. */
const MAX_CERT_FILE_BYTES = 4 << 20

export class CertsDirError extends Schema.TaggedError<CertsDirError>()("CertsDirError", {
  dir: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `TLS certificates in ${this.dir}: ${this.reason}`
  }
}

export interface TlsMaterial {
  readonly dir: string
  /** PEM CA certificates to trust besides the usual roots */
  readonly ca: ReadonlyArray<string>
  /** the first client certificate pair (PEM), when the directory has one */
  readonly client?: { readonly cert: string; readonly key: string; readonly certFile: string } | undefined
}

export interface CertsEnv {
  /** --cert-dir: used for every registry, as is */
  readonly certDir?: string | undefined
  readonly home: string
  /** "/etc" normally; tests point it elsewhere */
  readonly etc?: string | undefined
}

/** The directory podman reads for `hostPort` (it need not exist). */
export const certsDirFor = (hostPort: string, e: CertsEnv, exists: (p: string) => boolean = fs.existsSync): string => {
  if (e.certDir) return e.certDir
  const etc = e.etc ?? "/etc"
  const bases = [path.join(e.home, ".config/containers/certs.d"), path.join(etc, "containers/certs.d"), path.join(etc, "docker/certs.d")]
  let dir = ""
  for (const base of bases) {
    dir = path.join(base, hostPort)
    if (exists(dir)) break
  }
  return dir // the last one tried when none exists, as containers/image does: it reads nothing
}

const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code

/** Reads a certs directory; undefined when it is missing or unreadable. Throws CertsDirError. */
export const readCertsDir = (dir: string): TlsMaterial | undefined => {
  let names: string[]
  try {
    names = fs.readdirSync(dir).sort()
  } catch (e) {
    if (code(e) === "ENOENT" || code(e) === "ENOTDIR" || code(e) === "EACCES") return undefined
    throw new CertsDirError({ dir, reason: (e as Error).message })
  }
  // a regular file only: a FIFO or a link to /dev/zero in certs.d must not hang the pull
  const read = (name: string) =>
    requireRegularText(path.join(dir, name), MAX_CERT_FILE_BYTES, (reason) => new CertsDirError({ dir, reason: `cannot read ${name}: ${reason}` }))
  const has = new Set(names)
  const ca: string[] = []
  let client: TlsMaterial["client"]
  for (const name of names) {
    if (name.endsWith(".crt")) {
      const pem = read(name)
      if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new CertsDirError({ dir, reason: `${name} holds no PEM certificate` })
      ca.push(pem)
    } else if (name.endsWith(".cert")) {
      const key = `${name.slice(0, -".cert".length)}.key`
      if (!has.has(key)) {
        throw new CertsDirError({ dir, reason: `missing key ${key} for client certificate ${name}. Note that CA certificates should use the extension .crt` })
      }
      client ??= { cert: read(name), key: read(key), certFile: path.join(dir, name) }
    } else if (name.endsWith(".key")) {
      const cert = `${name.slice(0, -".key".length)}.cert`
      if (!has.has(cert)) throw new CertsDirError({ dir, reason: `missing client certificate ${cert} for key ${name}` })
    }
  }
  return { dir, ca, client }
}

/** `host[:port]` as podman names the directory: Docker Hub's API host is `docker.io`. */
export const certsHostPort = (url: string): string | undefined => {
  try {
    const host = new URL(url).host
    return host === "registry-1.docker.io" ? "docker.io" : host
  } catch {
    return undefined
  }
}
