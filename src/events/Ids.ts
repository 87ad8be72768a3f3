/**
 * Where event ids come from. A service, so that replay and tests can swap the random source
 * for a deterministic one.
 */
import { randomUUID } from "node:crypto"
import { Context, Layer } from "effect"

export class Ids extends Context.Tag("als/Ids")<Ids, { readonly next: () => string }>() {}

export const IdsLive: Layer.Layer<Ids> = Layer.succeed(Ids, { next: () => randomUUID() })

/** `prefix-1`, `prefix-2`, …: for tests and replays that compare ids. */
export const IdsSequential = (prefix = "id"): Layer.Layer<Ids> =>
  Layer.sync(Ids, () => {
    let n = 0
    return { next: () => `${prefix}-${++n}` }
  })
