import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import { stringify } from "smol-toml"
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { tempDirs } from "../../lib/tempDirs.ts"
import { formatReference, parseReference } from "../../../src/domain/Reference.ts"
import { credsFor, insecureHosts, pullSources } from "../../../src/config/PullSources.ts"
import {
  emptyPartial,
  finishConf,
  findRegistry,
  mergeConf,
  parseRegistriesConf,
  prefixMatch,
  type RegistriesConf,
  RegistriesConfError,
} from "../../../src/config/RegistriesConf.ts"
import { readRegistriesConf, registriesConfPaths } from "../../../src/config/RegistriesConfFiles.ts"
import { isShortName, resolveShortName, ShortNameError } from "../../../src/config/ShortNames.ts"

const tmp = tempDirs()

const conf = (text: string, file = "/etc/containers/registries.conf"): RegistriesConf =>
  finishConf(parseRegistriesConf(text, file, false), file, true)

const refusal = (text: string, forceV2 = false): string => {
  try {
    parseRegistriesConf(text, "f.conf", forceV2)
  } catch (e) {
    expect(e).toBeInstanceOf(RegistriesConfError)
    return (e as Error).message
  }
  throw new Error("accepted")
}

const d = `sha256:${"a".repeat(64)}`

describe("parsing one file", () => {
  test("v2 fields become typed values; prefix defaults to location; trailing slashes dropped", () => {
    const c = conf(`
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
short-name-mode = "enforcing"
[[registry]]
location = "example.com/ns/"
insecure = true
[[registry.mirror]]
location = "mirror-a.local:5000"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "mirror-b.local"
insecure = true
[[registry]]
prefix = "*.corp.example"
blocked = true
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"ubi" = "docker.io/alpine"
`)
    expect(c.unqualifiedSearchRegistries).toEqual(["registry.fedoraproject.org", "docker.io"])
    expect(c.shortNameMode).toBe("enforcing")
    expect(c.registries.map((r) => [r.prefix, r.location, r.insecure, r.blocked])).toEqual([
      ["*.corp.example", "", false, true],
      ["example.com/ns", "example.com/ns", true, false],
    ])
    expect(c.registries[1].mirrors).toEqual([
      { location: "mirror-a.local:5000", insecure: false, pullFromMirror: "digest-only" },
      { location: "mirror-b.local", insecure: true, pullFromMirror: undefined },
    ])
    // alias values are normalized as podman normalizes them
    expect(c.aliases.get("ubi")?.name).toBe("docker.io/library/alpine")
    expect(c.aliases.get("fedora")).toEqual({ name: "registry.fedoraproject.org/fedora", origin: "/etc/containers/registries.conf" })
  })

  test("defaults: permissive, no search registries, no registries", () => {
    const c = conf("")
    expect(c.shortNameMode).toBe("permissive")
    expect(c.unqualifiedSearchRegistries).toEqual([])
    expect(c.registries).toEqual([])
  })

  test("the first [[registry]] with a prefix wins within a file", () => {
    const c = conf(`
[[registry]]
prefix = "a.example"
location = "one.example"
[[registry]]
prefix = "a.example"
location = "two.example"
`)
    expect(c.registries.map((r) => r.location)).toEqual(["one.example"])
  })

  test("v1 format is converted (search, insecure, block)", () => {
    const c = conf(`
[registries.search]
registries = ["quay.io"]
[registries.insecure]
registries = ["plain.local:5000"]
[registries.block]
registries = ["bad.example"]
`)
    expect(c.unqualifiedSearchRegistries).toEqual(["quay.io"])
    expect(c.registries.map((r) => [r.prefix, r.insecure, r.blocked])).toEqual([
      ["bad.example", false, true],
      ["plain.local:5000", true, false],
    ])
  })

  const refused: ReadonlyArray<[string, string, string, boolean?]> = [
    ["TOML syntax", "unqualified-search-registries = [", "Invalid TOML document"],
    ["a scheme in a location", `[[registry]]\nlocation = "https://x.example"`, "URI schemes are not supported"],
    ["neither prefix nor location", `[[registry]]\ninsecure = true`, "both location and prefix are unset"],
    ["prefix without location, not a wildcard", `[[registry]]\nprefix = "x.example"`, "location is unset and prefix is not in the format"],
    ["wildcard with a path", `[[registry]]\nprefix = "*.x.example/ns"\nlocation = "y.example"`, "Wildcarded prefix should be in the format"],
    ["pull-from-mirror on the primary", `[[registry]]\nlocation = "x.example"\npull-from-mirror = "all"`, "must not be set for a non-mirror registry"],
    ["mirror without location", `[[registry]]\nlocation = "x.example"\n[[registry.mirror]]\ninsecure = true`, "mirror location is unset"],
    ["both mirror restrictions", `[[registry]]\nlocation = "x.example"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "tag-only"`, "at the same time"],
    ["unknown pull-from-mirror", `[[registry]]\nlocation = "x.example"\n[[registry.mirror]]\nlocation = "m.example"\npull-from-mirror = "sometimes"`, "unsupported pull-from-mirror value"],
    ["conflicting insecure", `[[registry]]\nprefix = "a.example/1"\nlocation = "x.example"\ninsecure = true\n[[registry]]\nprefix = "a.example/2"\nlocation = "x.example"`, "conflicting 'insecure'"],
    ["conflicting blocked", `[[registry]]\nprefix = "a.example/1"\nlocation = "x.example"\nblocked = true\n[[registry]]\nprefix = "a.example/2"\nlocation = "x.example"`, "conflicting 'blocked'"],
    ["bad search entry", `unqualified-search-registries = ["quay.io/ns"]`, "Invalid unqualified-search-registries entry"],
    ["bad short-name mode", `short-name-mode = "strict"`, "invalid short-name mode"],
    ["insecure as a string", `[[registry]]\nlocation = "x.example"\ninsecure = "yes"`, "must be true or false"],
    ["alias with a registry on the left", `[aliases]\n"quay.io/x" = "quay.io/x"`, "must not contain registry"],
    ["alias with a tag on the left", `[aliases]\n"x:1" = "quay.io/x"`, "must not contain tag"],
    ["alias value without registry", `[aliases]\n"x" = "library/x"`, "must contain registry and repository"],
    ["alias value with a tag", `[aliases]\n"x" = "quay.io/x:1"`, "must not contain tag"],
    ["alias value with a digest", `[aliases]\n"x" = "quay.io/x@${d}"`, "must not contain digest"],
    ["v1 and v2 mixed", `unqualified-search-registries = ["a.example"]\n[registries.search]\nregistries = ["b.example"]`, "mixing sysregistry v1/v2"],
    ["v1 in a drop-in", `[registries.search]\nregistries = ["b.example"]`, "must be in v2 format", true],
  ]
  for (const [what, text, message, forceV2] of refused) {
    test(`refused: ${what}`, () => {
      expect(refusal(text, forceV2)).toContain(message)
    })
  }
})

