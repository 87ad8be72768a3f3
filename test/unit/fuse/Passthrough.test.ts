// FUSE passthrough against the real kernel (6.9+, /dev/fuse, mount(2); needs root): a small
// tree whose `complete` file is answered with a BackedOpen naming a file on disk. Its reads
// never reach the session (READ requests are counted per node); a file answered the plain way
// is still read through the session; a node with a cached open falls back instead of failing
// the open; the kernel refusing one backing file (on a stacked filesystem: ELOOP) sends that
// file through the session, told once; the kernel refusing passthrough itself (a server
// without CAP_SYS_ADMIN: EPERM) turns it off once, logged, and reads go through the session.
//
// Every read happens asynchronously or in another process: this thread answers the requests.

import { afterAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as P from "../../../src/fuse/Protocol.ts"
import * as R from "../../../src/fuse/Replies.ts"
import { type Session, startSession } from "../../../src/fuse/Session.ts"

const dirs: string[] = []
const sessions: Session[] = []
const overlays: string[] = []
afterAll(() => {
  for (const s of sessions) {
    try {
      s.unmount()
    } catch {
      // already gone
    }
  }
  for (const m of overlays) {
    try {
      execFileSync("umount", [m])
    } catch {
      // already gone
    }
  }
  // a directory something is still mounted on is left: a recursive removal would walk into it
  const mounted = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4] ?? "")
  for (const d of dirs) if (!mounted.some((m) => m === d || m.startsWith(`${d}/`))) rmSync(d, { recursive: true, force: true })
})

const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(d)
  return d
}

const now = Date.now() / 1000
const dirAttr: R.Attr = { ino: 1, mode: P.S_IFDIR | 0o555, size: 0, nlink: 2, time: now }
const fileAttr = (ino: number, size: number): R.Attr => ({ ino, mode: P.S_IFREG | 0o444, size, nlink: 1, time: now })

/** 3 MiB of bytes that differ from offset to offset (a misplaced page shows) */
const content = (() => {
  const b = Buffer.alloc(3 << 20)
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i)
  return b
})()

interface Tree {
  readonly mnt: string
  readonly session: Session
  /** READ requests per name */
  readonly reads: Map<string, number>
  readonly notices: string[]
  /** `later` is answered plainly until this is set, then with a BackedOpen */
  complete: { later: boolean }
}

/**
 * `complete`: a BackedOpen naming `backing`; `partial`: a plain open (READ answered from memory);
 * `wrongsize`: a BackedOpen whose size the backing file does not have; `later`: plain, then backed.
 */
const mountTree = async (backing: string, opts: { passthrough?: boolean; other?: string } = {}): Promise<Tree> => {
  const mnt = tmp("als-pt-mnt-")
  const names = ["complete", "partial", "wrongsize", "later", "other"]
  const reads = new Map(names.map((n) => [n, 0]))
  const notices: string[] = []
  const flags = { later: false }
  const nameOf = (nodeid: number) => names[nodeid - 2]!
  const session = await startSession({
    mountpoint: mnt,
    passthrough: opts.passthrough,
    onNotice: (m) => notices.push(m),
    handler: {
      handle: (r) => {
        const u = r.h.unique
        switch (r.op) {
          case "Getattr":
            return R.replyAttr(u, r.h.nodeid === 1 ? dirAttr : fileAttr(r.h.nodeid, content.length), 0)
          case "Lookup": {
            const i = names.indexOf(r.name)
            return i < 0 ? R.replyError(u, P.Errno.ENOENT) : R.replyEntry(u, i + 2, fileAttr(i + 2, content.length), { entry: 0, attr: 0 })
          }
          case "Open": {
            const plain = R.replyOpen(u, 0n, P.OpenFlag.KEEP_CACHE)
            const name = nameOf(r.h.nodeid)
            if (name === "complete" || (name === "later" && flags.later)) return R.backedOpen(plain, backing, content.length)
            if (name === "wrongsize") return R.backedOpen(plain, backing, content.length + 1)
            if (name === "other") return R.backedOpen(plain, opts.other ?? backing, content.length)
            return plain
          }
          case "Read": {
            const name = nameOf(r.h.nodeid)
            reads.set(name, reads.get(name)! + 1)
            return R.replyData(u, content.subarray(r.offset, r.offset + r.size))
          }
          case "Release":
            return R.replyEmpty(u)
          case "Forget":
          case "BatchForget":
          case "Interrupt":
            return undefined
          default:
            return R.replyError(u, P.Errno.ENOSYS)
        }
      },
    },
    onError: () => undefined,
  })
  sessions.push(session)
  return { mnt, session, reads, notices, complete: flags }
}

