// What the figures were measured on: they only mean something next to this.

import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { cpus, release, totalmem } from "node:os"

export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly kernel: string
  /** filesystem type and device of the directory the runs write into */
  readonly disk: string
  readonly tools: Record<string, string>
}

const firstLine = (cmd: string, ...args: string[]): string => {
  const r = spawnSync(cmd, args, { encoding: "utf8" })
  return r.status === 0 ? (r.stdout || r.stderr).trim().split("\n")[0]! : "?"
}

/** `nproc`: the CPUs this process may use (what the tools can use too). */
const nproc = (): number => Number(firstLine("nproc")) || cpus().length

export const describeMachine = (workDir: string, als: string): Machine => {
  const model = (() => {
    try {
      return /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "?"
    } catch {
      return "?"
    }
  })()
  return {
    cpus: nproc(),
    cpuModel: model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    disk: firstLine("findmnt", "-n", "-o", "FSTYPE,SOURCE,OPTIONS", "--target", workDir),
    tools: {
      als: firstLine(als, "--version"),
      bun: Bun.version,
      podman: firstLine("podman", "--version"),
      skopeo: firstLine("skopeo", "--version"),
      umoci: firstLine("umoci", "--version"),
      "docker-registry": firstLine("docker-registry", "--version"),
    },
  }
}
