import { Context } from "effect"
import { storePaths, type StorePaths } from "../domain/StorePaths.ts"

/** Which store this process works on; provided once, at composition. */
export class StoreConfig extends Context.Tag("als/StoreConfig")<StoreConfig, {
  readonly paths: StorePaths
  /** `trusted.overlay.opaque` for rootful stores, `user.overlay.opaque` for rootless ones */
  readonly opaqueXattr: "trusted.overlay.opaque" | "user.overlay.opaque"
}>() {}

export const storeConfigFor = (root: string, uid = process.getuid?.() ?? 0): Context.Tag.Service<StoreConfig> => ({
  paths: storePaths(root),
  opaqueXattr: uid === 0 ? "trusted.overlay.opaque" : "user.overlay.opaque",
})