describe("drop-ins", () => {
  test("registries replace by prefix, aliases merge, an empty alias resets, an empty search list replaces", () => {
    const base = parseRegistriesConf(
      `unqualified-search-registries = ["quay.io"]
[[registry]]
location = "a.example"
insecure = true
[[registry]]
location = "b.example"
[aliases]
"x" = "quay.io/x"
"y" = "quay.io/y"`,
      "/main.conf",
      false,
    )
    const dropIn = parseRegistriesConf(
      `unqualified-search-registries = []
[[registry]]
location = "a.example"
[aliases]
"y" = ""
"z" = "quay.io/z"`,
      "/d/01.conf",
      true,
    )
    const c = finishConf(mergeConf(base, dropIn), "", true)
    expect(c.registries.map((r) => [r.location, r.insecure])).toEqual([["a.example", false], ["b.example", false]])
    expect(c.unqualifiedSearchRegistries).toEqual([])
    expect(c.searchOrigin).toBe("/d/01.conf")
    expect(c.aliases.get("x")?.name).toBe("quay.io/x")
    expect(c.aliases.get("y")).toEqual({ name: undefined, origin: "/d/01.conf" })
    expect(c.aliases.get("z")?.origin).toBe("/d/01.conf")
  })

  test("a drop-in that leaves the search list out keeps the earlier one and its origin", () => {
    const base = parseRegistriesConf(`unqualified-search-registries = ["quay.io"]`, "/main.conf", false)
    const c = finishConf(mergeConf(base, parseRegistriesConf(`short-name-mode = "disabled"`, "/d/1.conf", true)), "", true)
    expect(c.unqualifiedSearchRegistries).toEqual(["quay.io"])
    expect(c.searchOrigin).toBe("/main.conf")
    expect(c.shortNameMode).toBe("disabled")
  })
})

