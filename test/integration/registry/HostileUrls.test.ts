// Issue 11 class 3: URLs a registry hands us. A "registry" on 127.0.0.1 asks for a token from a
// realm="file:///etc/passwd", or redirects a manifest or blob to Location: file:///etc/shadow
// (or data:, or a relative oddity that leads to another host). `als pull` refuses each with
// exit 3 and a message naming the registry and the header, and reads nothing locally: the
// file: targets below are also FIFOs, and a FIFO that anyone opened would tell.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { join } from "node:path"
import { als, describeResult, eventsOf } from "../../lib/als.ts"
import { makeTempDir } from "../../lib/registry.ts"
import { Leftovers, MIN, readLog } from "../crash/support.ts"

type Answer = (url: URL) => Response

let server: ReturnType<typeof Bun.serve>
let answer: Answer = () => new Response("not set", { status: 500 })
let tmp: string
const left = new Leftovers()
/** paths the registry asked for */
const seen: string[] = []

beforeAll(() => {
  tmp = makeTempDir("als-hostile-url-")
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const url = new URL(req.url)
      seen.push(url.pathname)
      return answer(url)
    },
  })
})

afterAll(async () => {
  server?.stop(true)
  await left.cleanup()
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

const host = () => `127.0.0.1:${server.port}`
const ref = () => `${host()}/hostile/app:1`

const v2 = { "docker-distribution-api-version": "registry/2.0" }

/**
 * A FIFO that reports whether anyone opened it for reading: a writer's open completes only
 * then. `opened()` says so after the fact; `close()` unblocks the waiting open.
 */
const tripwire = (name: string) => {
  const path = join(tmp, name)
  const r = spawnSync("mkfifo", [path])
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`)
  let opened = false
  const writer = fs.promises.open(path, "w").then(async (fh) => {
    opened = true
    await fh.close()
  })
  return {
    path,
    opened: () => opened,
    close: async () => {
      // a reader of our own lets the writer's open complete, so nothing is left waiting
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
      await writer
      fs.closeSync(fd)
    },
  }
}

const pull = async () => {
  const root = left.tempDir("hostile-url")
  seen.length = 0
  const r = await als(["pull", "--root", root, "--tls-verify=false", ref()], { timeoutMs: 2 * MIN })
  return { root, r }
}

/** A failed pull: exit 3, the message on stderr, PullFailed logged, nothing in the store. */
const expectRefused = async (root: string, r: Awaited<ReturnType<typeof als>>, message: RegExp) => {
  expect({ exit: r.exitCode, out: describeResult(r) }).toMatchObject({ exit: 3 })
  expect(r.stderr).toContain(host())
  expect(r.stderr).toMatch(message)
  // the refusal is ours, not the result of having read the file as a token or a manifest
  expect(r.stderr).not.toMatch(/root:|not JSON|invalid manifest/i)
  const failed = eventsOf(await readLog(root), "PullFailed")
  expect(failed.length).toBe(1)
  expect((failed[0]!.reason as { code: string }).code).toBe("BadResponse")
}

describe("a Bearer realm that is not http(s)", () => {
  for (const target of ["file:///etc/passwd", "fifo"] as const) {
    test(`realm="${target === "fifo" ? "file:///…/fifo" : target}": exit 3, named, nothing read`, async () => {
      const wire = tripwire("realm-fifo")
      const realm = target === "fifo" ? `file://${wire.path}` : target
      answer = () =>
        new Response(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }), {
          status: 401,
          headers: { ...v2, "www-authenticate": `Bearer realm="${realm}",service="hostile",scope="repository:hostile/app:pull"` },
        })
      try {
        const { root, r } = await pull()
        await expectRefused(root, r, /asks for a token from a realm als will not follow: "file:\/\/\/.*" is a file: URL; only http and https are followed \(the realm of its WWW-Authenticate header\)/)
        expect(r.stderr).toContain(realm)
        expect(wire.opened()).toBe(false)
      } finally {
        await wire.close()
        fs.rmSync(wire.path, { force: true })
      }
    }, 2 * MIN)
  }
})

describe("a redirect that leaves http(s) or the origin", () => {
  const redirecting = (location: string, from: RegExp) => (url: URL) => {
    if (url.pathname === "/v2/") return new Response("{}", { headers: v2 })
    if (from.test(url.pathname)) return new Response(null, { status: 307, headers: { ...v2, location } })
    return new Response(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "unknown" }] }), { status: 404, headers: v2 })
  }

  test("manifest → Location: file:///etc/shadow: exit 3, named, not followed", async () => {
    answer = redirecting("file:///etc/shadow", /\/manifests\//)
    const { root, r } = await pull()
    await expectRefused(root, r, /redirected to a place als will not follow: "file:\/\/\/etc\/shadow" is a file: URL; only http and https are followed \(the Location of its HTTP 307 answer\)/)
  }, 2 * MIN)

  test("manifest → Location: file:// of a FIFO: nothing opens it", async () => {
    const wire = tripwire("location-fifo")
    answer = redirecting(`file://${wire.path}`, /\/manifests\//)
    try {
      const { root, r } = await pull()
      await expectRefused(root, r, /is a file: URL; only http and https are followed/)
      expect(wire.opened()).toBe(false)
    } finally {
      await wire.close()
      fs.rmSync(wire.path, { force: true })
    }
  }, 2 * MIN)

  test("manifest → Location: data:…, a manifest of the redirect's own making: refused", async () => {
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {}, layers: [] })
    answer = redirecting(`data:application/vnd.oci.image.manifest.v1+json,${encodeURIComponent(manifest)}`, /\/manifests\//)
    const { root, r } = await pull()
    await expectRefused(root, r, /"data:application\/vnd\.oci\.image\.manifest\.v1\+json,.*" is a data: URL/)
  }, 2 * MIN)

  test("a relative Location that leads to another host (//elsewhere, \\\\elsewhere): refused", async () => {
    for (const location of ["//192.0.2.1/v2/x", "\\\\192.0.2.1/v2/x"]) {
      answer = redirecting(location, /\/manifests\//)
      const { root, r } = await pull()
      await expectRefused(root, r, /redirected to a place als will not follow/)
      expect(seen.filter((p) => /\/manifests\//.test(p)).length).toBe(1)
    }
  }, 2 * MIN)
})
