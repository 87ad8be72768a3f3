// --creds USER completed from the terminal (src/cli/Creds.ts): the keys a password prompt must
// handle, on an input that behaves as a raw-mode TTY stream does (the real pty is exercised in
// test/integration/cli/PullFlags.test.ts).
import { describe, expect, test } from "bun:test"
import { Effect, Either, Option } from "effect"
import { EventEmitter } from "node:events"
import { completeCreds, NO_TTY_MESSAGE } from "../../../src/cli/Creds.ts"

class FakeTty extends EventEmitter {
  isTTY = true
  raw: Array<boolean> = []
  setRawMode(r: boolean) {
    this.raw.push(r)
  }
  resume() {}
  pause() {}
}

const ask = async (keys: ReadonlyArray<string>, end = false) => {
  const tty = new FakeTty()
  let shown = ""
  const running = Effect.runPromise(Effect.either(completeCreds(Option.some("bob"), tty, (s) => void (shown += s))))
  // the prompt listens once the effect has started
  for (let i = 0; i < 1000 && tty.listenerCount("data") === 0; i++) await new Promise((r) => setTimeout(r, 1))
  expect(tty.listenerCount("data")).toBe(1)
  for (const k of keys) tty.emit("data", Buffer.from(k))
  if (end) tty.emit("end")
  const r = await running
  return { r, shown, raw: tty.raw }
}

describe("completeCreds", () => {
  test("USER: with an empty password asks too, as podman does", async () => {
    const tty = new FakeTty()
    const running = Effect.runPromise(completeCreds(Option.some("bob:"), tty, () => undefined))
    for (let i = 0; i < 1000 && tty.listenerCount("data") === 0; i++) await new Promise((r) => setTimeout(r, 1))
    tty.emit("data", "pw\n")
    expect(await running).toEqual(Option.some("bob:pw"))
  })

  test("USER:PASSWORD and no --creds pass through without asking", async () => {
    const tty = new FakeTty()
    expect(await Effect.runPromise(completeCreds(Option.some("bob:pw:x"), tty))).toEqual(Option.some("bob:pw:x"))
    expect(await Effect.runPromise(completeCreds(Option.none(), tty))).toEqual(Option.none())
    expect(tty.raw).toEqual([])
  })

  test("asks in raw mode, nothing echoed; Enter ends it, Backspace removes a character", async () => {
    const { r, shown, raw } = await ask(["pa", "x\x7f", "ss", "\r"])
    expect(r).toEqual(Either.right(Option.some("bob:pass")))
    expect(shown).toBe("Password: \n")
    expect(raw).toEqual([true, false])
  })

  test("Ctrl-D on an empty line, or the terminal closing, gives no password: a usage error", async () => {
    for (const { keys, end } of [{ keys: ["\x04"], end: false }, { keys: ["ab"], end: true }]) {
      const { r, raw } = await ask(keys, end)
      expect(Either.isLeft(r) && r.left.message).toBe("--creds USER: no password given")
      expect(raw).toEqual([true, false])
    }
  })

  test("no terminal: the usage error names USER:PASSWORD; an empty --creds is refused", async () => {
    const pipe = Object.assign(new FakeTty(), { isTTY: false })
    const r = await Effect.runPromise(Effect.either(completeCreds(Option.some("bob"), pipe)))
    expect(Either.isLeft(r) && r.left.message).toBe(NO_TTY_MESSAGE)
    expect(NO_TTY_MESSAGE).toBe("--creds USER needs a terminal to ask for the password; pass USER:PASSWORD")
    for (const bad of ["", ":secret"]) {
      const r = await Effect.runPromise(Effect.either(completeCreds(Option.some(bad), new FakeTty())))
      expect(Either.isLeft(r) && r.left.message).toBe("--creds: the user name is empty: expected USER[:PASSWORD]")
    }
  })
})