describe("which files", () => {
  const home = "/home/u"
  test("CONTAINERS_REGISTRIES_CONF names the file; both drop-in directories still apply", () => {
    const p = registriesConfPaths({ env: { CONTAINERS_REGISTRIES_CONF: "/tmp/r.conf" }, uid: 1000, home }, () => true)
    expect(p).toEqual({
      configPath: "/tmp/r.conf",
      explicit: true,
      dropInDirs: ["/etc/containers/registries.conf.d", "/home/u/.config/containers/registries.conf.d"],
      aliasCache: "/home/u/.cache/containers/short-name-aliases.conf",
    })
  })
  test("a per-user registries.conf replaces the system file and the system drop-ins", () => {
    const p = registriesConfPaths({ env: {}, uid: 1000, home }, (f) => f === "/home/u/.config/containers/registries.conf")
    expect(p.configPath).toBe("/home/u/.config/containers/registries.conf")
    expect(p.dropInDirs).toEqual(["/home/u/.config/containers/registries.conf.d"])
  })
  test("otherwise the system file, system then user drop-ins; root's recorded aliases in /var/cache", () => {
    const p = registriesConfPaths({ env: {}, uid: 0, home: "/root" }, () => false)
    expect(p.configPath).toBe("/etc/containers/registries.conf")
    expect(p.dropInDirs).toEqual(["/etc/containers/registries.conf.d", "/root/.config/containers/registries.conf.d"])
    expect(p.aliasCache).toBe("/var/cache/containers/short-name-aliases.conf")
  })

  test("read from disk: drop-ins in name order, only *.conf, recorded aliases win; a named file must exist", () => {
    const dir = tmp("als-regconf-")
    const dropDir = join(dir, "registries.conf.d")
    mkdirSync(dropDir)
    mkdirSync(join(dropDir, "sub.conf")) // a directory is not a drop-in
    writeFileSync(join(dir, "registries.conf"), `unqualified-search-registries = ["a.example"]\n[aliases]\n"x" = "a.example/x"\n`)
    writeFileSync(join(dropDir, "20-b.conf"), `unqualified-search-registries = ["b.example"]\n`)
    writeFileSync(join(dropDir, "10-a.conf"), `unqualified-search-registries = ["c.example"]\n[aliases]\n"y" = "a.example/y"\n`)
    writeFileSync(join(dropDir, "30-ignored.txt"), `not toml at all [[[`)
    writeFileSync(join(dir, "aliases.conf"), `[aliases]\n"x" = "recorded.example/x"\n`)
    const paths = { configPath: join(dir, "registries.conf"), explicit: true, dropInDirs: [dropDir, join(dir, "missing")], aliasCache: join(dir, "aliases.conf") }
    const c = readRegistriesConf(paths)
    expect(c.unqualifiedSearchRegistries).toEqual(["b.example"])
    expect(c.aliases.get("x")?.name).toBe("recorded.example/x")
    expect(c.aliases.get("y")?.name).toBe("a.example/y")
    expect(c.found).toBe(true)
    expect(() => readRegistriesConf({ ...paths, configPath: join(dir, "nope.conf") })).toThrow(/no such file/)
    // not named: a missing main file is an empty configuration
    const empty = readRegistriesConf({ ...paths, configPath: join(dir, "nope.conf"), explicit: false, dropInDirs: [] })
    expect(empty.found).toBe(false)
  })
})

