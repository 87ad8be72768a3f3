/**
 * What a pull shows while it runs: NDJSON events (--json), plain lines (not a TTY), or a
 * live block of one line per layer (a TTY). Only presentation lives here.
 *
 * Notices (whom a wait is for) are lines for people, not events: plain and TTY print them on
 * stderr; --json and -q print none (stdout stays exact NDJSON, stderr errors only).
 */
import { Layer } from "effect"
import type { Event } from "../events/Events.ts"
import type { LogEntry } from "../events/EventLog.ts"
import { Reporter } from "../events/Journal.ts"
import { safeText } from "../domain/SafeText.ts"

export const entryJson = (e: LogEntry) => ({
  offset: e.offset,
  time: new Date(e.envelope.time).toISOString(),
  type: e.event._tag,
  ...Object.fromEntries(Object.entries(e.event).filter(([k]) => k !== "_tag")),
  workflow: e.envelope.workflow,
  host: e.envelope.host,
  pid: e.envelope.pid,
  id: e.envelope.id,
})

export const ReporterJson = Layer.succeed(Reporter, {
  event: (e) => process.stdout.write(JSON.stringify(entryJson(e)) + "\n"),
  notice: () => undefined,
})

/** -q: no events, no notices; errors are printed at the edge. */
export const ReporterQuiet = Layer.succeed(Reporter, { event: () => undefined, notice: () => undefined })

/** Where a command's registry waits are told (RegistryConfig.onWait): nowhere with --json or -q. */
export const registryNotices = (json: boolean, quiet: boolean) => (json || quiet ? { onWait: undefined } : {})

const short = (d: string) => d.replace(/^sha256:/, "").slice(0, 12)
export const humanBytes = (n: number) =>
  n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : n < 1 << 30
  ? `${(n / (1 << 20)).toFixed(1)} MiB`
  : `${(n / (1 << 30)).toFixed(2)} GiB`

/**
 * One line per event that matters to a person watching a pull, safe for a terminal: refs,
 * pool paths and registry messages in events came from outside (SafeText.ts).
 */
export const describeEvent = (ev: Event): string | undefined => {
  const line = describeRaw(ev)
  return line === undefined ? undefined : safeText(line)
}

const describeRaw = (ev: Event): string | undefined => {
  switch (ev._tag) {
    case "ManifestResolved":
      return `${ev.ref}: ${ev.layers.length} layers (${ev.platform}, manifest ${short(ev.manifestDigest)})`
    case "LayerFound":
      return `${short(ev.layer)}  found`
    case "LayerLinked":
      return `${short(ev.layer)}  linked from ${ev.poolPath}`
    case "LinkRefused":
      return `${short(ev.layer)}  pool ${ev.pool} not used: ${ev.reason}`
    case "LayerCommitted":
      return ev.source === "pull" ? `${short(ev.layer)}  pulled (${humanBytes(ev.blobSize)})` : undefined
    case "PullCompleted":
      return `${ev.ref}: done in ${(ev.ms / 1000).toFixed(1)}s: ${ev.found} found, ${ev.linked} linked, ${ev.pulled} pulled, ${humanBytes(ev.bytesFetched)} fetched`
    case "PullFailed":
      return `${ev.ref}: FAILED${ev.layer ? ` at layer ${short(ev.layer)}` : ""}: ${ev.reason.message}`
    case "LogRepaired":
      return `log: cut a torn tail of ${ev.droppedBytes} bytes at offset ${ev.cutAt} (a process died mid-write)`
    default:
      return undefined
  }
}

export const ReporterPlain = Layer.succeed(Reporter, {
  event: (e) => {
    // the failure itself is printed once, at the edge, with what to do
    const line = e.event._tag === "PullFailed" ? undefined : describeEvent(e.event)
    if (line) process.stderr.write(line + "\n")
  },
  notice: (line) => void process.stderr.write(line + "\n"),
})

/** A TTY: one live line per layer (state, bytes, rate), redrawn at most 10 times a second. */
export const ReporterTty = Layer.sync(Reporter, () => {
  const layers = new Map<string, { state: string; bytes: number; total: number; started: number }>()
  let drawn = 0
  let last = 0
  const draw = (force: boolean) => {
    const now = Date.now()
    if (!force && now - last < 100) return
    last = now
    let out = drawn > 0 ? `\x1b[${drawn}A` : ""
    for (const [d, l] of layers) {
      const rate = l.bytes / Math.max(0.001, (now - l.started) / 1000)
      const bytes = l.state === "pulling"
        ? `${humanBytes(l.bytes)} / ${humanBytes(l.total)}  ${humanBytes(rate)}/s`
        : ""
      const done = l.state === "pulled" ? humanBytes(l.total) : ""
      out += `\x1b[2K${safeText(short(d), 12)}  ${l.state.padEnd(8)} ${bytes || done}\n`
    }
    drawn = layers.size
    process.stderr.write(out)
  }
  const say = (line: string) => {
    process.stderr.write(`${drawn > 0 ? `\x1b[${drawn}A\x1b[0J` : ""}${line}\n`)
    drawn = 0
    draw(true)
  }
  return {
    event: (e) => {
      const ev = e.event
      switch (ev._tag) {
        case "ManifestResolved":
          say(describeEvent(ev)!)
          for (const l of ev.layers) layers.set(l.digest, { state: "waiting", bytes: 0, total: l.size, started: Date.now() })
          return draw(true)
        case "LayerFound":
        case "LayerLinked": {
          const l = layers.get(ev.layer)
          if (l) l.state = ev._tag === "LayerFound" ? "found" : "linked"
          return draw(true)
        }
        case "LayerCommitted": {
          const l = layers.get(ev.layer)
          if (l && ev.source === "pull") {
            l.state = "pulled"
            l.bytes = l.total
          }
          return draw(true)
        }
        case "PullCompleted":
        case "PullFailed":
          // the final state of each layer stays on screen; the summary goes under it
          draw(true)
          layers.clear()
          drawn = 0
          if (ev._tag === "PullCompleted") process.stderr.write(describeEvent(ev)! + "\n")
          return
        default: {
          const line = describeEvent(ev)
          if (line && ev._tag !== "LayerRemoved") say(line)
        }
      }
    },
    progress: (layer: string, bytes: number) => {
      const l = layers.get(layer)
      if (!l) return
      if (l.state !== "pulling") {
        l.state = "pulling"
        l.started = Date.now()
      }
      l.bytes = bytes
      draw(false)
    },
    // above the live block, which is redrawn under it
    notice: (line: string) => say(line),
  }
})
