/**
 * Where event ids come from. A service, so that replay and tests can swap the random source
 * for a deterministic one.
 */
import { Context, Layer } from "effect"

export class Ids extends Context.Tag("als/Ids")<Ids, { readonly next: () => string }>() {}

// Web Crypto's randomUUID (Bun, Deno, Node): loading node:crypto would load node:stream too,
// several ms of every `als lookup`'s start.
export const randomIds: Context.Tag.Service<Ids> = { next: () => globalThis.crypto.randomUUID() }
export const IdsLive: Layer.Layer<Ids> = Layer.succeed(Ids, randomIds)

/** `prefix-1`, `prefix-2`, …: for tests and replays that compare ids. */
export const IdsSequential = (prefix = "id"): Layer.Layer<Ids> =>
  Layer.sync(Ids, () => {
    let n = 0
    return { next: () => `${prefix}-${++n}` }
  })
