/**
 * A misbehaving registry for tests: an HTTP/1.1 proxy on 127.0.0.1 in front of a real registry
 * that, per request path and per attempt, answers an error status, throttles a body, stalls,
 * sends fewer bytes than it declared, or resets the connection mid-body.
 *
 *   const proxy = await startFaultProxy(registry.url)
 *   proxy.setRules([{ path: /\/blobs\/sha256:/, attempts: 2, fault: { kind: "status", status: 500 } }])
 *   await als(["pull", "--tls-verify=false", `${proxy.host}/repo:tag`])
 *   proxy.requestsFor(/\/blobs\//)   // what the client asked for, and what it got
 *
 * It speaks raw HTTP over node:net (one request per connection, `Connection: close`), because
 * a body that ends short of its Content-Length, a reset after N bytes, or headers followed by
 * nothing cannot be produced through Bun.serve (which streams bodies chunked, and sends the
 * headers only with the first chunk). Request bodies are read and dropped, not forwarded (a
 * pulling client sends none): push images to the registry itself.
 */
import * as net from "node:net"

/**
 * What happens to the body once the rule's byte budget is spent. Before a reset or a short end
 * the proxy waits for the cut's `until` (the client has taken the bytes), else pauses briefly.
 */
export type BodyEnd =
  /** RST after `afterBytes` */
  | "reset"
  /** nothing more is sent; the connection stays open until the client gives up */
  | "stall"
  /** FIN after `afterBytes`: the body ends short of the Content-Length declared */
  | "short"

export type Fault =
  /** answer this status without asking the registry (e.g. 500, or 429 with Retry-After) */
  | {
    readonly kind: "status"
    readonly status: number
    readonly headers?: Readonly<Record<string, string>>
    readonly body?: string
  }
  /** forward the registry's answer, its body at most `bytesPerSecond` */
  | { readonly kind: "throttle"; readonly bytesPerSecond: number }
  /** forward the registry's headers, `afterBytes` of its body (throttled if asked), then `end` */
  | {
    readonly kind: "cut"
    readonly afterBytes: number
    readonly end: BodyEnd
    readonly bytesPerSecond?: number
    /**
     * Resolves when the client has consumed the bytes sent (say, they are in its staging file);
     * the end comes only then. Without it the proxy pauses 150 ms, and whatever the client has
     * not read by the reset is lost (Bun's fetch drops a body it buffered but had not handed to
     * the reader when the connection resets): where the client resumes depends on timing then.
     */
    readonly until?: () => Promise<void>
  }
  /** headers, then nothing at all */
  | { readonly kind: "stall" }
  /** no answer at all: not even headers */
  | { readonly kind: "hang" }
  /** forward without the Range header: a registry that always sends the whole blob (200) */
  | { readonly kind: "ignoreRange" }

export interface FaultRule {
  /** which requests (matched against the path, query included) */
  readonly path: RegExp
  /** default: any method */
  readonly method?: string
  /**
   * Which attempts the fault applies to, counting every earlier request for the same method
   * and path from 0: a number n means the first n, an array lists them; default every one.
   */
  readonly attempts?: number | ReadonlyArray<number>
  readonly fault: Fault
}

export interface ProxiedRequest {
  readonly method: string
  readonly path: string
  /** request headers, names lower-cased */
  readonly headers: Readonly<Record<string, string>>
  /** 0 for the first request to this method and path, 1 for the next … */
  readonly attempt: number
  /** Date.now() when the request head arrived */
  readonly at: number
  /** the fault applied, if any */
  readonly fault?: Fault["kind"]
  /** status sent (undefined until the headers went out) */
  status?: number
  /** body bytes sent */
  bytesSent: number
  /** Date.now() when the proxy was done with the request */
  finishedAt?: number
}

export interface FaultProxy {
  /** `127.0.0.1:PORT`, to put in image references */
  readonly host: string
  readonly url: string
  /** every request, in order of arrival */
  readonly requests: ReadonlyArray<ProxiedRequest>
  /** replaces the rules (the first matching rule of a request applies) */
  setRules(rules: ReadonlyArray<FaultRule>): void
  /** forgets requests and attempt counts */
  reset(): void
  requestsFor(path: RegExp, method?: string): ProxiedRequest[]
  stop(): Promise<void>
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  206: "Partial Content",
  307: "Temporary Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  416: "Range Not Satisfiable",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
}

