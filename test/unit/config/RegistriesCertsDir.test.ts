import { describe, expect, test } from "bun:test"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { certsDirFor, certsHostPort, CertsDirError, readCertsDir } from "../../../src/config/CertsDir.ts"
import { certsDirFetch } from "../../../src/config/TlsTransport.ts"
import { tempDirs } from "../../lib/tempDirs.ts"

const tmp = tempDirs()

const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

const dirWith = (files: Record<string, string>) => {
  const d = tmp("als-certsd-")
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text)
  return d
}

describe("which certs directory", () => {
  const env = { home: "/home/u", etc: "/etc" }
  test("--cert-dir is used as is, for every host", () => {
    expect(certsDirFor("a.example:5000", { ...env, certDir: "/tmp/c" }, () => false)).toBe("/tmp/c")
  })
  test("the first existing HOST[:PORT] directory: user certs.d, /etc/containers, /etc/docker", () => {
    const only = (p: string) => (q: string) => q === p
    expect(certsDirFor("r:5000", env, only("/home/u/.config/containers/certs.d/r:5000"))).toBe("/home/u/.config/containers/certs.d/r:5000")
    expect(certsDirFor("r:5000", env, only("/etc/containers/certs.d/r:5000"))).toBe("/etc/containers/certs.d/r:5000")
    expect(certsDirFor("r:5000", env, only("/etc/docker/certs.d/r:5000"))).toBe("/etc/docker/certs.d/r:5000")
    expect(certsDirFor("r:5000", env, () => true)).toBe("/home/u/.config/containers/certs.d/r:5000")
  })
  test("the directory is named as podman names it: docker.io for Docker Hub's API host, the port kept", () => {
    expect(certsHostPort("https://registry-1.docker.io/v2/")).toBe("docker.io")
    expect(certsHostPort("https://127.0.0.1:5000/v2/x")).toBe("127.0.0.1:5000")
    expect(certsHostPort("not a url")).toBeUndefined()
  })
})

describe("reading a certs directory", () => {
  test("*.crt are CAs, NAME.cert + NAME.key a client pair; other files are ignored", () => {
    const d = dirWith({ "ca.crt": pem, "b.crt": pem, "client.cert": "CERT", "client.key": "KEY", "README": "x" })
    const m = readCertsDir(d)!
    expect(m.ca).toEqual([pem, pem])
    expect(m.client).toEqual({ cert: "CERT", key: "KEY", certFile: join(d, "client.cert") })
  })
  test("a missing directory is no material", () => {
    expect(readCertsDir("/nonexistent/als-certs")).toBeUndefined()
  })
  const refused: ReadonlyArray<[string, Record<string, string>, string]> = [
    ["a .cert without its .key", { "client.cert": "C" }, "missing key client.key for client certificate client.cert. Note that CA certificates should use the extension .crt"],
    ["a .key without its .cert", { "client.key": "K" }, "missing client certificate client.cert for key client.key"],
    ["a .crt that holds no certificate", { "ca.crt": "garbage" }, "ca.crt holds no PEM certificate"],
  ]
  for (const [what, files, message] of refused) {
    test(`refused: ${what}`, () => {
      let err: unknown
      try {
        readCertsDir(dirWith(files))
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(CertsDirError)
      expect((err as Error).message).toContain(message)
    })
  }
})

describe("the transport adds each host's material", () => {
  test("https requests to a host with a certs directory carry its CA (after the usual roots) and client pair; others pass unchanged", async () => {
    const etc = tmp("als-certsd-etc-")
    mkdirSync(join(etc, "containers/certs.d/127.0.0.1:5443"), { recursive: true })
    writeFileSync(join(etc, "containers/certs.d/127.0.0.1:5443/ca.crt"), pem)
    writeFileSync(join(etc, "containers/certs.d/127.0.0.1:5443/c.cert"), "CERT")
    writeFileSync(join(etc, "containers/certs.d/127.0.0.1:5443/c.key"), "KEY")
    const seen: Array<{ url: string; tls?: { ca?: string[]; cert?: string; key?: string } }> = []
    const fetch = certsDirFetch(async (url, init) => {
      seen.push({ url, tls: (init as { tls?: { ca?: string[]; cert?: string; key?: string } }).tls })
      return new Response("")
    }, { home: "/nonexistent", etc })
    await fetch("https://127.0.0.1:5443/v2/", { method: "GET" })
    await fetch("https://127.0.0.1:5444/v2/", { method: "GET" })
    await fetch("http://127.0.0.1:5443/v2/", { method: "GET" })
    expect(seen[0].tls?.ca?.at(-1)).toBe(pem)
    expect(seen[0].tls!.ca!.length).toBeGreaterThan(1) // the usual roots are kept
    expect([seen[0].tls?.cert, seen[0].tls?.key]).toEqual(["CERT", "KEY"])
    expect(seen[1].tls).toBeUndefined()
    expect(seen[2].tls).toBeUndefined()
  })
  test("a broken certs directory fails the request with the reason", async () => {
    const fetch = certsDirFetch(async () => new Response(""), { home: "/nonexistent", certDir: dirWith({ "x.cert": "C" }) })
    await expect(fetch("https://127.0.0.1:5443/v2/", {})).rejects.toThrow(/missing key x.key/)
  })
})