/** Reads a whole file in another process (cat). */
const readViaChild = async (file: string): Promise<Buffer> => {
  const child = Bun.spawn(["cat", file], { stdout: "pipe", stderr: "pipe" })
  const out = Buffer.from(await new Response(child.stdout).arrayBuffer())
  const err = await new Response(child.stderr).text()
  expect({ code: await child.exited, err }).toEqual({ code: 0, err: "" })
  return out
}

const backingFile = () => {
  const d = tmp("als-pt-backing-")
  const f = join(d, "file")
  writeFileSync(f, content)
  return f
}

describe("FUSE passthrough", () => {
  test("a complete file is read by the kernel from its backing file: right bytes, no READ reaches the session; a plain file still is read through it", async () => {
    const t = await mountTree(backingFile())
    expect(t.session.passthrough().state).toBe("on")
    expect((await readViaChild(join(t.mnt, "complete"))).equals(content)).toBe(true)
    // mmap too (how binaries are run): the kernel maps the backing file's pages
    const child = Bun.spawn(["python3", "-c", `import mmap,sys
f = open(${JSON.stringify(join(t.mnt, "complete"))}, "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
sys.stdout.buffer.write(m[1 << 20:(1 << 20) + 4096])`], { stdout: "pipe", stderr: "inherit" })
    const mapped = Buffer.from(await new Response(child.stdout).arrayBuffer())
    expect(await child.exited).toBe(0)
    expect(mapped.equals(content.subarray(1 << 20, (1 << 20) + 4096))).toBe(true)
    expect(t.reads.get("complete")).toBe(0)
    expect(t.session.passthrough().stats.passthrough).toBeGreaterThanOrEqual(2)

    expect((await readViaChild(join(t.mnt, "partial"))).equals(content)).toBe(true)
    expect(t.reads.get("partial")).toBeGreaterThan(0)

    // a backing file that does not check out (size) is not used: read through the session
    expect((await readViaChild(join(t.mnt, "wrongsize"))).subarray(0, content.length).equals(content)).toBe(true)
    expect(t.reads.get("wrongsize")).toBeGreaterThan(0)
    expect(t.notices.some((n) => /not used: .* is 3145728 bytes, not 3145729/.test(n))).toBe(true)
    expect(t.session.passthrough().state).toBe("on")
    t.session.unmount()
  }, 120_000)

  test("opens of one node at the same time share one backing file; it is dropped at the last release and registered again", async () => {
    const t = await mountTree(backingFile())
    const p = join(t.mnt, "complete")
    const a = await fs.promises.open(p, "r")
    const b = await fs.promises.open(p, "r") // a second backing id for the inode would make this open EIO
    const [ra, rb] = [Buffer.alloc(8192), Buffer.alloc(8192)]
    await a.read(ra, 0, 8192, 0)
    await b.read(rb, 0, 8192, 8192)
    expect(ra.equals(content.subarray(0, 8192)) && rb.equals(content.subarray(8192, 16384))).toBe(true)
    await a.close()
    await b.close()
    // the RELEASEs reach the session asynchronously; then a new open registers the file again
    for (let i = 0; i < 100 && t.session.passthrough().stats.passthrough < 2; i++) await Bun.sleep(20)
    expect((await readViaChild(p)).equals(content)).toBe(true)
    expect(t.reads.get("complete")).toBe(0)
    expect(t.session.passthrough().stats.passthrough).toBe(3)
    t.session.unmount()
  }, 120_000)

  test("a node opened the plain way and still open: a backed open of it falls back instead of failing with EIO", async () => {
    const t = await mountTree(backingFile())
    const p = join(t.mnt, "later")
    const held = await fs.promises.open(p, "r") // cached mode: the kernel refuses passthrough on this inode while it is open
    t.complete.later = true
    expect((await readViaChild(p)).equals(content)).toBe(true)
    expect(t.session.passthrough().stats.fallback).toBe(1)
    await held.close()
    // once released, the node goes passthrough
    for (let i = 0; i < 100; i++) {
      const before = t.reads.get("later")!
      await readViaChild(p)
      if (t.reads.get("later") === before && t.session.passthrough().stats.passthrough > 0) break
      await Bun.sleep(20)
    }
    expect(t.session.passthrough().stats.passthrough).toBeGreaterThanOrEqual(1)
    t.session.unmount()
  }, 120_000)

  test("the kernel refuses one backing file (on a stacked filesystem: ELOOP): that file is read through the session, told once; others still go passthrough", async () => {
    // an overlay mount stacks one deep: the kernel refuses its files as backing files (ELOOP),
    // since we ask for a stack depth of 1 to leave room for podman's overlay on top of us
    const base = tmp("als-pt-ovl-")
    for (const d of ["lower", "upper", "work", "merged"]) mkdirSync(join(base, d))
    writeFileSync(join(base, "lower", "file"), content)
    execFileSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${base}/lower,upperdir=${base}/upper,workdir=${base}/work`, `${base}/merged`])
    overlays.push(`${base}/merged`)
    const t = await mountTree(join(base, "merged", "file"), { other: backingFile() })
    expect((await readViaChild(join(t.mnt, "complete"))).equals(content)).toBe(true)
    expect(t.reads.get("complete")).toBeGreaterThan(0)
    t.complete.later = true // backed by the same overlay file: refused again, not told again
    expect((await readViaChild(join(t.mnt, "later"))).equals(content)).toBe(true)
    expect(t.notices).toHaveLength(1)
    expect(t.notices[0]).toMatch(/refused for .*merged\/file \(ELOOP\)/)
    expect(t.session.passthrough().state).toBe("on")
    expect((await readViaChild(join(t.mnt, "other"))).equals(content)).toBe(true)
    expect(t.reads.get("other")).toBe(0)
    t.session.unmount()
  }, 120_000)

  test("the kernel refuses passthrough itself (a server without CAP_SYS_ADMIN: EPERM): it turns off once, logged, and reads go through the session", async () => {
    // a server that mounts, then drops CAP_SYS_ADMIN from its (JavaScript) thread's effective set
    const mnt = tmp("als-pt-noadmin-")
    const backing = backingFile()
    const script = `
      const P = await import(${JSON.stringify(join(import.meta.dir, "../../../src/fuse/Protocol.ts"))})
      const R = await import(${JSON.stringify(join(import.meta.dir, "../../../src/fuse/Replies.ts"))})
      const { startSession } = await import(${JSON.stringify(join(import.meta.dir, "../../../src/fuse/Session.ts"))})
      const { dlopen, FFIType, ptr } = await import("bun:ffi")
      const fs = await import("node:fs")
      const bytes = fs.readFileSync(${JSON.stringify(backing)})
      const now = Date.now() / 1000
      const file = { ino: 2, mode: P.S_IFREG | 0o444, size: bytes.length, nlink: 1, time: now }
      await startSession({ mountpoint: ${JSON.stringify(mnt)}, handler: { handle: (r) => {
        const u = r.h.unique
        switch (r.op) {
          case "Getattr": return R.replyAttr(u, r.h.nodeid === 1 ? { ino: 1, mode: P.S_IFDIR | 0o555, size: 0, nlink: 2, time: now } : file, 0)
          case "Lookup": return r.name === "complete" ? R.replyEntry(u, 2, file, { entry: 0, attr: 0 }) : R.replyError(u, P.Errno.ENOENT)
          case "Open": return R.backedOpen(R.replyOpen(u, 0n, P.OpenFlag.KEEP_CACHE), ${JSON.stringify(backing)}, bytes.length)
          case "Read": process.stdout.write("READ\\n"); return R.replyData(u, bytes.subarray(r.offset, r.offset + r.size))
          case "Release": return R.replyEmpty(u)
          case "Forget": case "BatchForget": case "Interrupt": return undefined
          default: return R.replyError(u, P.Errno.ENOSYS)
        }
      } } })
      // capget/capset (version 3): clear CAP_SYS_ADMIN (21) from this thread's effective set
      const { symbols: c } = dlopen("libc.so.6", { capget: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 }, capset: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 } })
      const hdr = new Uint32Array([0x20080522, 0])
      const data = new Uint32Array(6)
      if (c.capget(ptr(hdr), ptr(data)) !== 0) throw new Error("capget")
      data[0] &= ~(1 << 21)
      if (c.capset(ptr(hdr), ptr(data)) !== 0) throw new Error("capset")
      process.stdout.write("ready\\n")
      setInterval(() => {}, 1000)
    `
    const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" })
    let out = ""
    const reading = (async () => {
      for await (const chunk of child.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(chunk)
    })()
    const errText = new Response(child.stderr).text()
    try {
      for (let i = 0; i < 600 && !out.includes("ready"); i++) await Bun.sleep(50)
      expect(out).toContain("ready")
      expect((await readViaChild(join(mnt, "complete"))).equals(content)).toBe(true)
      const readsFirst = out.split("READ").length - 1
      expect(readsFirst).toBeGreaterThan(0)
      expect((await readViaChild(join(mnt, "complete"))).equals(content)).toBe(true)
    } finally {
      child.kill("SIGKILL")
      await child.exited
      execFileSync("umount", ["-l", mnt])
    }
    await reading
    const err = await errText
    expect(err.match(/FUSE passthrough off \(the kernel refused it: EPERM\)/g)).toHaveLength(1)
  }, 120_000)

  test("passthrough: false answers a backed open with its fallback, nothing logged", async () => {
    const t = await mountTree(backingFile(), { passthrough: false })
    expect(t.session.passthrough().state).toBe("off")
    expect((await readViaChild(join(t.mnt, "complete"))).equals(content)).toBe(true)
    expect(t.reads.get("complete")).toBeGreaterThan(0)
    expect(t.notices).toEqual([])
    t.session.unmount()
  }, 120_000)
})
