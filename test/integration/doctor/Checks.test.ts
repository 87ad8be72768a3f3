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
import { type ConfReader, parseLayerStoreEntry, resolveStorage, storageConfSnippet } from "../../../src/config/StorageConf.ts"

describe("storage.conf", () => {
  test("entries split on ':' with ref as the option", () => {
    expect(parseLayerStoreEntry("/var/lib/als:ref")).toEqual({ path: "/var/lib/als", ref: true, unknown: [] })
    expect(parseLayerStoreEntry("/var/lib/als")).toEqual({ path: "/var/lib/als", ref: false, unknown: [] })
  })

  const etc = "/etc/containers/storage.conf"
  const host = { env: {}, uid: 0, home: "/root" }
  const reader = (text: string | undefined): ConfReader => ({
    read: (f) => (f === etc && text !== undefined ? { text } : { missing: true }),
    realpath: () => undefined,
    isOwnedDir: () => false,
  })
  const judgeText = (text: string | undefined, root = "/var/lib/als") => {
    const r = resolveStorage(host, reader(text))
    return judgeStorageConf(root, r, samePathString, { target: etc, snippet: storageConfSnippet(root, r.ok ? r.settings : undefined, host) })
  }
  const judge = (stores: string[], driver = "overlay", roots = 'runroot = "/run/x"\ngraphroot = "/var/x"\n') =>
    judgeText(`[storage]\n${driver ? `driver = "${driver}"\n` : ""}${roots}[storage.options]\nadditionallayerstores = ${JSON.stringify(stores)}\n`)

  test("verdicts: listed with :ref, without :ref, not first, not listed, another driver, no driver, no roots, no file", () => {
    const ok = judge(["/var/lib/als:ref"], "overlay")
    expect(ok.status).toBe("ok")
    expect(ok.detail).toContain(etc)
    expect(ok.facts).toEqual({ file: etc, source: "system", graphroot: "/var/x", runroot: "/run/x", driver: "overlay", additionallayerstores: "/var/lib/als:ref" })
    const noRef = judge(["/var/lib/als"])
    expect(noRef.status).toBe("warn")
    expect(noRef.fix).toContain('"/var/lib/als:ref"')
    expect(judge(["/mnt/other:ref", "/var/lib/als/:ref"]).detail).toContain("only the first")
    const missing = judge(["/mnt/other:ref"])
    expect(missing.status).toBe("warn")
    expect(missing.fix).toContain('additionallayerstores = ["/var/lib/als:ref"]')
    expect(judge(["/var/lib/als:ref"], "vfs").status).toBe("error")
    // podman names the option after the file's driver: with none, no driver reads the store
    const noDriver = judge(["/var/lib/als:ref"], "")
    expect(noDriver.status).toBe("warn")
    expect(noDriver.fix).toContain('driver = "overlay"')
    // podman refuses to start without runroot: nothing else matters
    const noRoots = judge(["/var/lib/als:ref"], "overlay", 'graphroot = "/g"\n')
    expect(noRoots.status).toBe("error")
    expect(noRoots.detail).toContain("runroot must be set")
    const overlayTable = judgeText(`[storage]\ndriver = "overlay"\nrunroot = "/r"\ngraphroot = "/g"\n[storage.options.overlay]\nadditionallayerstores = ["/var/lib/als:ref"]\n`)
    expect(overlayTable.status).toBe("warn")
    expect(overlayTable.detail).toContain("storage.options.overlay.additionallayerstores")
    const bad = judgeText("[storage\n")
    expect(bad.status).toBe("error")
    expect(bad.detail).toContain(etc)
  })

  test("rootless with only a system file: podman takes no stores from it, and doctor says so", () => {
    const user = { env: { XDG_RUNTIME_DIR: "/rt" }, uid: 1000, home: "/home/u" }
    const r = resolveStorage(user, reader(`[storage]\ndriver = "overlay"\nrunroot = "/r"\ngraphroot = "/g"\n[storage.options]\nadditionallayerstores = ["/s:ref"]\n`))
    const c = judgeStorageConf("/s", r, samePathString, { target: "/home/u/.config/containers/storage.conf", snippet: "[storage]" })
    expect(c.status).toBe("warn")
    expect(c.detail).toContain("never its additional layer stores")
    expect(c.facts?.graphroot).toBe("/home/u/.local/share/containers/storage")
    expect(c.fix).toContain("create /home/u/.config/containers/storage.conf")
  })

  test("no storage.conf at all: a warning whose fix is a whole file podman accepts", () => {
    const none = judgeText(undefined, "/s")
    expect(none.status).toBe("warn")
    expect(none.detail).toContain("/etc/containers/storage.conf, /usr/share/containers/storage.conf")
    expect(none.fix).toContain("--storage-opt overlay.additionallayerstore=/s:ref")
    for (const line of ['driver = "overlay"', 'runroot = "/run/containers/storage"', 'graphroot = "/var/lib/containers/storage"', 'additionallayerstores = ["/s:ref"]']) {
      expect(none.fix).toContain(line)
    }
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
