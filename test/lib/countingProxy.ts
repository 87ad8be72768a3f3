// An HTTP proxy on 127.0.0.1 in front of a test registry that counts the body bytes it sends
// back (what a client fetched, per request), and can flip one byte of one answer to a Range
// request for a blob: the lazy-pulling tests measure "bytes fetched" with it and corrupt a chunk.
//
//   const proxy = await startCountingProxy(registry.url)
//   await proxy.bytes()                 // body bytes sent to clients so far
//   await proxy.flipOnce("/blobs/sha256:…", "bytes=1234-", 100)
//   await proxy.stop()
//
// It runs in its own process: a test reading files through a FUSE mount with synchronous
// calls blocks its own event loop, and a proxy in that loop could not answer the server the
// reads wait for. The test side talks to it over HTTP (`/__proxy/…`, never forwarded).

export interface ProxiedRequest {
  readonly method: string
  readonly path: string
  readonly range: string | undefined
  readonly status: number
  /** body bytes sent back so far */
  sent: number
  /** a byte of this answer was flipped */
  flipped: boolean
}

export interface CountingProxy {
  readonly host: string
  readonly url: string
  /** body bytes sent to clients so far (all requests) */
  bytes(): Promise<number>
  /** body bytes sent for blob requests */
  blobBytes(): Promise<number>
  requests(): Promise<ProxiedRequest[]>
  /** flips the byte at `at` of the body of the next `times` answers (default 1) to requests whose
   * path contains `path` and whose Range header starts with `rangePrefix` (a client or kernel
   * that retries a failed read sees the corruption again) */
  flipOnce(path: string, rangePrefix: string, at: number, times?: number): Promise<void>
  /** no more flips */
  clearFlips(): Promise<void>
  /** answers every request with 503 from now on (a registry gone) */
  goAway(): Promise<void>
  /** accepts every request from now on and never answers it (a registry that hangs) */
  hang(): Promise<void>
  stop(): Promise<void>
}

const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host", "content-encoding"])

const serveProxy = (upstream: string) => {
  const requests: ProxiedRequest[] = []
  let flip: { match: (r: { path: string; range: string | undefined }) => boolean; at: number; times: number } | undefined
  let gone = false
  let hanging = false
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req) {
      const u = new URL(req.url)
      const path = u.pathname + u.search
      const range = req.headers.get("range") ?? undefined
      if (u.pathname.startsWith("/__proxy/")) return control(u, req)
      if (hanging) {
        requests.push({ method: req.method, path, range, status: 0, sent: 0, flipped: false })
        return new Promise<Response>(() => {})
      }
      if (gone) {
        requests.push({ method: req.method, path, range, status: 503, sent: 0, flipped: false })
        return new Response("gone", { status: 503 })
      }
      const headers = new Headers()
      req.headers.forEach((v, k) => {
        if (!HOP.has(k.toLowerCase())) headers.set(k, v)
      })
      const up = await fetch(upstream.replace(/\/$/, "") + path, {
        method: req.method,
        headers,
        body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer(),
        redirect: "manual",
        decompress: false,
      } as RequestInit)
      const rec: ProxiedRequest = { method: req.method, path, range, status: up.status, sent: 0, flipped: false }
      requests.push(rec)
      const out = new Headers()
      up.headers.forEach((v, k) => {
        if (!HOP.has(k.toLowerCase())) out.set(k, v)
      })
      let doFlip: number | undefined
      if (flip && flip.match({ path, range: range ?? undefined })) {
        doFlip = flip.at
        if (--flip.times <= 0) flip = undefined
      }
      if (!up.body || req.method === "HEAD") return new Response(null, { status: up.status, headers: out })
      const reader = up.body.getReader()
      let pos = 0
      const body = new ReadableStream<Uint8Array>({
        async pull(ctl) {
          const r = await reader.read()
          if (r.done) return ctl.close()
          let chunk = r.value
          if (doFlip !== undefined && doFlip >= pos && doFlip < pos + chunk.length) {
            chunk = chunk.slice()
            chunk[doFlip - pos]! ^= 0xff
            rec.flipped = true
          }
          pos += chunk.length
          rec.sent += chunk.length
          ctl.enqueue(chunk)
        },
        cancel() {
          void reader.cancel().catch(() => {})
        },
      })
      return new Response(body, { status: up.status, headers: out })
    },
  })
  async function control(u: URL, req: Request): Promise<Response> {
    switch (u.pathname) {
      case "/__proxy/requests":
        return Response.json(requests)
      case "/__proxy/flip": {
        const { path, rangePrefix, at, times } = (await req.json()) as { path: string; rangePrefix: string; at: number; times: number }
        flip = { match: (r) => r.path.includes(path) && (r.range ?? "").startsWith(rangePrefix), at, times }
        return Response.json({ ok: true })
      }
      case "/__proxy/noflip": {
        flip = undefined
        return Response.json({ ok: true })
      }
      case "/__proxy/gone":
        gone = true
        return Response.json({ ok: true })
      case "/__proxy/hang":
        hanging = true
        return Response.json({ ok: true })
      default:
        return new Response("no", { status: 404 })
    }
  }
  return server
}

/** Starts the proxy in its own process (see above). */
export const startCountingProxy = async (upstream: string): Promise<CountingProxy> => {
  const proc = Bun.spawn([process.execPath, import.meta.path, upstream], { stdout: "pipe", stderr: "inherit" })
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader()
  let out = ""
  while (!out.includes("\n")) {
    const r = await reader.read()
    if (r.done) throw new Error(`counting proxy exited: ${out}`)
    out += new TextDecoder().decode(r.value)
  }
  const port = Number(out.trim())
  const host = `127.0.0.1:${port}`
  const url = `http://${host}`
  const get = async () => (await (await fetch(`${url}/__proxy/requests`)).json()) as ProxiedRequest[]
  return {
    host,
    url,
    requests: get,
    bytes: async () => (await get()).reduce((a, r) => a + r.sent, 0),
    blobBytes: async () => (await get()).filter((r) => r.path.includes("/blobs/")).reduce((a, r) => a + r.sent, 0),
    flipOnce: async (path, rangePrefix, at, times = 1) => {
      await fetch(`${url}/__proxy/flip`, { method: "POST", body: JSON.stringify({ path, rangePrefix, at, times }) })
    },
    clearFlips: async () => {
      await fetch(`${url}/__proxy/noflip`)
    },
    goAway: async () => {
      await fetch(`${url}/__proxy/gone`)
    },
    hang: async () => {
      await fetch(`${url}/__proxy/hang`)
    },
    stop: async () => {
      proc.kill()
      await proc.exited
    },
  }
}

if (import.meta.main) {
  const server = serveProxy(process.argv[2]!)
  process.stdout.write(`${server.port}\n`)
}
