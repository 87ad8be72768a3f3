// storage.conf found and read as podman 4.3.1 finds and reads it. Each case sets up the files
// podman looks at — /etc/containers, /usr/share/containers (bind-mounted in a private mount
// namespace, so the host's files are never touched), $XDG_CONFIG_HOME, ~/.config,
// CONTAINERS_STORAGE_CONF — runs `podman info` and `als doctor --json` in the same namespace
// and environment, as root and as a rootless user, and requires the same file, graph root, run
// root and driver. Then `als init`'s snippet, on a host with no storage.conf at all, is written
// where it says and podman takes every layer of a pull from the store through it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { alsCommand, alsOk, describeResult } from "../../lib/als.ts"
import { parsePullLog, RUNC } from "../../lib/podman.ts"
import { pushLayout, type RegistryHandle, startRegistry } from "../../lib/registry.ts"
import { run, type RunResult, unmountUnder } from "../../lib/sh.ts"

const MIN = 60_000
const NOBODY = 65534
const dirs: string[] = []
/** world-readable temp dirs: the rootless cases run as nobody */
const temp = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `als-storageconf-${name}-`))
  chmodSync(d, 0o755)
  dirs.push(d)
  return d
}
afterAll(async () => {
  for (const d of dirs) {
    await unmountUnder(d)
    rmSync(d, { recursive: true, force: true })
  }
})

interface Files {
  readonly etc?: string
  readonly usr?: string
}

/**
 * Runs `cmd` in a private mount namespace where /etc/containers and /usr/share/containers hold
 * only `files`, and /var/lib and /run are empty tmpfs (podman's default roots land there, not
 * on the host), with exactly `env` (plus PATH), as root or as nobody, in its own pid namespace.
 */
