/**
 * At `als serve`'s start: the uses a serving process on this host counted and that process is
 * gone (SIGKILL, a crash) are released, one StaleUsesReleased event per layer. The releases
 * podman sent meanwhile went to a dead mount, so without this they would keep their layers
 * "in use" for gc forever. `als gc` and `als ls` leave them out the same way without writing
 * (src/store/InUse.ts liveUses); podman's own `additionallayer` files still keep what it holds.
 */
import { Effect } from "effect"
import * as os from "node:os"
import { EventLog } from "../events/EventLog.ts"
import { Journal } from "../events/Journal.ts"
import { evolve, initialState } from "../events/Projection.ts"
import { staleUses } from "../store/InUse.ts"
import { processAlive } from "../sys/ProcessAlive.ts"

export const releaseStaleUses = Effect.gen(function*() {
  const journal = yield* Journal
  const state = yield* (yield* EventLog).fold(initialState, evolve)
  const stale = staleUses(state.usesByServer, { host: os.hostname(), pid: process.pid }, processAlive)
  if (stale.length > 0) {
    yield* journal.emitAll(stale.map((s) => ({
      _tag: "StaleUsesReleased" as const,
      layer: s.layer,
      uses: s.uses,
      serverHost: s.host,
      serverPid: s.pid,
      reason: `als serve (pid ${s.pid}) on this host is gone: the releases after it went to a dead mount`,
    })))
  }
  return stale
})
