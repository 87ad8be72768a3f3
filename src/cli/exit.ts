/**
 * Exit statuses scripts can rely on (documented in README and `als --help`).
 */
export const ExitCode = {
  ok: 0,
  /** lookup: not found; audit/doctor: problems found */
  notFound: 1,
  usage: 2,
  registry: 3,
  layerRejected: 4,
  store: 5,
  log: 6,
  internal: 70,
  /** SIGINT (Ctrl-C): 128 + 2 */
  interrupted: 130,
  /** SIGTERM: 128 + 15 */
  terminated: 143,
} as const

let code = 0
export const setExitCode = (c: number) => {
  code = c
}
export const exitCode = () => code

/** A command whose normal end is SIGINT/SIGTERM (als serve): it exits 0 once its clean-up ran. */
let signalEnds = false
export const endsBySignal = () => {
  signalEnds = true
}
export const signalIsNormalEnd = () => signalEnds
