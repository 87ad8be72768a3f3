/**
 * Which of our layers podman is using: containers/storage writes
 * `<graphroot>/overlay/<id>/additionallayer` holding the path of the ALS layer it uses
 * (ALS-PROTOCOL.md §5), and the kernel keeps that layer as an overlay lowerdir while the
 * client's layer exists. Those layers must never be removed.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { isDigest } from "../domain/Digest.ts"

/** Where podman keeps its graph root by default, for root and for this user. */
export const defaultGraphroots = (): ReadonlyArray<string> => {
  const uid = process.getuid?.() ?? 0
  const home = os.homedir()
  const xdg = process.env.XDG_DATA_HOME || path.join(home, ".local", "share")
  return uid === 0 ? ["/var/lib/containers/storage"] : [path.join(xdg, "containers", "storage")]
}

/** Layer digests of the store at `root` named by some graph root's `additionallayer` file. */
export const layersInUse = async (root: string, graphroots: ReadonlyArray<string>): Promise<Set<string>> => {
  const inUse = new Set<string>()
  const realRoot = await fs.realpath(root).catch(() => path.resolve(root))
  for (const g of graphroots) {
    const overlay = path.join(g, "overlay")
    const ids = await fs.readdir(overlay).catch(() => [] as string[])
    for (const id of ids) {
      const text = await fs.readFile(path.join(overlay, id, "additionallayer"), "utf8").catch(() => undefined)
      if (text === undefined) continue
      const p = text.trim()
      // the path may go through the :ref view or a TOC alias: resolve it to the real directory
      const real = await fs.realpath(p).catch(() => p)
      if (path.dirname(real) === realRoot && isDigest(path.basename(real))) inUse.add(path.basename(real))
      else if (isDigest(path.basename(p))) inUse.add(path.basename(p))
    }
  }
  return inUse
}
