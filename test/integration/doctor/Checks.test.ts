// The pure half of `als doctor`: storage.conf reading and the verdicts, from observations given as data.
import { describe, expect, test } from "bun:test"
import {
  judgeDType,
  judgeFsType,
  judgeLog,
  judgePodman,
  judgeStorageConf,
  judgeStore,
  samePathString,
  summarize,
} from "../../../src/doctor/Checks.ts"
import { parseLayerStoreEntry, parseStorageConf, storageConfCandidates } from "../../../src/doctor/StorageConf.ts"

describe("storage.conf", () => {
  test("driver and additionallayerstores are read from their tables, comments and multi-line arrays included", () => {
    const conf = parseStorageConf(`
# a comment with additionallayerstores = ["/nope"]
[storage]
driver = "overlay"   # the only driver with ALS
graphroot = "/var/lib/containers/storage"

[storage.options]
additionalimagestores = [ "/images" ]
additionallayerstores = [
  "/var/lib/als:ref",  # ours
  '/mnt/stargz'
]
[storage.options.overlay]
mountopt = "nodev"
`)
    expect(conf).toEqual({
      driver: "overlay",
      graphroot: "/var/lib/containers/storage",
      runroot: undefined,
      additionalLayerStores: ["/var/lib/als:ref", "/mnt/stargz"],
    })
    expect(parseStorageConf("[storage]\ndriver='vfs'\n").driver).toBe("vfs")
  })

  test("entries split on ':' with ref as the option", () => {
    expect(parseLayerStoreEntry("/var/lib/als:ref")).toEqual({ path: "/var/lib/als", ref: true, unknown: [] })
    expect(parseLayerStoreEntry("/var/lib/als")).toEqual({ path: "/var/lib/als", ref: false, unknown: [] })
  })

  test("the file podman reads: $CONTAINERS_STORAGE_CONF alone, else the user's then the system's", () => {
    expect(storageConfCandidates({ CONTAINERS_STORAGE_CONF: "/x.conf" }, 1000, "/home/u")).toEqual(["/x.conf"])
    expect(storageConfCandidates({}, 0, "/root")).toEqual(["/etc/containers/storage.conf", "/usr/share/containers/storage.conf"])
    expect(storageConfCandidates({}, 1000, "/home/u")[0]).toBe("/home/u/.config/containers/storage.conf")
    expect(storageConfCandidates({ XDG_CONFIG_HOME: "/cfg" }, 1000, "/home/u")[0]).toBe("/cfg/containers/storage.conf")
  })

  const judge = (stores: string[], driver = "overlay", roots = { runroot: "/run/x", graphroot: "/var/x" }) =>
    judgeStorageConf("/var/lib/als", [{ path: "/etc/containers/storage.conf", exists: true, conf: { driver, ...roots, additionalLayerStores: stores } }], samePathString)

  test("verdicts: listed with :ref, without :ref, not first, not listed, another driver, no file", () => {
    expect(judge(["/var/lib/als:ref"], "overlay").status).toBe("ok")
    const noRef = judge(["/var/lib/als"])
    expect(noRef.status).toBe("warn")
    expect(noRef.fix).toContain('"/var/lib/als:ref"')
    expect(judge(["/mnt/other:ref", "/var/lib/als/:ref"]).detail).toContain("only the first")
    const missing = judge(["/mnt/other:ref"])
    expect(missing.status).toBe("warn")
    expect(missing.fix).toContain('additionallayerstores = ["/var/lib/als:ref"]')
    expect(judge(["/var/lib/als:ref"], "vfs").status).toBe("error")
    const noRoots = judge(["/var/lib/als:ref"], "overlay", { runroot: "", graphroot: "/g" })
    expect(noRoots.status).toBe("warn")
    expect(noRoots.detail).toContain("runroot")
    const none = judgeStorageConf("/s", [{ path: "/a", exists: false }, { path: "/b", exists: false }], samePathString)
    expect(none.status).toBe("warn")
    expect(none.fix).toContain("--storage-opt overlay.additionallayerstore=/s:ref")
  })
})

describe("verdicts", () => {
  test("podman's version says which layers it takes from a store", () => {
    expect(judgePodman({ output: "podman version 4.3.1\n" }).detail).toContain("compressed blob digest")
    const v51 = judgePodman({ output: "podman version 5.1.2" }).detail
    expect(v51).toContain("TOC digest")
    expect(v51).not.toContain("DiffID")
    expect(judgePodman({ output: "podman version 5.4.2" }).detail).toContain("DiffID")
    expect(judgePodman({ missing: true }).status).toBe("warn")
    expect(judgePodman({ error: "runroot must be set" }).status).toBe("error")
  })

  test("filesystems: ext4 fine, tmpfs warned, xfs without ftype an error", () => {
    expect(judgeFsType(0xef53).status).toBe("ok")
    expect(judgeFsType(0x01021994).status).toBe("warn")
    expect(judgeDType("xfs", 0).status).toBe("error")
    expect(judgeDType("xfs", 1).status).toBe("ok")
    expect(judgeDType("ext4", undefined).status).toBe("ok")
  })

  test("the store: missing → run als init; a path podman cannot name", () => {
    expect(judgeStore("/s", { exists: false, isDir: false, hasAlsDir: false }).fix).toBe("create the store: als init --root /s")
    expect(judgeStore("/a:b", { exists: true, isDir: true, hasAlsDir: true }).status).toBe("error")
  })

  test("the log: damage names the frame; a torn tail only warns", () => {
    const base = { ok: false, frames: 9, size: 900, problemsOmitted: 0 }
    const damaged = judgeLog("/s/.als/log", { exists: true, report: { ...base, problems: [{ offset: 412, index: 4, kind: "checksum", problem: "checksum mismatch", tail: false }] } })
    expect(damaged.status).toBe("error")
    expect(damaged.detail).toContain("frame 4 (byte 412)")
    const torn = judgeLog("/s/.als/log", { exists: true, report: { ...base, problems: [{ offset: 880, index: 9, kind: "truncated", problem: "cut", tail: true }] } })
    expect(torn.status).toBe("warn")
    expect(judgeLog("/s/.als/log", { exists: false }).status).toBe("ok")
  })

  test("errors fail the run, warnings do not", () => {
    const c = (status: "ok" | "warn" | "error") => ({ id: status, title: status, status, detail: "" })
    expect(summarize([c("ok"), c("warn")])).toEqual({ ok: true, errors: 0, warnings: 1, exitCode: 0 })
    expect(summarize([c("ok"), c("error")]).exitCode).toBe(1)
  })
})
