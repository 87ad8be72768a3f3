/**
 * The one door through which the registry client reaches the network. Everything the client
 * sends (pings, token requests, manifests, blobs, every redirect hop) goes through `fetch`
 * here, so a recording transport sees a whole pull and a replaying one can stand in for it.
 * Redirects are the client's business: it passes `redirect: "manual"`.
 */
import { Context, Layer } from "effect"

export interface TransportRequest extends RequestInit {
  /** accept any TLS certificate (podman's --tls-verify=false) */
  readonly insecureTls?: boolean
}

export class RegistryTransport extends Context.Tag("als/RegistryTransport")<
  RegistryTransport,
  { readonly fetch: (url: string, init: TransportRequest) => Promise<Response> }
>() {
  /** Global `fetch`, on Bun or Deno. */
  static readonly Live = Layer.sync(RegistryTransport, () => ({ fetch: liveFetch }))
}

const isBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"

const liveFetch = (url: string, init: TransportRequest): Promise<Response> => {
  const { insecureTls, ...rest } = init
  if (insecureTls && isBun && url.startsWith("https:")) {
    // Bun's per-request TLS options; Deno has no per-request switch and needs
    // --unsafely-ignore-certificate-errors=HOST on its command line instead.
    // keeps a client certificate certs.d added (src/config/TlsTransport.ts)
    return fetch(url, { ...rest, tls: { ...(rest as { tls?: object }).tls, rejectUnauthorized: false } } as RequestInit)
  }
  return fetch(url, rest)
}
