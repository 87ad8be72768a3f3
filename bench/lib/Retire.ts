/**
 * Trees a run made are set aside, not deleted, until the benchmark ends.
 *
 * Why: ext4 will not hand out an inode freed less than 60 s ago (300 s while its inode table
 * block is dirty) and checks every candidate it skips (`recently_deleted`, `find_inode_bit`),
 * reading inode table blocks as it goes. A tree deleted just before a run made every file
 * create of that run scan the freed inodes: 5,000 creates from Python took 4-5 s right after
 * a delete instead of under 1 s, 26% of the samples in `recently_deleted` alone (`perf`). The
 * tool that ran after a delete was slowed, the one after a pause was not, whatever the tool.
 * Renaming a tree aside costs nothing; the work directory, trash included, goes at the end.
 */
import { mkdirSync, renameSync, rmSync } from "node:fs"
import { basename, join } from "node:path"

let retired = 0

/** Moves `dir` under `<workDir>/retired/`; falls back to deleting it when it cannot be moved. */
export const retire = (workDir: string, dir: string): void => {
  const bin = join(workDir, "retired")
  try {
    mkdirSync(bin, { recursive: true })
    renameSync(dir, join(bin, `${String(++retired).padStart(4, "0")}-${basename(dir)}`))
  } catch {
    rmSync(dir, { recursive: true, force: true })
  }
}
