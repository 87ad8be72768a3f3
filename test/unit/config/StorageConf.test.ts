// podman's storage.conf as podman 4.3.1 reads it: parsing (smol-toml, typed, wrong types
// refused), which file wins, what a rootless user ends up with, and the snippet als init prints.
import { describe, expect, test } from "bun:test"
import { parse } from "smol-toml"
import { type ConfReader, type Host, parseStorageConf, resolveStorage, storageConfSnippet } from "../../../src/config/StorageConf.ts"

const files = (map: Record<string, string>, dirs: ReadonlyArray<string> = []): ConfReader => ({
  read: (f) => (f in map ? { text: map[f]! } : { missing: true }),
  realpath: () => undefined,
  isOwnedDir: (p) => dirs.includes(p),
})
const root = (env: Record<string, string> = {}): Host => ({ env, uid: 0, home: "/root" })
const user = (env: Record<string, string> = {}): Host => ({ env, uid: 1000, home: "/home/u" })
const full = (g: string, extra = "") => `[storage]\ndriver = "overlay"\ngraphroot = "${g}"\nrunroot = "/run/${g.replaceAll("/", "_")}"\n${extra}`

const settings = (host: Host, reader: ConfReader) => {
  const r = resolveStorage(host, reader)
  if (!r.ok) throw new Error(`${r.failure.file}: ${r.failure.error}`)
  return r.settings
}

describe("parseStorageConf", () => {
  test("reads driver, roots, rootless_storage_path and [storage.options] additionallayerstores", () => {
    const r = parseStorageConf(`# comment\n[storage]\ndriver = "overlay" # trailing\ngraphroot = '/g'\nrunroot = "/r"\nrootless_storage_path = "$HOME/s"\n\n[storage.options]\nadditionallayerstores = [\n  "/a:ref", # one\n  '/b',\n]\n`)
    expect(r).toEqual({ ok: true, value: { driver: "overlay", graphroot: "/g", runroot: "/r", rootlessStoragePath: "$HOME/s", additionalLayerStores: ["/a:ref", "/b"], ignoredKeys: [] } })
  })

  test("additionallayerstores under [storage.options.overlay] is reported as ignored, not used", () => {
    const r = parseStorageConf(`[storage]\ndriver = "overlay"\n[storage.options.overlay]\nadditionallayerstores = ["/a:ref"]\n`)
    expect(r.ok && r.value.additionalLayerStores).toEqual([])
    expect(r.ok && r.value.ignoredKeys).toEqual(["storage.options.overlay.additionallayerstores"])
  })

  test("syntax errors name the line; values of the wrong type are refused", () => {
    const bad = parseStorageConf(`[storage]\ndriver = "overlay"\n[storage\n`)
    expect(bad.ok).toBe(false)
    expect(!bad.ok && bad.error).toContain("line 3")
    expect(parseStorageConf(`[storage]\ngraphroot = 7\n`)).toEqual({ ok: false, error: "storage.graphroot must be a string" })
    expect(parseStorageConf(`[storage.options]\nadditionallayerstores = "/a:ref"\n`)).toEqual({ ok: false, error: "storage.options.additionallayerstores must be an array of strings" })
    expect(parseStorageConf(`storage = 1\n`).ok).toBe(false)
    // a hand-written reader would take this as a table header; TOML says it is a string
    const s = parseStorageConf(`[storage]\ngraphroot = """\n[storage.options]"""\nrunroot = "/r"\n`)
    expect(s.ok && s.value.graphroot).toBe("[storage.options]")
  })

  test("an empty file is valid and says nothing", () => {
    expect(parseStorageConf("")).toEqual({ ok: true, value: { additionalLayerStores: [], ignoredKeys: [] } })
  })
})

describe("resolveStorage as root", () => {
  const etc = "/etc/containers/storage.conf"
  const usr = "/usr/share/containers/storage.conf"

  test("CONTAINERS_STORAGE_CONF wins over every other file", () => {
    const s = settings(root({ CONTAINERS_STORAGE_CONF: "/tmp/s.conf", XDG_CONFIG_HOME: "/x" }), files({ "/tmp/s.conf": full("/tmp/g"), [etc]: full("/etc-g"), "/x/containers/storage.conf": full("/x-g") }))
    expect([s.file, s.source, s.graphroot, s.driver]).toEqual(["/tmp/s.conf", "CONTAINERS_STORAGE_CONF", "/tmp/g", "overlay"])
  })

  test("CONTAINERS_STORAGE_CONF naming a missing file is a failure, not a fallback", () => {
    const r = resolveStorage(root({ CONTAINERS_STORAGE_CONF: "/tmp/none.conf" }), files({ [etc]: full("/etc-g") }))
    expect(r.ok).toBe(false)
    expect(!r.ok && r.failure.file).toBe("/tmp/none.conf")
  })

  test("$XDG_CONFIG_HOME/containers/storage.conf when it exists, then /etc, then /usr/share, then defaults", () => {
    const all = { "/x/containers/storage.conf": full("/x-g"), [etc]: full("/etc-g"), [usr]: full("/usr-g") }
    expect(settings(root({ XDG_CONFIG_HOME: "/x" }), files(all)).graphroot).toBe("/x-g")
    expect(settings(root({ XDG_CONFIG_HOME: "/nothing" }), files(all)).graphroot).toBe("/etc-g")
    // root never reads ~/.config without XDG_CONFIG_HOME
    expect(settings(root(), files({ ...all, "/root/.config/containers/storage.conf": full("/home-g") })).graphroot).toBe("/etc-g")
    expect(settings(root(), files({ [usr]: full("/usr-g") })).file).toBe(usr)
    const none = settings(root(), files({}))
    expect([none.file, none.source, none.graphroot, none.runroot]).toEqual([undefined, "defaults", "/var/lib/containers/storage", "/run/containers/storage"])
    expect(none.searched.map((f) => f.path)).toEqual([etc, usr])
  })

  test("one file only: an /etc file without graphroot is refused, not filled from /usr/share", () => {
    const r = resolveStorage(root(), files({ [etc]: `[storage]\ndriver = "overlay"\nrunroot = "/r"\n`, [usr]: full("/usr-g") }))
    expect(r.ok).toBe(false)
    expect(!r.ok && r.failure.error).toContain("graphroot must be set")
    const noRun = resolveStorage(root(), files({ [etc]: `[storage]\ndriver = "overlay"\ngraphroot = "/g"\n` }))
    expect(!noRun.ok && noRun.failure.error).toContain("runroot must be set")
  })

  test("a syntax error in the file podman reads is a failure naming the file", () => {
    const r = resolveStorage(root(), files({ [etc]: "[storage\n", [usr]: full("/usr-g") }))
    expect(!r.ok && r.failure.file).toBe(etc)
  })

  test("$UID and environment variables are expanded; STORAGE_DRIVER overrides the driver; overlay2 is overlay", () => {
    const s = settings(root({ CONTAINERS_STORAGE_CONF: "/c", HOME: "/root", STORAGE_DRIVER: "overlay2" }), files({ "/c": `[storage]\ngraphroot = "$HOME/g/\${HOME}"\nrunroot = "/run/$UID/x/$UNSET/y"\n` }))
    expect([s.graphroot, s.runroot, s.driver]).toEqual(["/root/g/root", "/run/0/x/y", "overlay"])
  })
})