describe("prefix matching (FindRegistry)", () => {
  const table: ReadonlyArray<[string, string, number]> = [
    ["example.com/foo/bar", "example.com", 11],
    ["example.com/foo/bar", "example.com/foo", 15],
    ["example.com/foobar", "example.com/foo", -1],
    ["example.com:5000/foo", "example.com", 11], // containers/image's known quirk, kept
    ["example.com/foo@" + d, "example.com/foo", 15],
    ["example.com", "example.com", 11],
    ["example.co", "example.com", -1],
    ["sub.example.com/foo", "*.example.com", 15],
    ["a.b.example.com:5000/foo", "*.example.com", 15],
    ["example.com/foo", "*.example.com", -1],
    ["other.com/sub.example.com/x", "*.example.com", -1],
    ["sub.example.community/x", "*.example.com", -1],
  ]
  for (const [ref, prefix, n] of table) {
    test(`${ref} ~ ${prefix} → ${n}`, () => expect(prefixMatch(ref, prefix)).toBe(n))
  }
  test("the longest matching prefix wins", () => {
    const c = conf(`
[[registry]]
location = "example.com"
[[registry]]
prefix = "example.com/foo"
location = "elsewhere.example/foo"
[[registry]]
prefix = "*.example.com"
`)
    expect(findRegistry(c, "example.com/foo/bar")?.prefix).toBe("example.com/foo")
    expect(findRegistry(c, "example.com/baz")?.prefix).toBe("example.com")
    expect(findRegistry(c, "x.example.com/baz")?.prefix).toBe("*.example.com")
    expect(findRegistry(c, "quay.io/x")).toBeUndefined()
  })
})

describe("pull sources", () => {
  const c = conf(`
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror.local:5000"
[[registry.mirror]]
location = "digests.local/hub"
pull-from-mirror = "digest-only"
insecure = true
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"

[[registry]]
prefix = "example.com/team"
location = "internal.example/mirror/team"
mirror-by-digest-only = true
[[registry.mirror]]
location = "digestonly.local"

[[registry]]
location = "blocked.example"
blocked = true

[[registry]]
prefix = "*.wild.example"
`)
  const sources = (ref: string) =>
    pullSources(parseReference(ref), c).map((s) => `${formatReference(s.ref)}${s.mirror ? " (mirror)" : ""}${s.insecure ? " insecure" : ""}${s.blockedBy ? ` blocked by ${s.blockedBy}` : ""}`)

  test("a tag: mirrors that take tags, in order, then the registry", () => {
    expect(sources("alpine:3")).toEqual([
      "mirror.local:5000/library/alpine:3 (mirror)",
      "tags.local/library/alpine:3 (mirror)",
      "docker.io/library/alpine:3",
    ])
  })
  test("a digest: mirrors that take digests, rewritten below a namespace", () => {
    expect(sources(`docker.io/library/alpine@${d}`)).toEqual([
      `mirror.local:5000/library/alpine@${d} (mirror)`,
      `digests.local/hub/library/alpine@${d} (mirror) insecure`,
      `docker.io/library/alpine@${d}`,
    ])
  })
  test("mirror-by-digest-only: no mirror for a tag; prefix → location rewriting", () => {
    expect(sources("example.com/team/app:1")).toEqual(["internal.example/mirror/team/app:1"])
    expect(sources(`example.com/team/app@${d}`)).toEqual([`digestonly.local/app@${d} (mirror)`, `internal.example/mirror/team/app@${d}`])
  })
  test("blocked, unconfigured and wildcard-without-location names", () => {
    expect(sources("blocked.example/x:1")).toEqual(["blocked.example/x:1 blocked by blocked.example"])
    expect(sources("quay.io/x:1")).toEqual(["quay.io/x:1"])
    expect(sources("a.wild.example/x:1")).toEqual(["a.wild.example/x:1"])
  })
  test("insecure hosts: every insecure location and mirror", () => {
    expect(insecureHosts(c)).toEqual(["digests.local"])
  })
  test("--creds: for the registries names belong to, not for hosts only reached as mirrors or rewrite targets", () => {
    const may = credsFor(c)
    expect(["docker.io", "example.com", "blocked.example", "quay.io"].map(may)).toEqual([true, true, true, true])
    expect(["mirror.local:5000", "digests.local", "tags.local", "internal.example", "digestonly.local"].map(may)).toEqual([false, false, false, false, false])
  })
})

