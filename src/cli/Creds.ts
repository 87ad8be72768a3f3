/**
 * `--creds USER` without a password, as podman takes it: the password is asked for on the
 * terminal, without echo. With no terminal on stdin there is nobody to ask, and waiting on a
 * pipe would hang a script: that is a usage error naming the other spelling.
 */
import { Effect, Option } from "effect"
import { ExitCode } from "./exit.ts"
import { UsageError } from "../domain/UsageError.ts"

export const NO_TTY_MESSAGE = "--creds USER needs a terminal to ask for the password; pass USER:PASSWORD"

/** Whether `--creds` names only the user, `USER` or `USER:` (podman's ParseRegistryCreds then prompts). */
export const needsPassword = (creds: string): boolean => {
  const colon = creds.indexOf(":")
  return colon === -1 || colon === creds.length - 1
}

interface Tty {
  readonly isTTY?: boolean
  setRawMode?(raw: boolean): unknown
  on(event: "data", f: (chunk: Buffer | string) => void): unknown
  on(event: "end", f: () => void): unknown
  off(event: "data", f: (chunk: Buffer | string) => void): unknown
  off(event: "end", f: () => void): unknown
  resume(): unknown
  pause(): unknown
}

/**
 * One line read from `input` in raw mode (nothing echoed): Enter ends it, Backspace removes a
 * character, Ctrl-C ends als as SIGINT does (130), Ctrl-D on an empty line gives up.
 */
const readSecret = (input: Tty, prompt: (s: string) => void): Promise<string | undefined> =>
  new Promise((resolve) => {
    let secret = ""
    const done = (v: string | undefined) => {
      input.off("data", onData)
      input.off("end", onEnd)
      input.setRawMode?.(false)
      input.pause()
      prompt("\n")
      resolve(v)
    }
    const onData = (chunk: Buffer | string) => {
      for (const ch of typeof chunk === "string" ? chunk : chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done(secret)
        if (ch === "\u0003") {
          // raw mode turns Ctrl-C into a byte: it ends als as SIGINT would, before anything was created
          input.setRawMode?.(false)
          prompt("\nals: interrupted (SIGINT)\n")
          process.exit(ExitCode.interrupted)
        }
        if (ch === "\u0004") {
          if (secret === "") return done(undefined)
          continue
        }
        if (ch === "\u007f" || ch === "\b") secret = secret.slice(0, -1)
        else if (ch >= " ") secret += ch
      }
    }
    // the terminal closed while asking: no password
    const onEnd = () => done(undefined)
    // raw mode first: a password typed as soon as the prompt shows is never echoed
    input.setRawMode?.(true)
    input.on("data", onData)
    input.on("end", onEnd)
    prompt("Password: ")
    input.resume()
  })

/**
 * `--creds` as the registry client takes it (`USER:PASSWORD`): given whole, as is; `USER`
 * alone, completed from the terminal; refused when there is no terminal.
 */
export const completeCreds = (
  creds: Option.Option<string>,
  input: Tty = process.stdin,
  prompt: (s: string) => void = (s) => void process.stderr.write(s),
): Effect.Effect<Option.Option<string>, UsageError> => {
  if (Option.isNone(creds)) return Effect.succeed(creds)
  // podman: "username can't be empty" (the password is not shown back)
  if (creds.value === "" || creds.value.startsWith(":")) {
    return Effect.fail(new UsageError({ message: "--creds: the user name is empty: expected USER[:PASSWORD]" }))
  }
  if (!needsPassword(creds.value)) return Effect.succeed(creds)
  const user = creds.value.replace(/:$/, "")
  if (input.isTTY !== true) return Effect.fail(new UsageError({ message: NO_TTY_MESSAGE }))
  return Effect.flatMap(Effect.promise(() => readSecret(input, prompt)), (password) =>
    password === undefined
      ? Effect.fail(new UsageError({ message: "--creds USER: no password given" }))
      : Effect.succeed(Option.some(`${user}:${password}`)))
}
