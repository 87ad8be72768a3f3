// `als doctor` on real stores: a healthy one passes the filesystem, FFI and log checks; the
// store is found (or flagged) in a storage.conf given through CONTAINERS_STORAGE_CONF; a log
// with a flipped byte makes it fail, naming the damaged frame.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { als, alsLog, alsOk, describeResult, REPO_ROOT } from "../../lib/als.ts"

const MIN = 60_000
const dirs: string[] = []
const temp = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `als-doctor-${name}-`))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Report {
  readonly ok: boolean
  readonly exitCode: number
  readonly checks: ReadonlyArray<{ id: string; status: string; detail: string; fix?: string }>
}

let store: string
/** A storage.conf podman can start with (it needs graphroot and runroot), plus `text`. */
const conf = (text: string) => {
  const d = temp("conf")
  const f = join(d, "storage.conf")
  const base = `[storage]\ngraphroot = "${d}/root"\nrunroot = "${d}/run"\n`
  writeFileSync(f, text.includes("[storage]\n") ? text.replace("[storage]\n", base) : `${base}driver = "overlay"\n${text}`)
  return f
}
const doctorJson = async (root: string, confFile: string) => {
  const r = await als(["doctor", "--json", "--root", root], { env: { CONTAINERS_STORAGE_CONF: confFile } })
  let report: Report
  try {
    report = JSON.parse(r.stdout) as Report
  } catch {
    throw new Error(`not JSON:\n${describeResult(r)}`)
  }
  const byId = Object.fromEntries(report.checks.map((c) => [c.id, c]))
  return { r, report, byId }
}

beforeAll(async () => {
  store = temp("store")
  await alsOk(["pull", "--root", store, "--name", "localhost/als/doctor:1", `oci:${resolve(REPO_ROOT, "test/fixtures/hello")}:latest`])
}, 5 * MIN)

describe("als doctor", () => {
  test("a healthy store listed with :ref passes every check and exits 0", async () => {
    const { r, report, byId } = await doctorJson(store, conf(`[storage]\ndriver = "overlay"\n\n[storage.options]\nadditionallayerstores = ["${store}:ref"]\n`))
    expect(r.exitCode, describeResult(r)).toBe(0)
    expect(report.ok).toBe(true)
    for (const id of ["store", "filesystem", "d_type", "xattr", "whiteout", "overlay", "syscalls", "storage.conf", "log"]) {
      expect({ id, status: byId[id]?.status }).toEqual({ id, status: "ok" })
    }
    expect(byId.log!.detail).toMatch(/^\d+ frames/)
    expect(byId.podman!.detail).toContain("podman 4.3.1")
  }, 2 * MIN)

  test("a storage.conf that lists the store without :ref is flagged, one that does not list it too", async () => {
    const noRef = await doctorJson(store, conf(`[storage]\ndriver = "overlay"\n[storage.options]\nadditionallayerstores = ["${store}"]\n`))
    expect(noRef.byId["storage.conf"]!.status).toBe("warn")
    expect(noRef.byId["storage.conf"]!.detail).toContain("without :ref")
    expect(noRef.byId["storage.conf"]!.fix).toContain(`"${store}:ref"`)
    expect(noRef.r.exitCode).toBe(0)

    const other = await doctorJson(store, conf(`[storage.options]\nadditionallayerstores = ["/mnt/elsewhere:ref"]\n`))
    expect(other.byId["storage.conf"]!.status).toBe("warn")
    expect(other.byId["storage.conf"]!.detail).toContain("does not list this store")

    const vfs = await doctorJson(store, conf(`[storage]\ndriver = "vfs"\n[storage.options]\nadditionallayerstores = ["${store}:ref"]\n`))
    expect(vfs.byId["storage.conf"]!.status).toBe("error")
    expect(vfs.r.exitCode).toBe(1)
  }, 2 * MIN)

  test("a missing store says to run als init", async () => {
    const r = await als(["doctor", "--root", join(temp("none"), "absent")], { env: { CONTAINERS_STORAGE_CONF: "/nonexistent.conf" } })
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toContain("als init --root")
  }, MIN)

  test("a byte flipped in the middle of the log makes doctor fail and name the frame", async () => {
    const damaged = temp("damaged")
    await alsOk(["pull", "--root", damaged, "--name", "localhost/als/doctor:2", `oci:${resolve(REPO_ROOT, "test/fixtures/hello")}:latest`])
    const events = await alsLog(damaged)
    const log = join(damaged, ".als", "log")
    const bytes = readFileSync(log)
    const at = bytes.length >> 1
    bytes[at] ^= 0x5a
    writeFileSync(log, bytes)
    // the frame holding byte `at`: the last one starting at or before it
    const frame = events.filter((e) => e.offset <= at).length - 1
    const confFile = conf(`[storage.options]\nadditionallayerstores = ["${damaged}:ref"]\n`)
    const r = await als(["doctor", "--root", damaged], { env: { CONTAINERS_STORAGE_CONF: confFile } })
    expect(r.exitCode, describeResult(r)).toBe(1)
    expect(r.stdout).toMatch(/ERROR\s+event log/)
    expect(r.stdout).toContain(`damaged at frame ${frame} `)
    // the log is the only thing wrong
    const { report } = await doctorJson(damaged, confFile)
    expect(report.checks.filter((c) => c.status === "error").map((c) => c.id)).toEqual(["log"])
  }, 2 * MIN)
})
