// Run external commands from tests with Bun.spawn, with errors that say what ran, where, and
// what it printed, so that a failing podman/skopeo/umoci call is diagnosable from the test log.

export interface RunOptions {
  readonly cwd?: string
  /** Merged over process.env; a value of `undefined` removes the variable. */
  readonly env?: Record<string, string | undefined>
  readonly stdin?: string | Uint8Array
  /** Kill the command (SIGKILL) after this many milliseconds. */
  readonly timeoutMs?: number
}

export interface RunResult {
  readonly cmd: ReadonlyArray<string>
  readonly exitCode: number
  readonly stdout: string
  readonly stderr: string
  readonly durationMs: number
}

const TAIL_CHARS = 6000

const tail = (s: string): string =>
  s.length <= TAIL_CHARS ? s : `…(${s.length - TAIL_CHARS} chars cut)…\n${s.slice(-TAIL_CHARS)}`

/** Quote a command line for humans (and for pasting into a shell). */
export const shellQuote = (cmd: ReadonlyArray<string>): string =>
  cmd.map((a) => (/^[A-Za-z0-9_\-+=.,:/@%^]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(" ")

export class CommandError extends Error {
  override readonly name = "CommandError"
  declare readonly result: RunResult
  constructor(result: RunResult, readonly cwd: string | undefined, readonly timedOut: boolean) {
    super(
      [
        `command ${timedOut ? "timed out" : `failed with exit code ${result.exitCode}`} after ${Math.round(result.durationMs)} ms:`,
        `  $ ${shellQuote(result.cmd)}`,
        ...(cwd ? [`  (in ${cwd})`] : []),
        result.stderr.trim() ? `--- stderr ---\n${tail(result.stderr.trimEnd())}` : "--- stderr: (empty) ---",
        ...(result.stdout.trim() ? [`--- stdout ---\n${tail(result.stdout.trimEnd())}`] : []),
      ].join("\n"),
    )
    // Not enumerable: the message already shows the output, test reporters need not print it twice.
    Object.defineProperty(this, "result", { value: result, enumerable: false })
  }
}

export class CommandNotFoundError extends Error {
  override readonly name = "CommandNotFoundError"
  constructor(readonly command: string, hint?: string) {
    super(`command not found: ${command}${hint ? ` (${hint})` : ""}`)
  }
}

const mergeEnv = (env: RunOptions["env"]): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v
  for (const [k, v] of Object.entries(env ?? {})) {
    if (v === undefined) delete out[k]
    else out[k] = v
  }
  return out
}

/** Run a command and return its result whatever the exit code. */
export const run = async (cmd: ReadonlyArray<string>, opts: RunOptions = {}): Promise<RunResult> => {
  const [bin] = cmd
  if (bin === undefined) throw new Error("run: empty command")
  if (!bin.includes("/") && Bun.which(bin) === null) throw new CommandNotFoundError(bin)
  const started = performance.now()
  const proc = Bun.spawn([...cmd], {
    cwd: opts.cwd,
    env: mergeEnv(opts.env),
    stdin: opts.stdin === undefined ? "ignore" : typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin,
    stdout: "pipe",
    stderr: "pipe",
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs, killSignal: "SIGKILL" as const } : {}),
  })
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ])
  return { cmd: [...cmd], exitCode, stdout, stderr, durationMs: performance.now() - started }
}

/** Run a command; throw a CommandError (with its output) unless it exits 0. */
export const runOk = async (cmd: ReadonlyArray<string>, opts: RunOptions = {}): Promise<RunResult> => {
  const result = await run(cmd, opts)
  if (result.exitCode !== 0) {
    const timedOut = opts.timeoutMs !== undefined && result.durationMs >= opts.timeoutMs
    throw new CommandError(result, opts.cwd, timedOut)
  }
  return result
}

/** Run a command and return its trimmed stdout (throws like runOk). */
export const output = async (cmd: ReadonlyArray<string>, opts: RunOptions = {}): Promise<string> =>
  (await runOk(cmd, opts)).stdout.trim()

/** Absolute path of a command on PATH, or throw a CommandNotFoundError with an install hint. */
export const requireCommand = (name: string, hint?: string): string => {
  const path = Bun.which(name)
  if (path === null) throw new CommandNotFoundError(name, hint)
  return path
}

// ---- mounts -------------------------------------------------------------------------------------

const unescapeMountPath = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

/** Mount points of this mount namespace, in mount order (from /proc/self/mountinfo). */
export const listMounts = async (): Promise<string[]> => {
  const text = await Bun.file("/proc/self/mountinfo").text()
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => unescapeMountPath(l.split(" ")[4] ?? ""))
}

export const isMountPoint = async (path: string): Promise<boolean> => (await listMounts()).includes(path.replace(/\/+$/, ""))

/**
 * Unmount everything mounted at or below `dir`, deepest first (lazily if a mount is busy), so
 * that a following `rm -rf` cannot fail on (or descend into) a leftover overlay or bind mount.
 */
export const unmountUnder = async (dir: string): Promise<string[]> => {
  const root = dir.replace(/\/+$/, "")
  const done: string[] = []
  // Mounts can be stacked on the same point: loop until none is left.
  for (let round = 0; round < 20; round++) {
    const mounts = (await listMounts()).filter((m) => m === root || m.startsWith(`${root}/`))
    if (mounts.length === 0) return done
    // Reverse mount order unmounts children before their parents.
    for (const m of mounts.reverse()) {
      const r = await run(["umount", m])
      if (r.exitCode !== 0) await run(["umount", "-l", m])
      done.push(m)
    }
  }
  const left = (await listMounts()).filter((m) => m === root || m.startsWith(`${root}/`))
  if (left.length > 0) throw new Error(`could not unmount under ${root}: still mounted: ${left.join(", ")}`)
  return done
}
