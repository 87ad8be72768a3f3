// Issue 11 class 5: every network wait has a bound. `als pull --timeout T` against a registry
// on 127.0.0.1 that accepts connections and never says a word, or answers a manifest one byte
// a second, ends within T plus a small margin (asserted generously: T + 10 s on a busy
// machine), where it used to take minutes (retries of a timed-out request, https then http,
// and a trickle never counted as a stall). A wait longer than 5 s is told on stderr.

import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import * as net from "node:net"
import { als, alsCommand, describeResult } from "../../lib/als.ts"
import { Leftovers, MIN } from "../crash/support.ts"

const left = new Leftovers()
const servers: net.Server[] = []
const sockets = new Set<net.Socket>()

/** A TCP server on 127.0.0.1; `onConnection` gets each socket. */
const listen = async (onConnection: (sock: net.Socket) => void): Promise<number> => {
  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.on("close", () => sockets.delete(sock))
    sock.on("error", () => undefined)
    onConnection(sock)
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
  return (server.address() as net.AddressInfo).port
}

let silentPort: number
let tricklePort: number
const trickles: ReturnType<typeof setInterval>[] = []

beforeAll(async () => {
  // accepts, reads, never answers (not even a TLS handshake)
  silentPort = await listen(() => undefined)
  // a plain-HTTP registry whose manifest arrives one byte a second
  tricklePort = await listen((sock) => {
    let buf = ""
    sock.on("data", (d) => {
      buf += d.toString("latin1")
      if (buf.charCodeAt(0) === 0x16) return sock.destroy() // TLS first: not here
      if (!buf.includes("\r\n\r\n")) return
      const path = /^[A-Z]+ (\S+)/.exec(buf)?.[1] ?? ""
      if (path === "/v2/") {
        sock.end("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
        return
      }
      const body = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: {}, layers: [] })
      sock.write(`HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`)
      let i = 0
      const t = setInterval(() => {
        if (sock.destroyed || i >= body.length) return clearInterval(t)
        sock.write(body[i++]!)
      }, 1000)
      trickles.push(t)
    })
  })
  // the binary built (when src/ is newer) before any pull is timed
  await alsCommand()
}, 5 * MIN)

afterAll(async () => {
  for (const t of trickles) clearInterval(t)
  for (const s of sockets) s.destroy()
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
  await left.cleanup()
}, MIN)

const MARGIN_MS = 10_000

const timedPull = async (args: ReadonlyArray<string>) => {
  const root = left.tempDir("time-bounds")
  const started = Date.now()
  const r = await als(["pull", "--root", root, ...args], { timeoutMs: 3 * MIN })
  const ms = Date.now() - started
  console.log(`${args.join(" ")}: exit ${r.exitCode} after ${ms} ms; ${r.stderr.trim().split("\n").join(" | ")}`)
  return { r, ms }
}

describe("a registry that accepts and never answers", () => {
  test("--timeout 3 --tls-verify=false (https, then http): exit 3 within 3 s + margin, saying it did not answer", async () => {
    const { r, ms } = await timedPull(["--timeout", "3", "--tls-verify=false", `127.0.0.1:${silentPort}/silent/app:1`])
    expect({ exit: r.exitCode, out: describeResult(r) }).toMatchObject({ exit: 3 })
    expect(r.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1:${silentPort} did not answer`))
    expect(r.stderr).toMatch(/try again/)
    expect(ms).toBeLessThan(3000 + MARGIN_MS)
  }, 3 * MIN)

  test("--timeout 8 (https only): exit 3 within 8 s + margin, and after 5 s it says what it waits for", async () => {
    const { r, ms } = await timedPull(["--timeout", "8", `127.0.0.1:${silentPort}/silent/app:1`])
    expect({ exit: r.exitCode, out: describeResult(r) }).toMatchObject({ exit: 3 })
    expect(r.stderr).toMatch(new RegExp(`still waiting for 127\\.0\\.0\\.1:${silentPort} \\(/v2/\\) to answer \\(5 s; giving up after 8 s, see --timeout\\)`))
    expect(r.stderr.match(/still waiting/g)?.length).toBe(1)
    expect(ms).toBeGreaterThanOrEqual(7_500)
    expect(ms).toBeLessThan(8000 + MARGIN_MS)
  }, 3 * MIN)

  test("-q and --json, --timeout 8: the same exit 3 and error, but no 'still waiting' notice (it goes through the Reporter)", async () => {
    const [quiet, json] = await Promise.all([
      timedPull(["-q", "--timeout", "8", `127.0.0.1:${silentPort}/silent/app:1`]),
      timedPull(["--json", "--timeout", "8", `127.0.0.1:${silentPort}/silent/app:1`]),
    ])
    for (const { r, ms } of [quiet, json]) {
      expect({ exit: r.exitCode, out: describeResult(r) }).toMatchObject({ exit: 3 })
      expect(r.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1:${silentPort} did not answer`))
      expect(r.stderr).not.toMatch(/still waiting/)
      // waited past the 5 s notice time: the notice was due, and held back
      expect(ms).toBeGreaterThanOrEqual(7_500)
    }
    for (const line of json.r.stdout.trim().split("\n").filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow()
  }, 3 * MIN)
})

describe("a registry that trickles", () => {
  test("a manifest at one byte a second, --timeout 3: exit 3 within 3 s + margin, saying it did not arrive whole", async () => {
    const { r, ms } = await timedPull(["--timeout", "3", "--tls-verify=false", `127.0.0.1:${tricklePort}/trickle/app:1`])
    expect({ exit: r.exitCode, out: describeResult(r) }).toMatchObject({ exit: 3 })
    expect(r.stderr).toMatch(/the manifest did not arrive whole within 3 s \(\d+ bytes came\)/)
    expect(ms).toBeLessThan(3000 + MARGIN_MS)
  }, 3 * MIN)
})
