// Serve mode in `als doctor` and `als init` (issue 13): with an `als serve` mount up, podman must
// be pointed at the mount, not the store. The mount table is read as text (a stat of the
// mount would be a request to the server); the judgement is pure.

import { describe, expect, test } from "bun:test"
import type { Resolved, StorageSettings } from "../../../src/config/StorageConf.ts"
import { judgeServeMount } from "../../../src/doctor/Checks.ts"
import { alsServeMounts, serveMountsOf } from "../../../src/doctor/Probes.ts"
import { serveModeAdvice } from "../../../src/cli/InitCommand.ts"

const settings = (stores: ReadonlyArray<string>): Resolved => ({
  ok: true,
  settings: {
    file: "/etc/containers/storage.conf",
    source: "system",
    searched: [],
    driver: "overlay",
    graphroot: "/var/lib/containers/storage",
    runroot: "/run/containers/storage",
    additionalLayerStores: stores,
    conf: undefined,
  } as unknown as StorageSettings,
})

describe("the mount table", () => {
  test("only fuse.als mounts are als serve's; octal escapes in mount points are decoded", () => {
    const table = [
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
      "90 22 0:50 / /run/als rw,nosuid,nodev,relatime shared:40 - fuse.als /var/lib/als rw,user_id=0,group_id=0,allow_other",
      "91 22 0:51 / /mnt/with\\040space rw,nosuid,nodev - fuse.als als rw",
      "92 22 0:52 / /mnt/other-fuse rw,nosuid,nodev - fuse.sshfs host:/ rw",
      "93 22 0:53 / /mnt/named-fuse.als rw - tmpfs tmpfs rw",
      "garbage",
      "",
    ].join("\n")
    expect(alsServeMounts(table)).toEqual([
      { mountpoint: "/run/als", source: "/var/lib/als" },
      { mountpoint: "/mnt/with space", source: "als" },
    ])
  })

  test("doctor counts only the mounts that serve its store (and servers that do not name one)", () => {
    const mounts = [
      { mountpoint: "/run/als", source: "/var/lib/als" },
      { mountpoint: "/run/other", source: "/srv/other-store" },
      { mountpoint: "/run/old", source: "als" },
      { mountpoint: "/run/odd", source: "relative/path" },
    ]
    const same = (a: string, b: string) => a === b
    expect(serveMountsOf("/var/lib/als", mounts, same)).toEqual(["/run/als", "/run/old"])
    expect(serveMountsOf("/srv/other-store", mounts, same)).toEqual(["/run/other", "/run/old"])
  })
})

describe("doctor's serve check", () => {
  test("storage.conf listing the mount with :ref is ok; without :ref, or pointing at the store, or not at all, warns with the line to set", () => {
    const root = "/var/lib/als"
    const ok = judgeServeMount(root, ["/run/als"], settings(["/run/als:ref"]))
    expect(ok.status).toBe("ok")
    const noRef = judgeServeMount(root, ["/run/als"], settings(["/run/als"]))
    expect([noRef.status, noRef.fix]).toEqual(["warn", 'write it as "/run/als:ref" in additionallayerstores'])
    const atStore = judgeServeMount(root, ["/run/als"], settings([`${root}:ref`]))
    expect(atStore.status).toBe("warn")
    expect(atStore.detail).toContain(`points podman at the store ${root}`)
    expect(atStore.fix).toContain('additionallayerstores = ["/run/als:ref"]')
    expect(atStore.fix).toContain("point podman at the mount, not the store")
    const none = judgeServeMount(root, ["/run/als"], settings([]))
    expect(none.status).toBe("warn")
    expect(none.detail).toContain("does not list it")
    const broken = judgeServeMount(root, ["/run/als"], { ok: false, failure: { file: "/etc/containers/storage.conf", error: "bad toml" } } as Resolved)
    expect(broken.status).toBe("warn")
  })
})

describe("init's serve paragraph", () => {
  test("names als serve with the store and the mount, and the storage.conf line for the mount", () => {
    const text = serveModeAdvice("/var/lib/als").join("\n")
    expect(text).toContain("als serve --root /var/lib/als /run/als")
    expect(text).toContain('additionallayerstores = ["/run/als:ref"]')
    expect(text).toContain("point podman at the mount, not the store")
  })
})