// Hop-by-hop headers are the proxy's own business; the others go through unchanged.
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host"])

interface Head {
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  readonly bodyLength: number
}

const parseHead = (text: string): Head | undefined => {
  const [line, ...rest] = text.split("\r\n")
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(line ?? "")
  if (!m) return undefined
  const headers: Record<string, string> = {}
  for (const h of rest) {
    const i = h.indexOf(":")
    if (i <= 0) continue
    const name = h.slice(0, i).trim().toLowerCase()
    const value = h.slice(i + 1).trim()
    // repeated headers (podman sends one Accept per media type) are one comma-separated list
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  return { method: m[1]!, path: m[2]!, headers, bodyLength: Number(headers["content-length"] ?? 0) || 0 }
}

const applies = (rule: FaultRule, method: string, path: string, attempt: number): boolean => {
  if (rule.method !== undefined && rule.method !== method) return false
  if (!rule.path.test(path)) return false
  if (rule.attempts === undefined) return true
  return typeof rule.attempts === "number" ? attempt < rule.attempts : rule.attempts.includes(attempt)
}

/** Starts the proxy in front of `upstream` (e.g. `http://127.0.0.1:5000`). */
export const startFaultProxy = async (upstream: string, initialRules: ReadonlyArray<FaultRule> = []): Promise<FaultProxy> => {
  let rules: ReadonlyArray<FaultRule> = initialRules
  const requests: ProxiedRequest[] = []
  let attempts = new Map<string, number>()
  const sockets = new Set<net.Socket>()
  let stopped = false

  /** Writes with backpressure; false when the client went away. */
  const write = (sock: net.Socket, data: Uint8Array | string): Promise<boolean> =>
    new Promise((resolve) => {
      if (sock.destroyed || stopped) return resolve(false)
      const ok = sock.write(data)
      if (ok) return resolve(true)
      const onDrain = () => {
        sock.off("close", onClose)
        resolve(true)
      }
      const onClose = () => {
        sock.off("drain", onDrain)
        resolve(false)
      }
      sock.once("drain", onDrain)
      sock.once("close", onClose)
    })

  const headText = (status: number, headers: Record<string, string>) =>
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Status"}\r\n` +
    Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("") +
    "connection: close\r\n\r\n"

  /** Sends `body` (an upstream stream) within the byte budget and rate the fault allows. */
  const pump = async (sock: net.Socket, rec: ProxiedRequest, body: ReadableStream<Uint8Array>, limit: number, rate: number | undefined) => {
    const reader = body.getReader()
    // Throttled bodies go out in slices 20 times a second.
    const slice = rate ? Math.max(1, Math.floor(rate / 20)) : Infinity
    try {
      while (rec.bytesSent < limit) {
        const r = await reader.read()
        if (r.done) return true
        let chunk = r.value
        while (chunk.length > 0 && rec.bytesSent < limit) {
          const n = Math.min(chunk.length, slice, limit - rec.bytesSent)
          if (!(await write(sock, chunk.subarray(0, n)))) return false
          rec.bytesSent += n
          chunk = chunk.subarray(n)
          if (rate) await sleep((n / rate) * 1000)
        }
      }
      return true
    } finally {
      reader.cancel().catch(() => undefined)
    }
  }

  const stallUntilClosed = (sock: net.Socket) =>
    new Promise<void>((resolve) => {
      if (sock.destroyed) return resolve()
      sock.once("close", () => resolve())
    })

  const handle = async (sock: net.Socket, head: Head) => {
    const key = `${head.method} ${head.path}`
    const attempt = attempts.get(key) ?? 0
    attempts.set(key, attempt + 1)
    const rule = rules.find((r) => applies(r, head.method, head.path, attempt))
    const fault = rule?.fault
    const rec: ProxiedRequest = {
      method: head.method,
      path: head.path,
      headers: head.headers,
      attempt,
      at: Date.now(),
      ...(fault ? { fault: fault.kind } : {}),
      bytesSent: 0,
    }
    requests.push(rec)
    try {
      if (fault?.kind === "hang") {
        await stallUntilClosed(sock)
        return
      }
      if (fault?.kind === "status") {
        const body = fault.body ?? JSON.stringify({ errors: [{ code: "UNKNOWN", message: `injected HTTP ${fault.status}` }] })
        rec.status = fault.status
        await write(sock, headText(fault.status, {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(body)),
          "docker-distribution-api-version": "registry/2.0",
          ...fault.headers,
        }))
        await write(sock, body)
        rec.bytesSent = Buffer.byteLength(body)
        sock.end()
        return
      }
      const forward: Record<string, string> = {}
      for (const [k, v] of Object.entries(head.headers)) if (!HOP.has(k)) forward[k] = v
      if (fault?.kind === "ignoreRange") delete forward.range
      const res = await fetch(`${upstream}${head.path}`, {
        method: head.method,
        headers: forward,
        redirect: "manual",
        decompress: false,
      } as RequestInit)
      const headers: Record<string, string> = {}
      res.headers.forEach((v, k) => {
        if (!HOP.has(k)) headers[k] = v
      })
      let body: ReadableStream<Uint8Array> | null = res.body
      if (head.method !== "HEAD" && headers["content-length"] === undefined) {
        // a small answer the registry sent chunked: give it a length (blobs always have one)
        const bytes = new Uint8Array(await res.arrayBuffer())
        headers["content-length"] = String(bytes.length)
        body = new Response(bytes).body
      }
      rec.status = res.status
      if (!(await write(sock, headText(res.status, headers)))) return
      if (head.method === "HEAD" || body === null) {
        await body?.cancel()
        sock.end()
        return
      }
      if (fault?.kind === "stall") {
        await body.cancel()
        await stallUntilClosed(sock)
        return
      }
      const limit = fault?.kind === "cut" ? fault.afterBytes : Infinity
      const rate = fault?.kind === "throttle" || fault?.kind === "cut" ? fault.bytesPerSecond : undefined
      const whole = await pump(sock, rec, body, limit, rate)
      if (!whole || fault?.kind !== "cut") {
        sock.end()
        return
      }
      if (fault.end === "stall") {
        await stallUntilClosed(sock)
      } else {
        // Let the bytes sent so far reach the client first: Bun's fetch drops data that arrives
        // together with the close, which would make the cut point depend on timing.
        await (fault.until ? fault.until() : sleep(150))
        if (sock.destroyed) return
        if (fault.end === "short") sock.end()
        else sock.resetAndDestroy()
      }
    } catch {
      if (!sock.destroyed) sock.destroy()
    } finally {
      rec.finishedAt = Date.now()
    }
  }

  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.on("close", () => sockets.delete(sock))
    sock.on("error", () => undefined)
    let buf = Buffer.alloc(0)
    let started = false
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      if (started) return
      if (buf[0] === 0x16) {
        // A TLS handshake (a client trying https first): answer as Go's server does, so that the
        // client fails fast and falls back to plain HTTP.
        started = true
        sock.end("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
        return
      }
      const end = buf.indexOf("\r\n\r\n")
      if (end < 0) return
      const head = parseHead(buf.subarray(0, end).toString("latin1"))
      if (!head) {
        sock.destroy()
        return
      }
      started = true
      const rest = () => buf.length - end - 4
      // requests with a body (none from a pulling client, but be correct): wait for it, drop it
      const go = () => void handle(sock, head)
      if (rest() >= head.bodyLength) go()
      else {
        const wait = () => {
          if (rest() >= head.bodyLength) {
            sock.off("data", wait)
            go()
          }
        }
        sock.on("data", wait)
      }
    }
    sock.on("data", onData)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  const host = `127.0.0.1:${port}`
  return {
    host,
    url: `http://${host}`,
    requests,
    setRules(next) {
      rules = next
    },
    reset() {
      requests.length = 0
      attempts = new Map()
    },
    requestsFor(path, method) {
      return requests.filter((r) => path.test(r.path) && (method === undefined || r.method === method))
    },
    async stop() {
      stopped = true
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** The path of a blob request for `digest` (any repository). */
export const blobPath = (digest: string): RegExp => new RegExp(`/blobs/${digest}$`)
