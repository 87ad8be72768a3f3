/**
 * Temp directories of one test file, removed once its tests are done: `tempDirs()` at the
 * file's top level registers an afterAll hook and returns a maker, `tmp("als-x-")`.
 */
import { afterAll } from "bun:test"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { removeTempDir } from "./removeTemp.ts"

export const tempDirs = (): ((prefix: string) => string) => {
  const made: string[] = []
  afterAll(() => {
    for (const d of made.splice(0)) removeTempDir(d)
  })
  return (prefix: string) => {
    const d = mkdtempSync(join(tmpdir(), prefix))
    made.push(d)
    return d
  }
}
