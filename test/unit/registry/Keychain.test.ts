import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Effect, Either } from "effect"
import { authFilePaths, type Credentials, Keychain, KeychainError, type KeychainOptions } from "../../../src/registry/Keychain.ts"

let root: string
let binDir: string
let helperLog: string

const b64 = (s: string) => Buffer.from(s).toString("base64")

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "als-keychain-"))
  binDir = join(root, "bin")
  mkdirSync(binDir)
  helperLog = join(root, "helper.log")
  // A real credential helper program speaking docker's protocol: server on stdin, JSON out.
  const helper = join(binDir, "docker-credential-test")
  writeFileSync(
    helper,
    `#!/bin/sh
[ "$1" = get ] || { echo "unsupported $1" >&2; exit 2; }
server=$(cat)
echo "$server" >> "${helperLog}"
case "$server" in
  reg.example) printf '{"ServerURL":"reg.example","Username":"helper-user","Secret":"helper-pass"}\\n' ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hub-user","Secret":"hub-pass"}\\n' "$server" ;;
  token.example) printf '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-123"}\\n' ;;
  broken.example) echo "keychain locked" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`,
  )
  chmodSync(helper, 0o755)
})

afterAll(() => {
  rmSync(root, { recursive: true, force: true })
})

/** A fresh fake home with the given files (path relative to the case dir → JSON). */
const scene = (files: Record<string, unknown>) => {
  const dir = mkdtempSync(join(root, "case-"))
  for (const [rel, content] of Object.entries(files)) {
    const path = join(dir, rel)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content))
  }
  const env = {
    HOME: join(dir, "home"),
    XDG_RUNTIME_DIR: join(dir, "run"),
    XDG_CONFIG_HOME: join(dir, "config"),
    PATH: `${binDir}:/usr/bin:/bin`,
  }
  return { dir, env }
}

const lookup = (options: KeychainOptions, registry: string, repository: string) =>
  Effect.runPromise(
    Effect.either(
      Effect.flatMap(Keychain, (k) => k.lookup(registry, repository)).pipe(Effect.provide(Keychain.layer(options))),
    ),
  )

const found = async (options: KeychainOptions, registry: string, repository: string): Promise<Credentials | undefined> => {
  const r = await lookup(options, registry, repository)
  if (Either.isLeft(r)) throw r.left
  return r.right
}

describe("--creds", () => {
  test("wins over every file", async () => {
    const { env } = scene({ "run/containers/auth.json": { auths: { "reg.example": { auth: b64("file:pw") } } } })
    expect(await found({ creds: "me:p:a:ss", env }, "reg.example", "x")).toMatchObject({ username: "me", password: "p:a:ss", source: "--creds" })
  })

  test("without a password is refused with advice", async () => {
    const r = await lookup({ creds: "me", env: {} }, "reg.example", "x")
    expect(Either.isLeft(r) && r.left).toBeInstanceOf(KeychainError)
    expect(Either.isLeft(r) && r.left.message).toMatch(/USERNAME:PASSWORD/)
  })
})

