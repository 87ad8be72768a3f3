/**
 * Imported by bin/als.ts before `effect`, and undone by `restoreProcess()` once effect's
 * modules are initialised.
 *
 * Why: effect's logger module reads `process.stdout` when it loads (to decide on colours), and
 * in a compiled Bun binary the first read of `process.stdout` builds the stream and loads
 * node:stream, 11-18 ms: a fifth of an `als lookup`, which prints through `console.log` and
 * never needs the stream. While effect loads, `process` is a view of itself without
 * `stdout`, so effect's logger takes it for a non-terminal (als does not print through
 * effect's logger). Only under Bun; elsewhere reading `process.stdout` is cheap.
 */
const g = globalThis as { process?: object; Bun?: unknown }
const real = g.process

if (g.Bun !== undefined && real !== undefined) {
  try {
    g.process = new Proxy(real, {
      get: (target, key) => (key === "stdout" ? undefined : Reflect.get(target, key, target)),
      has: (target, key) => key !== "stdout" && Reflect.has(target, key),
    })
  } catch {
    // a runtime where `process` cannot be replaced: it loads the stream, nothing worse
  }
}

/** Puts the real `process` back. */
export const restoreProcess = (): void => {
  if (real !== undefined && g.process !== real) g.process = real
}
