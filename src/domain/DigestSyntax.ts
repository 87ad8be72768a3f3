/**
 * The spelling of an OCI content digest (`sha256:<64 hex>`, `sha512:<128 hex>`) and what can be
 * read from it, without the Effect Schema that Digest.ts builds on it: code on a worker thread
 * (extract/IngestWorker.ts) loads no Effect runtime. Digest.ts re-exports all of it.
 */
import type { Brand } from "effect"

export const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

/** The same type as Digest.ts's Schema `Digest` produces. */
export type Digest = string & Brand.Brand<"Digest">

export const isDigest = (s: string): s is Digest => DIGEST_PATTERN.test(s)

export const digestAlgorithm = (d: Digest): "sha256" | "sha512" =>
  d.startsWith("sha512:") ? "sha512" : "sha256"

export const digestHex = (d: Digest): string => d.slice(d.indexOf(":") + 1)