describe("auth files", () => {
  test("podman's search order: XDG_RUNTIME_DIR, then XDG_CONFIG_HOME, then ~/.docker, then ~/.dockercfg", async () => {
    const { env } = scene({
      "run/containers/auth.json": { auths: { "a.example": { auth: b64("run:1") } } },
      "config/containers/auth.json": { auths: { "a.example": { auth: b64("config:2") }, "b.example": { auth: b64("config:2") } } },
      "home/.docker/config.json": { auths: { "b.example": { auth: b64("docker:3") }, "c.example": { auth: b64("docker:3") } } },
      "home/.dockercfg": { "https://d.example/v1/": { auth: b64("legacy:4"), email: "x@y" } },
    })
    expect((await found({ env }, "a.example", "x"))?.username).toBe("run")
    expect((await found({ env }, "b.example", "x"))?.username).toBe("config")
    expect((await found({ env }, "c.example", "x"))?.username).toBe("docker")
    const legacy = await found({ env }, "d.example", "x")
    expect(legacy).toMatchObject({ username: "legacy", password: "4", source: join(env.HOME, ".dockercfg") })
    expect(await found({ env }, "e.example", "x")).toBeUndefined()
  })

  test("/run/containers/UID/auth.json when XDG_RUNTIME_DIR is unset", () => {
    const paths = authFilePaths(undefined, { HOME: "/h" }).map((p) => p.path)
    expect(paths[0]).toMatch(/^\/run\/containers\/\d+\/auth\.json$/)
    expect(paths.slice(1)).toEqual(["/h/.config/containers/auth.json", "/h/.docker/config.json", "/h/.dockercfg"])
    expect(authFilePaths(undefined, { HOME: "/h", DOCKER_CONFIG: "/dc" })[2].path).toBe("/dc/config.json")
  })

  test("--authfile is the only file read", async () => {
    const { dir, env } = scene({
      "mine.json": { auths: { "a.example": { auth: b64("mine:1") } } },
      "run/containers/auth.json": { auths: { "b.example": { auth: b64("run:1") } } },
    })
    const authfile = join(dir, "mine.json")
    expect((await found({ authfile, env }, "a.example", "x"))?.username).toBe("mine")
    expect(await found({ authfile, env }, "b.example", "x")).toBeUndefined()
  })

  test("$REGISTRY_AUTH_FILE acts as the --authfile default", async () => {
    const { dir, env } = scene({
      "env.json": { auths: { "a.example": { auth: b64("env:1") } } },
      "run/containers/auth.json": { auths: { "a.example": { auth: b64("run:1") } } },
    })
    const withEnv = { ...env, REGISTRY_AUTH_FILE: join(dir, "env.json") }
    expect((await found({ env: withEnv }, "a.example", "x"))?.username).toBe("env")
    expect((await found({ env: withEnv, authfile: join(dir, "run/containers/auth.json") }, "a.example", "x"))?.username).toBe("run")
  })

  test("the most specific key wins: repository, namespace, host", async () => {
    const { env } = scene({
      "run/containers/auth.json": {
        auths: {
          "reg.example": { auth: b64("host:1") },
          "reg.example/team": { auth: b64("team:1") },
          "reg.example/team/app": { auth: b64("app:1") },
        },
      },
    })
    expect((await found({ env }, "reg.example", "team/app"))?.username).toBe("app")
    expect((await found({ env }, "reg.example", "team/other"))?.username).toBe("team")
    expect((await found({ env }, "reg.example", "team/app/sub"))?.username).toBe("app")
    expect((await found({ env }, "reg.example", "solo"))?.username).toBe("host")
    // a key is a path prefix by components, not by characters
    expect((await found({ env }, "reg.example", "teamwork/x"))?.username).toBe("host")
  })

  test("Docker Hub under the keys docker login and podman login write", async () => {
    const viaDocker = scene({ "home/.docker/config.json": { auths: { "https://index.docker.io/v1/": { auth: b64("hub:1") } } } })
    expect((await found({ env: viaDocker.env }, "docker.io", "library/alpine"))?.username).toBe("hub")
    const viaPodman = scene({ "run/containers/auth.json": { auths: { "docker.io": { auth: b64("hub2:2") } } } })
    expect((await found({ env: viaPodman.env }, "docker.io", "library/alpine"))?.username).toBe("hub2")
  })

  test("a URL key for another registry is reduced to its host", async () => {
    const { env } = scene({ "home/.docker/config.json": { auths: { "https://reg.example:5000/v2/": { auth: b64("url:1") } } } })
    expect((await found({ env }, "reg.example:5000", "x"))?.username).toBe("url")
  })

  test("identitytoken is kept", async () => {
    const { env } = scene({ "run/containers/auth.json": { auths: { "a.example": { auth: b64("u:p"), identitytoken: "rt" } } } })
    expect(await found({ env }, "a.example", "x")).toMatchObject({ username: "u", identityToken: "rt" })
  })

  test("an unreadable file is an error naming it", async () => {
    const { dir, env } = scene({ "run/containers/auth.json": "{ not json" })
    const r = await lookup({ env }, "a.example", "x")
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.source).toBe(join(dir, "run/containers/auth.json"))
      expect(r.left.message).toMatch(/invalid JSON/)
    }
  })
})

describe("credential helpers (a real docker-credential-test program on PATH)", () => {
  test("credHelpers for the registry comes first and gets the server on stdin", async () => {
    const { env } = scene({
      "run/containers/auth.json": { auths: { "reg.example": { auth: b64("file:1") } }, credHelpers: { "reg.example": "test" } },
    })
    expect(await found({ env }, "reg.example", "x")).toMatchObject({
      username: "helper-user",
      password: "helper-pass",
      source: "credential helper docker-credential-test",
    })
    expect(readFileSync(helperLog, "utf8").trim().split("\n").at(-1)).toBe("reg.example")
  })

  test("a helper that knows nothing lets the search go on to the next file", async () => {
    const { env } = scene({
      "run/containers/auth.json": { credHelpers: { "other.example": "test" } },
      "home/.docker/config.json": { auths: { "other.example": { auth: b64("docker:1") } } },
    })
    expect((await found({ env }, "other.example", "x"))?.username).toBe("docker")
  })

  test("credsStore serves registries with no usable auths entry; Docker Hub is asked under its URL too", async () => {
    const { env } = scene({
      "home/.docker/config.json": { auths: { "https://index.docker.io/v1/": {}, "reg.example": {} }, credsStore: "test" },
    })
    expect((await found({ env }, "reg.example", "x"))?.username).toBe("helper-user")
    expect((await found({ env }, "docker.io", "library/alpine"))?.username).toBe("hub-user")
    expect(readFileSync(helperLog, "utf8")).toContain("docker.io\nhttps://index.docker.io/v1/\n")
    expect(await found({ env }, "nothing.example", "x")).toBeUndefined()
  })

  test("a <token> user is an identity token", async () => {
    const { env } = scene({ "run/containers/auth.json": { credHelpers: { "token.example": "test" } } })
    expect(await found({ env }, "token.example", "x")).toMatchObject({ identityToken: "refresh-123", username: "" })
  })

  test("a failing helper is an error with its message", async () => {
    const { env } = scene({ "run/containers/auth.json": { credHelpers: { "broken.example": "test" } } })
    const r = await lookup({ env }, "broken.example", "x")
    expect(Either.isLeft(r) && r.left.message).toMatch(/docker-credential-test.*keychain locked/)
  })

  test("a missing helper is an error saying so", async () => {
    const { env } = scene({ "run/containers/auth.json": { credHelpers: { "reg.example": "absent" } } })
    const r = await lookup({ env }, "reg.example", "x")
    expect(Either.isLeft(r) && r.left.message).toMatch(/docker-credential-absent is not installed or not on PATH/)
  })
})