describe("short names", () => {
  const base = conf(`
unqualified-search-registries = ["registry.fedoraproject.org", "quay.io", "docker.io"]
[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"reset" = "quay.io/reset"
`)
  const names = (input: string, c: RegistriesConf = base, tty = false) =>
    resolveShortName(input, c, { tty }).candidates.map(formatReference)

  test("what is a short name", () => {
    for (const s of ["alpine", "alpine:3", `alpine@${d}`, "library/alpine", "foo/bar/baz:1"]) expect(isShortName(s)).toBe(true)
    for (const s of ["docker.io/alpine", "localhost/x", "localhost:5000/x", "127.0.0.1:5000/x", "docker://alpine", "a.b/c"]) {
      expect(isShortName(s)).toBe(false)
    }
  })
  test("qualified names and docker:// are used as given", () => {
    expect(names("quay.io/x/y")).toEqual(["quay.io/x/y:latest"])
    expect(names("docker://alpine")).toEqual(["docker.io/library/alpine:latest"])
  })
  test("an alias keeps the tag or digest the user gave", () => {
    expect(names("fedora")).toEqual(["registry.fedoraproject.org/fedora:latest"])
    expect(names("fedora:39")).toEqual(["registry.fedoraproject.org/fedora:39"])
    expect(names(`fedora@${d}`)).toEqual([`registry.fedoraproject.org/fedora@${d}`])
    expect(resolveShortName("fedora", base, { tty: false }).rationale).toBe("alias")
  })
  test("permissive (the default): every search registry in order, normalized", () => {
    expect(names("alpine:3")).toEqual(["registry.fedoraproject.org/alpine:3", "quay.io/alpine:3", "docker.io/library/alpine:3"])
  })
  test("an alias reset by an empty value falls back to the search registries", () => {
    const c = finishConf(mergeConf(parseRegistriesConf(`unqualified-search-registries = ["quay.io"]\n[aliases]\n"reset" = "quay.io/reset"`, "/a", false), parseRegistriesConf(`[aliases]\n"reset" = ""`, "/b", true)), "", true)
    expect(names("reset", c)).toEqual(["quay.io/reset:latest"])
  })
  test("enforcing: several candidates are refused without a TTY, listing them; one candidate is fine", () => {
    const enforcing = { ...base, shortNameMode: "enforcing" as const }
    let err: unknown
    try {
      names("alpine", enforcing)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ShortNameError)
    expect((err as ShortNameError).message).toContain("short-name resolution enforced but cannot prompt without a TTY")
    expect((err as ShortNameError).candidates).toEqual(["registry.fedoraproject.org/alpine:latest", "quay.io/alpine:latest", "docker.io/library/alpine:latest"])
    expect(names("alpine", { ...enforcing, unqualifiedSearchRegistries: ["quay.io"] })).toEqual(["quay.io/alpine:latest"])
    expect(names("fedora", enforcing)).toEqual(["registry.fedoraproject.org/fedora:latest"])
  })
  test("disabled: every candidate, never an error", () => {
    expect(names("alpine", { ...base, shortNameMode: "disabled" })).toHaveLength(3)
  })
  test("no search registries: refused, naming the file (or saying there is none)", () => {
    const none = conf(`[aliases]\n"x" = "quay.io/x"`, "/etc/containers/registries.conf")
    expect(() => names("alpine", none)).toThrow(/no unqualified-search registries are defined in "\/etc\/containers\/registries.conf"/)
    expect(() => names("alpine", finishConf(emptyPartial, "", false))).toThrow(/no containers-registries.conf\(5\) was found/)
  })
  test("a malformed name fails as a reference error before any lookup", () => {
    expect(() => names("Alpine")).toThrow(/invalid image reference/)
  })
})

