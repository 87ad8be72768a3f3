/**
 * Removing test temp directories safely: a directory with something still mounted under it (a
 * FUSE mount a failed test left, say) is left alone, since a recursive removal would walk into
 * the mounted filesystem.
 */
import { readFileSync, rmSync } from "node:fs"

/** Mount points, as /proc/self/mountinfo names them (octal escapes decoded). */
const mountPoints = (): string[] => {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean)
      .map((l) => l.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
  } catch {
    return []
  }
}

/** Removes `dir` and everything in it, unless something is mounted there or below. */
export const removeTempDir = (dir: string): void => {
  if (mountPoints().some((m) => m === dir || m.startsWith(dir + "/"))) return
  try {
    rmSync(dir, { recursive: true, force: true })
  } catch {
    // best effort: a test's clean-up never fails the test run
  }
}
