/**
 * A RegistryTransport that passes every request on to another one (the live network) and
 * writes down the exchange: the request's method, URL and selecting headers, the answer's
 * status and headers, and its body, which is copied into the recording's blobs/ as the client
 * reads it (streamed: memory does not grow with the blob).
 */
import { createHash } from "node:crypto"
import type { TransportRequest } from "../registry/RegistryTransport.ts"
import { BlobSink, type Exchange, type ExchangeRequest, type ExchangeResponse, recordError } from "./Recording.ts"

type FetchFn = (url: string, init: TransportRequest) => Promise<Response>

/** Request headers that change what a registry answers (and so are part of an exchange). */
export const SELECTING_HEADERS = ["accept", "range", "content-type"] as const

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

const headerRecord = (h: RequestInit["headers"] | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  if (h === undefined) return out
  new Headers(h).forEach((value, name) => {
    out[name.toLowerCase()] = value
  })
  return out
}

/** What is recorded of a request: never credentials, never a request body. */
export const describeRequest = (url: string, init: TransportRequest): ExchangeRequest => {
  const all = headerRecord(init.headers)
  const headers: Record<string, string> = {}
  for (const name of SELECTING_HEADERS) if (all[name] !== undefined) headers[name] = all[name]!
  const auth = all.authorization?.split(" ")[0]?.toLowerCase()
  const body = init.body
  const bodyDigest = typeof body === "string" || body instanceof Uint8Array
    ? `sha256:${createHash("sha256").update(body).digest("hex")}`
    : body instanceof URLSearchParams
    ? `sha256:${createHash("sha256").update(body.toString()).digest("hex")}`
    : undefined
  return {
    method: (init.method ?? "GET").toUpperCase(),
    url,
    headers,
    ...(auth ? { auth } : {}),
    ...(bodyDigest ? { bodyDigest } : {}),
    ...(init.insecureTls ? { insecureTls: true } : {}),
  }
}

export interface TransportRecorder {
  readonly fetch: FetchFn
  /** The exchanges so far, bodies closed (a body the client never finished counts as incomplete). */
  readonly finish: () => ReadonlyArray<Exchange>
}

export const makeRecordingTransport = (dir: string, inner: FetchFn): TransportRecorder => {
  const exchanges: Array<{ seq: number; request: ExchangeRequest; response?: Omit<ExchangeResponse, "body">; sink?: BlobSink; error?: Exchange["error"] }> = []

  const fetch: FetchFn = async (url, init) => {
    const record: (typeof exchanges)[number] = { seq: exchanges.length, request: describeRequest(url, init) }
    exchanges.push(record)
    let res: Response
    try {
      res = await inner(url, init)
    } catch (e) {
      record.error = recordError(e)
      throw e
    }
    const headers: Record<string, string> = {}
    res.headers.forEach((value, name) => {
      if (name.toLowerCase() !== "set-cookie") headers[name.toLowerCase()] = value
    })
    record.response = { status: res.status, ...(res.statusText ? { statusText: res.statusText } : {}), headers }
    const sink = new BlobSink(dir, record.seq)
    record.sink = sink
    if (!res.body || NULL_BODY_STATUS.has(res.status)) {
      sink.finish(true)
      return res
    }
    const reader = res.body.getReader()
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let r: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>
        try {
          r = await reader.read()
        } catch (e) {
          sink.finish(false, recordError(e))
          controller.error(e)
          return
        }
        if (r.done) {
          sink.finish(true)
          controller.close()
          return
        }
        sink.write(r.value)
        controller.enqueue(r.value)
      },
      cancel(reason) {
        sink.finish(false)
        return reader.cancel(reason)
      },
    })
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers })
  }

  const finish = (): ReadonlyArray<Exchange> =>
    exchanges.map((x) => ({
      seq: x.seq,
      request: x.request,
      ...(x.response && x.sink ? { response: { ...x.response, body: x.sink.finish(false) } } : {}),
      ...(x.error ? { error: x.error } : {}),
    }))

  return { fetch, finish }
}
