/**
 * Where registry credentials come from, in podman's order: `--creds`, else `--authfile`
 * (or $REGISTRY_AUTH_FILE, which podman uses as the --authfile default) alone, else the auth
 * files podman and docker write: ${XDG_RUNTIME_DIR}/containers/auth.json (or
 * /run/containers/UID/auth.json), $XDG_CONFIG_HOME/containers/auth.json, $DOCKER_CONFIG or
 * ~/.docker/config.json, ~/.dockercfg. In each file, `credHelpers` for the registry first,
 * then `auths` keyed by repository, namespace or host (most specific wins), then docker's
 * `credsStore`.
 */
import { spawn } from "node:child_process"
import { homedir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, Schema } from "effect"
import { readRegularTextOr } from "../sys/RegularFile.ts"

/** auth.json files hold a few entries; anything past this is not one. */
const MAX_AUTH_FILE_BYTES = 4 << 20

export interface Credentials {
  readonly username: string
  readonly password: string
  /** an OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user) */
  readonly identityToken?: string | undefined
  /** where they came from, for messages */
  readonly source: string
}

export class KeychainError extends Schema.TaggedError<KeychainError>()("KeychainError", {
  source: Schema.String,
  reason: Schema.String,
}) {
  override get message() {
    return `cannot read credentials from ${this.source}: ${this.reason}`
  }
}

export interface KeychainOptions {
  /** `--creds USER:PASSWORD` */
  readonly creds?: string | undefined
  /** `--authfile FILE` */
  readonly authfile?: string | undefined
  /**
   * the registries --creds is for; others (mirrors on other hosts, as podman does) use the
   * auth files. Every registry when unset.
   */
  readonly credsFor?: ((registry: string) => boolean) | undefined
  /** environment to read paths and PATH from; process.env by default */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

export class Keychain extends Context.Tag("als/Keychain")<
  Keychain,
  {
    /** Credentials for `repository` on `registry` (as in the reference: `docker.io`), or none. */
    readonly lookup: (registry: string, repository: string) => Effect.Effect<Credentials | undefined, KeychainError>
  }
>() {
  /** podman's lookup with the given flags; fails at once on a malformed --creds. */
  static readonly layer = (options: KeychainOptions = {}): Layer.Layer<Keychain, KeychainError> =>
    Layer.effect(
      Keychain,
      Effect.gen(function* () {
        const env = options.env ?? process.env
        if (options.creds !== undefined) {
          const creds = yield* parseCreds(options.creds)
          const credsFor = options.credsFor
          if (credsFor) {
            const files = authFilePaths(options.authfile, env)
            return { lookup: (registry, repository) => credsFor(registry) ? Effect.succeed(creds) : lookupInFiles(files, registry, repository, env) }
          }
          return { lookup: () => Effect.succeed(creds) }
        }
        const files = authFilePaths(options.authfile, env)
        return { lookup: (registry, repository) => lookupInFiles(files, registry, repository, env) }
      }),
    )

  /** No credentials at all: every request goes anonymous. */
  static readonly anonymous: Layer.Layer<Keychain> = Layer.succeed(Keychain, {
    lookup: () => Effect.succeed(undefined),
  })
}

/** `USER:PASSWORD` as podman's --creds takes it (the password may contain ':'). */
export const parseCreds = (s: string): Effect.Effect<Credentials, KeychainError> => {
  const colon = s.indexOf(":")
  if (colon <= 0) {
    return Effect.fail(
      new KeychainError({ source: "--creds", reason: "expected USERNAME:PASSWORD (als cannot prompt for a password)" }),
    )
  }
  return Effect.succeed({ username: s.slice(0, colon), password: s.slice(colon + 1), source: "--creds" })
}

export interface AuthFilePath {
  readonly path: string
  /** ~/.dockercfg: the top level is the `auths` map, keyed by host or URL */
  readonly legacy: boolean
}

/** The files to search, in order. */
export const authFilePaths = (
  authfile: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): ReadonlyArray<AuthFilePath> => {
  const explicit = authfile || env.REGISTRY_AUTH_FILE
  if (explicit) return [{ path: explicit, legacy: false }]
  const home = env.HOME || homedir()
  const uid = typeof process.getuid === "function" ? process.getuid() : 0
  const runtimeDir = env.XDG_RUNTIME_DIR
  const configHome = env.XDG_CONFIG_HOME || join(home, ".config")
  return [
    { path: runtimeDir ? join(runtimeDir, "containers/auth.json") : `/run/containers/${uid}/auth.json`, legacy: false },
    { path: join(configHome, "containers/auth.json"), legacy: false },
    { path: env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, "config.json") : join(home, ".docker/config.json"), legacy: false },
    { path: join(home, ".dockercfg"), legacy: true },
  ]
}