describe("untrusted bytes", () => {
  // any file content: a typed configuration or a RegistriesConfError, never another exception
  const outcome = (text: string, forceV2: boolean) => {
    try {
      parseRegistriesConf(text, "f.conf", forceV2)
      return "ok"
    } catch (e) {
      return e instanceof RegistriesConfError ? "refused" : `threw ${String(e)}`
    }
  }
  test("arbitrary text and arbitrary TOML values are parsed or refused, never thrown otherwise", () => {
    const key = fc.constantFrom(
      "prefix", "location", "insecure", "blocked", "mirror-by-digest-only", "pull-from-mirror", "mirror",
      "unqualified-search-registries", "short-name-mode", "aliases", "registry", "registries", "x",
    )
    const scalar = fc.oneof(fc.string(), fc.boolean(), fc.integer(), fc.constantFrom("", "*.a.example", "a.example/ns", "https://x", "enforcing", "digest-only"))
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: "small" }, scalar, fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(key, tie("v"), { maxKeys: 4 })),
    })).v
    fc.assert(
      fc.property(fc.dictionary(key, value, { maxKeys: 5 }), fc.boolean(), (doc, forceV2) => {
        let text: string
        try {
          text = stringify(doc)
        } catch {
          return true // not representable in TOML (e.g. mixed arrays of tables)
        }
        return outcome(text, forceV2) !== "" && !outcome(text, forceV2).startsWith("threw")
      }),
      { numRuns: 2000 },
    )
    fc.assert(fc.property(fc.string({ maxLength: 200 }), fc.boolean(), (text, forceV2) => !outcome(text, forceV2).startsWith("threw")), { numRuns: 2000 })
  })

  test("plausible files: valid ones give pull sources for any name under their prefixes, or a RegistriesConfError", () => {
    const loc = fc.constantFrom("", "a.example", "a.example/ns", "b.example:5000", "*.w.example", "https://x.example", "a.example/", "UPPER.example/X")
    const endpoint = { location: loc, insecure: fc.boolean() }
    const mirror = fc.record({ ...endpoint, "pull-from-mirror": fc.constantFrom("all", "digest-only", "tag-only", "") }, { requiredKeys: ["location"] })
    const registry = fc.record(
      { prefix: loc, ...endpoint, blocked: fc.boolean(), "mirror-by-digest-only": fc.boolean(), mirror: fc.array(mirror, { maxLength: 3 }) },
      { requiredKeys: [] },
    )
    const doc = fc.record(
      {
        registry: fc.array(registry, { maxLength: 4 }),
        "unqualified-search-registries": fc.array(fc.constantFrom("quay.io", "b.example:5000", "bad/ns"), { maxLength: 3 }),
        aliases: fc.dictionary(fc.constantFrom("a", "b/c", "x:1", "Q"), fc.constantFrom("quay.io/a", "", "a.example/ns/x", "bad", "quay.io/a:1")),
      },
      { requiredKeys: [] },
    )
    const names = ["a.example/ns/app:1", `a.example/ns/app@${d}`, "b.example:5000/x", "s.w.example/y:2", "quay.io/q"]
    let valid = 0
    fc.assert(
      fc.property(doc, (d0) => {
        let c: RegistriesConf
        try {
          c = finishConf(parseRegistriesConf(stringify(d0), "f.conf", false), "f.conf", true)
        } catch (e) {
          return e instanceof RegistriesConfError
        }
        valid++
        for (const n of names) {
          try {
            for (const s of pullSources(parseReference(n), c)) expect(typeof formatReference(s.ref)).toBe("string")
          } catch (e) {
            if (!(e instanceof RegistriesConfError)) throw e
          }
        }
        return true
      }),
      { numRuns: 1500 },
    )
    expect(valid).toBeGreaterThan(100) // the generator reaches the valid paths
  })
})
