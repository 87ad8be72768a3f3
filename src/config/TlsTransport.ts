/**
 * The registry transport with podman's per-registry TLS material: each request carries the
 * CAs and client certificate of its host's certs.d directory (or --cert-dir). On Bun as
 * fetch's `tls` option (with the usual roots kept: a `ca` replaces them there), on Deno as an
 * HTTP client made once per directory (its `caCerts` add to the usual roots).
 */
import { Effect, Layer } from "effect"
import { rootCertificates } from "node:tls"
import { RegistryTransport, type TransportRequest } from "../registry/RegistryTransport.ts"
import { certsDirFor, type CertsEnv, certsHostPort, readCertsDir, type TlsMaterial } from "./CertsDir.ts"

const deno = (globalThis as { Deno?: { createHttpClient: (o: Record<string, unknown>) => unknown } }).Deno

/** What to add to a request for `material` on this runtime. */
const tlsInit = (material: TlsMaterial, denoClients: Map<string, unknown>): Record<string, unknown> => {
  if (deno) {
    let client = denoClients.get(material.dir)
    if (!client) {
      client = deno.createHttpClient({
        caCerts: [...material.ca],
        ...(material.client ? { cert: material.client.cert, key: material.client.key } : {}),
      })
      denoClients.set(material.dir, client)
    }
    return { client }
  }
  return {
    tls: {
      ...(material.ca.length ? { ca: [...rootCertificates, ...material.ca] } : {}),
      ...(material.client ? { cert: material.client.cert, key: material.client.key } : {}),
    },
  }
}

/** A fetch that adds each host's TLS material; directories are read once per process. */
export const certsDirFetch = (
  inner: (url: string, init: TransportRequest) => Promise<Response>,
  env: CertsEnv,
) => {
  const byHost = new Map<string, TlsMaterial | undefined>()
  const denoClients = new Map<string, unknown>()
  return (url: string, init: TransportRequest): Promise<Response> => {
    if (!url.startsWith("https:")) return inner(url, init)
    const hostPort = certsHostPort(url)
    if (hostPort === undefined) return inner(url, init)
    let material: TlsMaterial | undefined
    try {
      if (!byHost.has(hostPort)) byHost.set(hostPort, readCertsDir(certsDirFor(hostPort, env)))
      material = byHost.get(hostPort)
    } catch (e) {
      return Promise.reject(e) // a broken certs directory fails the request, naming the file
    }
    if (!material || (material.ca.length === 0 && !material.client)) return inner(url, init)
    return inner(url, { ...init, ...tlsInit(material, denoClients) } as TransportRequest)
  }
}

/** `transport` with certs.d applied (RegistryTransport.Live by default). */
export const withCertsDir = (env: CertsEnv, transport: Layer.Layer<RegistryTransport> = RegistryTransport.Live) =>
  Layer.effect(
    RegistryTransport,
    Effect.map(RegistryTransport, (inner) => ({ fetch: certsDirFetch(inner.fetch, env) })),
  ).pipe(Layer.provide(transport))