interface AuthEntry {
  readonly auth?: string
  readonly identitytoken?: string
}

export interface AuthFile {
  readonly auths: Readonly<Record<string, AuthEntry>>
  readonly credHelpers: Readonly<Record<string, string>>
  readonly credsStore?: string | undefined
}

const asObject = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {}

const stringMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(asObject(v)).filter((e): e is [string, string] => typeof e[1] === "string"))

/** Parses an auth file's text (no IO). */
export const parseAuthFile = (text: string, legacy: boolean): AuthFile => {
  const json = asObject(JSON.parse(text))
  const auths = Object.fromEntries(
    Object.entries(asObject(legacy ? json : json.auths)).map(([k, v]) => {
      const o = asObject(v)
      return [
        k,
        {
          auth: typeof o.auth === "string" ? o.auth : undefined,
          identitytoken: typeof o.identitytoken === "string" ? o.identitytoken : undefined,
        },
      ]
    }),
  )
  if (legacy) return { auths, credHelpers: {} }
  return {
    auths,
    credHelpers: stringMap(json.credHelpers),
    credsStore: typeof json.credsStore === "string" && json.credsStore !== "" ? json.credsStore : undefined,
  }
}

// Docker Hub hides behind several names in auth files; they all mean the same registry.
const normalizeRegistry = (registry: string): string =>
  registry === "docker.io" || registry === "registry-1.docker.io" ? "index.docker.io" : registry

