/**
 * A RegistryTransport that answers from a recording and never touches the network.
 *
 * A request is matched to a recorded exchange by method, URL, selecting headers (accept,
 * range, content-type) and Authorization scheme. Layers run in parallel, so requests may come
 * in another order than recorded: each distinct request has its own queue of recorded answers,
 * consumed in recorded order (a retried request gets its recorded failures, then its success).
 * A request with no answer left fails loudly: it is listed in `unrecorded` and the fetch
 * rejects with a message that names it.
 */
import * as fs from "node:fs"
import { openRegularFile, refusalText } from "../sys/RegularFile.ts"
import type { TransportRequest } from "../registry/RegistryTransport.ts"
import { blobFile, type Exchange, type ExchangeRequest, type RecordedBody, reviveError } from "./Recording.ts"
import { describeRequest } from "./RecordingTransport.ts"

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])
const CHUNK = 64 * 1024

export const requestKey = (r: ExchangeRequest): string =>
  JSON.stringify([r.method, r.url, r.headers.accept ?? "", r.headers.range ?? "", r.headers["content-type"] ?? "", r.auth ?? ""])

export const describeKey = (r: ExchangeRequest): string => {
  const h = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`)
  if (r.auth) h.push(`authorization: ${r.auth} …`)
  return `${r.method} ${r.url}${h.length ? ` (${h.join("; ")})` : ""}`
}

/** A recorded body as a stream read from blobs/ in chunks; ends with the recorded error, if any. */
const bodyStream = (dir: string, body: RecordedBody, missing: (file: string) => void): ReadableStream<Uint8Array> => {
  let fd: number | undefined
  const close = () => {
    if (fd !== undefined && fd >= 0) fs.closeSync(fd)
    fd = -1
  }
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (fd === -1) return
      if (fd === undefined && body.digest) {
        const file = blobFile(dir, body.digest)
        // never blocks on a FIFO; a regular file only (RegularFile.ts explains why)
        const opened = openRegularFile(file, Number.MAX_SAFE_INTEGER)
        if (opened.kind !== "ok") {
          if (opened.kind === "missing") missing(file)
          fd = -1
          controller.error(new Error(opened.kind === "missing"
            ? `the recording has no ${file} (a body it needs)`
            : `the recording's ${file}: ${refusalText(opened)}`))
          return
        }
        fd = opened.value.fd
      }
      if (fd !== undefined) {
        const buf = new Uint8Array(CHUNK)
        const n = fs.readSync(fd, buf, 0, CHUNK, null)
        if (n > 0) {
          controller.enqueue(buf.subarray(0, n))
          return
        }
      }
      close()
      if (body.error) controller.error(reviveError(body.error))
      else controller.close()
    },
    cancel() {
      close()
    },
  })
}

export interface ReplayTransport {
  readonly fetch: (url: string, init: TransportRequest) => Promise<Response>
  /** requests that found no recorded answer */
  readonly unrecorded: ReadonlyArray<ExchangeRequest>
  /** body files the recording lacks */
  readonly missingBlobs: ReadonlyArray<string>
  /** recorded exchanges nobody asked for */
  readonly unused: () => ReadonlyArray<Exchange>
  readonly answered: () => number
}

export const makeReplayTransport = (dir: string, exchanges: ReadonlyArray<Exchange>): ReplayTransport => {
  const queues = new Map<string, Array<Exchange>>()
  for (const x of [...exchanges].sort((a, b) => a.seq - b.seq)) {
    const k = requestKey(x.request)
    queues.set(k, [...(queues.get(k) ?? []), x])
  }
  const unrecorded: Array<ExchangeRequest> = []
  const missingBlobs: Array<string> = []
  let answered = 0

  const fetch = async (url: string, init: TransportRequest): Promise<Response> => {
    const request = describeRequest(url, init)
    const x = queues.get(requestKey(request))?.shift()
    if (!x) {
      unrecorded.push(request)
      throw new Error(`als replay: the recording has no answer for ${describeKey(request)}; the replayed pull asked for something the recorded one did not`)
    }
    answered++
    if (x.error || !x.response) throw reviveError(x.error ?? { name: "Error", message: "recorded without an answer" })
    const r = x.response
    const body = NULL_BODY_STATUS.has(r.status) ? null : bodyStream(dir, r.body, (f) => missingBlobs.push(f))
    return new Response(body, { status: r.status, ...(r.statusText ? { statusText: r.statusText } : {}), headers: r.headers })
  }

  return {
    fetch,
    unrecorded,
    missingBlobs,
    unused: () => [...queues.values()].flat().sort((a, b) => a.seq - b.seq),
    answered: () => answered,
  }
}