const isolated = async (dir: string, files: Files, env: Record<string, string>, cmd: ReadonlyArray<string>, rootless = false): Promise<RunResult> => {
  const mounts: string[] = []
  for (const [key, target] of [["etc", "/etc/containers"], ["usr", "/usr/share/containers"]] as const) {
    const src = join(dir, `sys-${key}`)
    mkdirSync(src, { recursive: true })
    if (files[key] !== undefined) writeFileSync(join(src, "storage.conf"), files[key]!)
    mounts.push(`mount --bind ${src} ${target}`)
  }
  // mode 755 as on a real host: a user cannot make /run/user/UID there
  mounts.push("mount -t tmpfs -o mode=755 none /var/lib", "mount -t tmpfs -o mode=755 none /run")
  const user = rootless ? ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"] : []
  const envArgs = Object.entries({ PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", ...env }).map(([k, v]) => `${k}=${v}`)
  // its own pid namespace too: rootless podman leaves a pause process behind, which dies with
  // the namespace when the command ends instead of outliving the test
  return run(["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "sh", "-c", `${mounts.join(" && ")} && exec "$@"`, "sh", ...user, "env", "-i", ...envArgs, ...cmd], { timeoutMs: 2 * MIN })
}

interface Seen {
  readonly file: string
  readonly graphroot: string
  readonly runroot: string
  readonly driver: string
}

const podmanSees = async (dir: string, files: Files, env: Record<string, string>, rootless: boolean): Promise<Seen> => {
  const r = await isolated(dir, files, env, ["podman", "--tmpdir", join(dir, `libpod-${rootless ? "user" : "root"}`), "info", "--format", "json"], rootless)
  if (r.exitCode !== 0) throw new Error(`podman info failed (${r.exitCode}):\n${r.stderr}`)
  const store = (JSON.parse(r.stdout) as { store: { configFile: string; graphRoot: string; runRoot: string; graphDriverName: string } }).store
  return { file: store.configFile, graphroot: store.graphRoot, runroot: store.runRoot, driver: store.graphDriverName }
}

const alsSees = async (dir: string, files: Files, env: Record<string, string>, rootless: boolean): Promise<Seen> => {
  const prefix = await alsCommand()
  const r = await isolated(dir, files, env, [...prefix, "doctor", "--json", "--root", join(dir, "no-store")], rootless)
  let report: { checks: ReadonlyArray<{ id: string; facts?: Record<string, string> }> }
  try {
    report = JSON.parse(r.stdout)
  } catch {
    throw new Error(`als doctor printed no JSON (${r.exitCode}):\n${r.stdout}\n${r.stderr}`)
  }
  const facts = report.checks.find((c) => c.id === "storage.conf")?.facts ?? {}
  return { file: facts.file ?? "?", graphroot: facts.graphroot ?? "?", runroot: facts.runroot ?? "?", driver: facts.driver ?? "?" }
}

const conf = (lines: Record<string, string>, stores: ReadonlyArray<string> = []) =>
  `[storage]\n${Object.entries(lines).map(([k, v]) => `${k} = "${v}"`).join("\n")}\n` +
  (stores.length ? `\n[storage.options]\nadditionallayerstores = ${JSON.stringify(stores)}\n` : "")

interface Case {
  readonly name: string
  readonly rootless?: boolean
  /** the file both must name ("" for none: built-in defaults) */
  readonly file: (d: string) => string
  readonly setup: (d: string, home: string) => { files: Files; env: Record<string, string> }
}

const cases: ReadonlyArray<Case> = [
  {
    name: "root: /etc/containers/storage.conf before /usr/share",
    file: () => "/etc/containers/storage.conf",
    setup: (d) => ({ files: { etc: conf({ driver: "overlay", graphroot: `${d}/etc-g`, runroot: `${d}/etc-r` }), usr: conf({ driver: "overlay", graphroot: `${d}/usr-g`, runroot: `${d}/usr-r` }) }, env: {} }),
  },
  {
    name: "root: /usr/share/containers/storage.conf when /etc has none",
    file: () => "/usr/share/containers/storage.conf",
    setup: (d) => ({ files: { usr: conf({ driver: "overlay", graphroot: `${d}/usr-g`, runroot: `${d}/usr-r` }) }, env: {} }),
  },
  {
    name: "root: no storage.conf anywhere, built-in defaults",
    file: () => "",
    setup: () => ({ files: {}, env: {} }),
  },
  {
    name: "root: $XDG_CONFIG_HOME/containers/storage.conf before /etc",
    file: (d) => `${d}/xdg/containers/storage.conf`,
    setup: (d) => {
      mkdirSync(`${d}/xdg/containers`, { recursive: true })
      writeFileSync(`${d}/xdg/containers/storage.conf`, conf({ driver: "overlay", graphroot: `${d}/xdg-g`, runroot: `${d}/xdg-r` }))
      return { files: { etc: conf({ driver: "overlay", graphroot: `${d}/etc-g`, runroot: `${d}/etc-r` }) }, env: { XDG_CONFIG_HOME: `${d}/xdg` } }
    },
  },
  {
    name: "root: ~/.config/containers/storage.conf is not read",
    file: () => "/etc/containers/storage.conf",
    setup: (d, home) => {
      mkdirSync(`${home}/.config/containers`, { recursive: true })
      writeFileSync(`${home}/.config/containers/storage.conf`, conf({ driver: "overlay", graphroot: `${d}/home-g`, runroot: `${d}/home-r` }))
      return { files: { etc: conf({ driver: "overlay", graphroot: `${d}/etc-g`, runroot: `${d}/etc-r` }) }, env: {} }
    },
  },
  {
    name: "root: CONTAINERS_STORAGE_CONF over /etc, with $HOME and $UID expanded",
    file: (d) => `${d}/env.conf`,
    setup: (d, home) => {
      writeFileSync(`${d}/env.conf`, conf({ driver: "overlay", graphroot: "$HOME/g-$UID", runroot: "${HOME}/r" }))
      return { files: { etc: conf({ driver: "overlay", graphroot: `${d}/etc-g`, runroot: `${d}/etc-r` }) }, env: { CONTAINERS_STORAGE_CONF: `${d}/env.conf`, HOME: home } }
    },
  },
  {
    name: "rootless: no files, XDG_RUNTIME_DIR",
    rootless: true,
    file: () => "",
    setup: (d) => ({ files: {}, env: { XDG_RUNTIME_DIR: `${d}/rt` } }),
  },
  {
    name: "rootless: no files, no XDG_RUNTIME_DIR",
    rootless: true,
    file: () => "",
    setup: () => ({ files: {}, env: {} }),
  },
  {
    name: "rootless: the system file's rootless_storage_path and driver, the system's own roots ignored",
    rootless: true,
    file: () => "",
    setup: (d) => ({
      files: { etc: conf({ driver: "vfs", graphroot: `${d}/etc-g`, runroot: `${d}/etc-r`, rootless_storage_path: `${d}/shared/$UID` }) },
      env: { XDG_RUNTIME_DIR: `${d}/rt` },
    }),
  },
  {
    name: "rootless: the user's ~/.config file without roots, rootless defaults beneath",
    rootless: true,
    file: (_d) => "HOME/.config/containers/storage.conf",
    setup: (d, home) => {
      mkdirSync(`${home}/.config/containers`, { recursive: true })
      writeFileSync(`${home}/.config/containers/storage.conf`, conf({ driver: "overlay" }, [`${d}/als:ref`]))
      mkdirSync(`${d}/als`)
      return { files: { etc: conf({ driver: "overlay", graphroot: `${d}/etc-g`, runroot: `${d}/etc-r` }) }, env: { XDG_RUNTIME_DIR: `${d}/rt` } }
    },
  },
]

describe("storage.conf: als reads what podman 4.3.1 reads", () => {
  for (const c of cases) {
    test(c.name, async () => {
      const d = temp("case")
      const home = join(d, "home")
      mkdirSync(home, { recursive: true })
      mkdirSync(join(d, "rt"), { recursive: true })
      const { files, env } = c.setup(d, home)
      const fullEnv = { HOME: home, ...env }
      // nobody owns the case's directory (podman makes its dirs there), root keeps the system files
      if (c.rootless) await run(["chown", "-R", `${NOBODY}:${NOBODY}`, d])
      const podman = await podmanSees(d, files, fullEnv, c.rootless ?? false)
      const ours = await alsSees(d, files, fullEnv, c.rootless ?? false)
      const file = c.file(d).replace(/^HOME/, home)
      expect(ours.file).toBe(file)
      if (file !== "") expect(podman.file).toBe(file)
      expect({ graphroot: ours.graphroot, runroot: ours.runroot }).toEqual({ graphroot: podman.graphroot, runroot: podman.runroot })
      // with no file, podman picks a driver by probing; als does not claim one then
      if (ours.driver !== "") expect(ours.driver).toBe(podman.driver)
    }, 3 * MIN)
  }
})

describe("als init on a host with no storage.conf", () => {
  let registry: RegistryHandle
  beforeAll(async () => {
    registry = await startRegistry()
  }, 2 * MIN)
  afterAll(async () => {
    await registry?.stop()
  })

  test("prints a whole storage.conf: written where it says, podman starts with it and takes every layer from the store", async () => {
    const d = temp("init")
    const ref = `${registry.host}/init/hello:1`
    await pushLayout(resolve(import.meta.dir, "../../fixtures/hello"), "latest", ref)
    const root = join(d, "store")
    await alsOk(["pull", "--root", root, "--tls-verify=false", ref])
    const layers = readdirSync(root).filter((n) => /^sha256:[a-f0-9]{64}$/.test(n)).sort()

    // als init sees no storage.conf either (the namespace hides the host's)
    const prefix = await alsCommand()
    const init = await isolated(d, {}, { HOME: d }, [...prefix, "init", "--root", root])
    expect(init.exitCode, init.stderr).toBe(0)
    expect(init.stdout).toContain("podman reads no storage.conf now; create /etc/containers/storage.conf:")
    const snippet = init.stdout.slice(init.stdout.indexOf("[storage]"), init.stdout.indexOf("# or per command"))
    for (const line of ['driver = "overlay"', 'graphroot = "/var/lib/containers/storage"', 'runroot = "/run/containers/storage"', `additionallayerstores = ["${root}:ref"]`]) {
      expect(snippet).toContain(line)
    }

    // that file as the only storage.conf: podman reads it and pulls every layer through the store
    writeFileSync(join(d, "containers.conf"), `[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n`)
    writeFileSync(join(d, "registries.conf"), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
    const env = { HOME: d, CONTAINERS_CONF: join(d, "containers.conf"), CONTAINERS_REGISTRIES_CONF: join(d, "registries.conf"), TMPDIR: d }
    writeFileSync(join(d, "policy.json"), '{"default":[{"type":"insecureAcceptAnything"}]}\n')
    const pull = await isolated(d, { etc: snippet }, env, [
      "podman", "--runtime", RUNC, "--tmpdir", join(d, "libpod"), "--log-level=debug",
      "pull", "--signature-policy", join(d, "policy.json"), "--tls-verify=false", ref,
    ])
    expect(pull.exitCode, `${pull.stdout}\n${pull.stderr.slice(-3000)}`).toBe(0)
    const log = parsePullLog(`${pull.stdout}\n${pull.stderr}`)
    expect(log.skipped.sort()).toEqual(layers)
    expect(log.copied).toEqual([])

    // and doctor, reading the same file, says it lists the store
    const doctor = await isolated(d, { etc: snippet }, { HOME: d }, [...prefix, "doctor", "--json", "--root", root])
    const check = (JSON.parse(doctor.stdout) as { checks: Array<{ id: string; status: string; detail: string }> }).checks.find((c) => c.id === "storage.conf")
    expect(check?.status, describeResult({ ...doctor, cmd: doctor.cmd })).toBe("ok")
    expect(check?.detail).toContain("/etc/containers/storage.conf lists")
  }, 5 * MIN)
})
