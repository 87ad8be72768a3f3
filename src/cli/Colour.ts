/**
 * No colour codes where nobody sees colours: @effect/cli renders help and its usage errors
 * with ANSI styles whatever the output is, so a pipe or a file got `\x1b[0;1m…`. Styles stay
 * on a terminal unless NO_COLOR (https://no-color.org) is set or TERM is "dumb".
 */
import type { Console } from "effect"

/** SGR sequences only: the styles @effect/cli's printer writes. */
const SGR = /\x1b\[[0-9;]*m/g

export const stripStyles = (s: string): string => s.replace(SGR, "")

export const wantsPlain = (stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean =>
  stream.isTTY !== true || (env.NO_COLOR !== undefined && env.NO_COLOR !== "") || env.TERM === "dumb"

const strip = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? stripStyles(a) : a))

/** `base` with the styles taken out of what goes to stdout (`plainOut`) and stderr (`plainErr`). */
export const colorless = (base: Console.Console, plainOut: boolean, plainErr: boolean): Console.Console => ({
  ...base,
  log: (...args) => base.log(...(plainOut ? strip(args) : args)),
  info: (...args) => base.info(...(plainOut ? strip(args) : args)),
  error: (...args) => base.error(...(plainErr ? strip(args) : args)),
  warn: (...args) => base.warn(...(plainErr ? strip(args) : args)),
})