/** A key as `docker login` may have written it (`https://host/v1/`) reduced to its host. */
const normalizeAuthKey = (key: string, legacy: boolean): string => {
  const stripped = key.replace(/^https?:\/\//, "")
  return normalizeRegistry(legacy || stripped !== key ? stripped.split("/")[0] : stripped)
}

/** What a file says about a repository: credentials, a helper to ask, or nothing. */
export type AuthFileMatch =
  | { readonly kind: "credentials"; readonly key: string; readonly username: string; readonly password: string; readonly identityToken?: string | undefined }
  | { readonly kind: "helper"; readonly helper: string }
  | { readonly kind: "none" }

const decodeAuth = (key: string, entry: AuthEntry): AuthFileMatch => {
  if (!entry.auth) {
    return entry.identitytoken ? { kind: "credentials", key, username: "", password: "", identityToken: entry.identitytoken } : { kind: "none" }
  }
  const text = Buffer.from(entry.auth, "base64").toString("utf8")
  const colon = text.indexOf(":")
  if (colon === -1) return { kind: "none" } // docker writes `{}` or junk next to a helper
  return {
    kind: "credentials",
    key,
    username: text.slice(0, colon),
    password: text.slice(colon + 1).replace(/\0+$/, ""),
    identityToken: entry.identitytoken || undefined,
  }
}

/** Finds the entry for `registry/repository` in one parsed file, as containers/image does. */
export const matchAuthFile = (file: AuthFile, registry: string, repository: string, legacy: boolean): AuthFileMatch => {
  const helper = file.credHelpers[registry]
  if (helper) return { kind: "helper", helper }
  // Most specific first: host/a/b/c, host/a/b, host/a, host (a legacy file has hosts only).
  const keys: string[] = []
  if (!legacy) {
    const parts = repository.split("/")
    for (let n = parts.length; n > 0; n--) keys.push(`${registry}/${parts.slice(0, n).join("/")}`)
  }
  keys.push(registry)
  for (const key of keys) {
    const entry = file.auths[key]
    if (entry) {
      const m = decodeAuth(key, entry)
      if (m.kind !== "none") return m
    }
  }
  // Keys written as URLs or under Docker Hub's other names.
  const wanted = normalizeRegistry(registry)
  for (const [key, entry] of Object.entries(file.auths)) {
    if (normalizeAuthKey(key, legacy) === wanted) {
      const m = decodeAuth(key, entry)
      if (m.kind !== "none") return m
    }
  }
  return file.credsStore ? { kind: "helper", helper: file.credsStore } : { kind: "none" }
}

const readAuthFile = (p: AuthFilePath): Effect.Effect<AuthFile | undefined, KeychainError> =>
  Effect.try({
    try: () => {
      // a regular file only: a FIFO or /dev/zero named as the auth file must not hang a pull or `als serve`
      const text = readRegularTextOr(p.path, MAX_AUTH_FILE_BYTES, (reason) => new Error(reason))
      return text === undefined ? undefined : parseAuthFile(text, p.legacy)
    },
    catch: (e) =>
      new KeychainError({
        source: p.path,
        reason: `${e instanceof SyntaxError ? "invalid JSON: " : ""}${(e as Error).message}; fix or remove the file`,
      }),
  })

const lookupInFiles = (
  files: ReadonlyArray<AuthFilePath>,
  registry: string,
  repository: string,
  env: Readonly<Record<string, string | undefined>>,
): Effect.Effect<Credentials | undefined, KeychainError> =>
  Effect.gen(function* () {
    for (const p of files) {
      const file = yield* readAuthFile(p)
      if (!file) continue
      const m = matchAuthFile(file, registry, repository, p.legacy)
      if (m.kind === "credentials") {
        return { username: m.username, password: m.password, identityToken: m.identityToken, source: p.path }
      }
      if (m.kind === "helper") {
        const creds = yield* helperCredentials(m.helper, registry, env)
        if (creds) return creds
      }
    }
    return undefined
  })

/**
 * The server names to ask a helper for: the registry as podman stores it, and for Docker
 * Hub also the URL `docker login` stores it under.
 */
const helperServers = (registry: string): ReadonlyArray<string> =>
  registry === "docker.io" ? ["docker.io", "https://index.docker.io/v1/"] : [registry]

const helperCredentials = (
  helper: string,
  registry: string,
  env: Readonly<Record<string, string | undefined>>,
): Effect.Effect<Credentials | undefined, KeychainError> =>
  Effect.gen(function* () {
    for (const server of helperServers(registry)) {
      const creds = yield* runCredentialHelper(helper, server, env)
      if (creds) return creds
    }
    return undefined
  })

const helperTimeoutMs = 30_000

/**
 * Runs `docker-credential-NAME get` with the server on stdin, as docker's helper protocol
 * says; undefined when the helper knows no credentials for it.
 */
export const runCredentialHelper = (
  helper: string,
  server: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Effect.Effect<Credentials | undefined, KeychainError> => {
  const program = `docker-credential-${helper}`
  const source = `credential helper ${program}`
  return Effect.async<Credentials | undefined, KeychainError>((resume) => {
    const fail = (reason: string) => resume(Effect.fail(new KeychainError({ source, reason })))
    const child = spawn(program, ["get"], { env: env as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    const timer = setTimeout(() => child.kill("SIGKILL"), helperTimeoutMs)
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")))
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")))
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      fail(e.code === "ENOENT" ? `${program} is not installed or not on PATH` : e.message)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      const out = stdout.trim()
      if (code !== 0) {
        // the helper protocol's "not found" answer is this message on stdout
        if (/credentials not found/i.test(out) || /credentials not found/i.test(stderr)) return resume(Effect.succeed(undefined))
        return fail(signal ? `killed by ${signal} (timed out?)` : `exit code ${code}: ${(out || stderr).trim().slice(0, 300)}`)
      }
      let json: Record<string, unknown>
      try {
        json = asObject(JSON.parse(out))
      } catch {
        return fail("its output is not JSON")
      }
      const username = typeof json.Username === "string" ? json.Username : ""
      const secret = typeof json.Secret === "string" ? json.Secret : ""
      if (username === "" && secret === "") return resume(Effect.succeed(undefined))
      resume(
        Effect.succeed(
          username === "<token>"
            ? { username: "", password: "", identityToken: secret, source }
            : { username, password: secret, source },
        ),
      )
    })
    child.stdin.on("error", () => {}) // a helper may exit before reading; the close handler reports
    child.stdin.end(server)
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })
}
