/**
 * The recording and replaying transports against a real HTTP server on 127.0.0.1: what an
 * exchange records, bodies stored once by content, answers matched per request in recorded
 * order whatever order the replay asks in, and a loud failure for an unrecorded request.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeRecordingTransport } from "../../src/replay/RecordingTransport.ts"
import { makeReplayTransport } from "../../src/replay/ReplayTransport.ts"
import type { Exchange } from "../../src/replay/Recording.ts"

let server: ReturnType<typeof Bun.serve>
let base: string
let dir: string
let recorded: ReadonlyArray<Exchange>
const big = "x".repeat(300_000)

beforeAll(async () => {
  let aCalls = 0
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const u = new URL(req.url)
      if (u.pathname === "/a") return ++aCalls === 1 ? new Response("busy", { status: 503, headers: { "retry-after": "0" } }) : new Response("hello")
      if (u.pathname === "/b") return new Response("hello", { headers: { "docker-content-digest": "sha256:x", "set-cookie": "s=1" } })
      if (u.pathname === "/big") return new Response(big)
      if (u.pathname === "/empty") return new Response(null, { status: 204 })
      return new Response("no", { status: 404 })
    },
  })
  base = `http://127.0.0.1:${server.port}`
  dir = mkdtempSync(join(tmpdir(), "als-transport-"))
  mkdirSync(join(dir, "blobs"))
  const rec = makeRecordingTransport(dir, (url, init) => fetch(url, init))
  const get = (p: string, headers: Record<string, string> = {}) => rec.fetch(`${base}${p}`, { method: "GET", headers })
  expect((await get("/a")).status).toBe(503)
  expect(await (await get("/a", { accept: "text/plain", authorization: "Bearer SECRET" })).text()).toBe("hello")
  expect(await (await get("/b", { "user-agent": "als/x" })).text()).toBe("hello")
  expect((await (await get("/big")).text()).length).toBe(big.length)
  expect((await get("/empty")).status).toBe(204)
  await (await get("/nope")).body?.cancel() // discarded unread
  recorded = rec.finish()
})

afterAll(() => {
  server?.stop(true)
  rmSync(dir, { recursive: true, force: true })
})

describe("recording", () => {
  test("an exchange keeps the selecting headers and the auth scheme, never credentials or cookies", () => {
    expect(recorded.map((x) => x.request.url.replace(base, ""))).toEqual(["/a", "/a", "/b", "/big", "/empty", "/nope"])
    expect(recorded[1]!.request).toEqual({ method: "GET", url: `${base}/a`, headers: { accept: "text/plain" }, auth: "bearer" })
    expect(recorded[2]!.request.headers).toEqual({}) // user-agent does not select the answer
    expect(recorded[2]!.response!.headers["docker-content-digest"]).toBe("sha256:x")
    expect(recorded[2]!.response!.headers["set-cookie"]).toBeUndefined()
    expect(JSON.stringify(recorded)).not.toContain("SECRET")
  })

  test("bodies are stored once by content; a discarded body is marked incomplete", () => {
    const hello = recorded[1]!.response!.body
    expect(hello).toMatchObject({ size: 5, complete: true })
    expect(recorded[2]!.response!.body.digest).toBe(hello.digest!)
    expect(recorded[3]!.response!.body).toMatchObject({ size: big.length, complete: true })
    expect(recorded[4]!.response!.body).toEqual({ size: 0, complete: true })
    expect(recorded[5]!.response!.body.complete).toBe(false)
    const files = readdirSync(join(dir, "blobs")).filter((f) => f.startsWith("sha256-"))
    expect(files.sort()).toEqual([...new Set(recorded.flatMap((x) => x.response?.body.digest ? [x.response.body.digest.replace(":", "-")] : []))].sort())
  })
})

describe("replaying", () => {
  test("answers in recorded order per request, whatever order they come in, then fails loudly", async () => {
    const replay = makeReplayTransport(dir, recorded)
    const get = (p: string, headers: Record<string, string> = {}) => replay.fetch(`${base}${p}`, { method: "GET", headers })
    expect((await (await get("/big")).text()).length).toBe(big.length)
    expect(await (await get("/b")).text()).toBe("hello")
    const busy = await get("/a")
    expect([busy.status, busy.headers.get("retry-after"), await busy.text()]).toEqual([503, "0", "busy"])
    const ok = await get("/a", { accept: "text/plain", authorization: "Bearer other-token" })
    expect([ok.status, await ok.text()]).toEqual([200, "hello"])
    expect((await get("/empty")).status).toBe(204)
    await expect(get("/a")).rejects.toThrow(`the recording has no answer for GET ${base}/a`)
    expect(replay.unrecorded.map((r) => r.url)).toEqual([`${base}/a`])
    expect(replay.unused().map((x) => x.request.url)).toEqual([`${base}/nope`])
    expect(replay.answered()).toBe(5)
  })

  test("a request with another selecting header is another request", async () => {
    const replay = makeReplayTransport(dir, recorded)
    await expect(replay.fetch(`${base}/b`, { method: "GET", headers: { range: "bytes=2-" } })).rejects.toThrow("(range: bytes=2-)")
  })
})