describe("resolveStorage for a rootless user", () => {
  test("no file: XDG_DATA_HOME or ~/.local/share, XDG_RUNTIME_DIR or /run/user/UID; the system's stores are not used", () => {
    const sys = { "/etc/containers/storage.conf": full("/var/lib/containers/storage", `[storage.options]\nadditionallayerstores = ["/als:ref"]\n`) }
    const a = settings(user(), files(sys, ["/run/user/1000"]))
    expect([a.file, a.graphroot, a.runroot, a.driver, a.additionalLayerStores]).toEqual([undefined, "/home/u/.local/share/containers/storage", "/run/user/1000/containers", "overlay", []])
    const b = settings(user({ XDG_DATA_HOME: "/d", XDG_RUNTIME_DIR: "/rt" }), files({}))
    expect([b.graphroot, b.runroot, b.driver]).toEqual(["/d/containers/storage", "/rt/containers", "vfs"])
    expect(settings(user(), files({})).runroot).toBe("/tmp/podman-run-1000/containers")
  })

  test("the system's rootless_storage_path is the default graph root", () => {
    const s = settings(user(), files({ "/usr/share/containers/storage.conf": `[storage]\ndriver = "overlay"\nrunroot = "/r"\ngraphroot = "/g"\nrootless_storage_path = "/shared/$UID/storage"\n` }))
    expect(s.graphroot).toBe("/shared/1000/storage")
  })

  test("the user's own file (~/.config, or XDG_CONFIG_HOME) is read; what it leaves out comes from the rootless defaults", () => {
    const own = `[storage]\ndriver = "overlay"\n[storage.options]\nadditionallayerstores = ["/als:ref"]\n`
    const s = settings(user({ XDG_RUNTIME_DIR: "/rt" }), files({ "/home/u/.config/containers/storage.conf": own }))
    expect([s.file, s.source, s.graphroot, s.runroot, s.additionalLayerStores]).toEqual(["/home/u/.config/containers/storage.conf", "rootless", "/home/u/.local/share/containers/storage", "/rt/containers", ["/als:ref"]])
    const x = settings(user({ XDG_CONFIG_HOME: "/cfg", XDG_RUNTIME_DIR: "/rt" }), files({ "/cfg/containers/storage.conf": full("/mine") }))
    expect([x.file, x.graphroot]).toEqual(["/cfg/containers/storage.conf", "/mine"])
  })
})

describe("storageConfSnippet", () => {
  test("on a host with no storage.conf it is a complete file podman accepts, listing the store first with :ref", () => {
    const host = root()
    const none = settings(host, files({}))
    const text = storageConfSnippet("/var/lib/als", none, host)
    const doc = parse(text) as { storage: { driver: string; graphroot: string; runroot: string; options: { additionallayerstores: string[] } } }
    expect(doc.storage.driver).toBe("overlay")
    expect(doc.storage.graphroot).toBe("/var/lib/containers/storage")
    expect(doc.storage.runroot).toBe("/run/containers/storage")
    expect(doc.storage.options.additionallayerstores).toEqual(["/var/lib/als:ref"])
    // and it resolves back to the same settings with the store added
    const back = settings(host, files({ "/etc/containers/storage.conf": text }))
    expect([back.graphroot, back.runroot, back.driver, back.additionalLayerStores]).toEqual([none.graphroot, none.runroot, "overlay", ["/var/lib/als:ref"]])
  })

  test("keeps the graph root podman uses now and the stores already listed, and quotes paths safely", () => {
    const host = root({ CONTAINERS_STORAGE_CONF: "/c" })
    const cur = settings(host, files({ "/c": full("/data/podman", `[storage.options]\nadditionallayerstores = ["/other:ref", "/my \\"als\\":ref"]\n`) }))
    const text = storageConfSnippet('/my "als"', cur, host)
    const back = settings(host, files({ "/c": text }))
    expect(back.graphroot).toBe("/data/podman")
    expect(back.additionalLayerStores).toEqual(['/my "als":ref', "/other:ref"])
  })
})
