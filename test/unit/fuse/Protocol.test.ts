// The FUSE codecs: requests decoded into typed values (or refused as Malformed / Unsupported,
// never a throw), replies laid out as include/uapi/linux/fuse.h says.

import { describe, expect, test } from "bun:test"
import * as P from "../../../src/fuse/Protocol.ts"
import * as R from "../../../src/fuse/Replies.ts"

/** A request as the kernel writes it: fuse_in_header then `body`. */
const request = (opcode: number, body: Uint8Array, opts: { unique?: bigint; nodeid?: bigint; pid?: number; len?: number } = {}) => {
  const buf = new Uint8Array(P.IN_HEADER_SIZE + body.length)
  const v = new DataView(buf.buffer)
  v.setUint32(0, opts.len ?? buf.length, true)
  v.setUint32(4, opcode, true)
  v.setBigUint64(8, opts.unique ?? 7n, true)
  v.setBigUint64(16, opts.nodeid ?? 1n, true)
  v.setUint32(24, 0, true)
  v.setUint32(28, 0, true)
  v.setUint32(32, opts.pid ?? 4242, true)
  buf.set(body, P.IN_HEADER_SIZE)
  return buf
}
const cstr = (s: string) => new TextEncoder().encode(`${s}\0`)
const u32s = (...xs: number[]) => {
  const b = new Uint8Array(xs.length * 4)
  xs.forEach((x, i) => new DataView(b.buffer).setUint32(i * 4, x, true))
  return b
}
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

describe("decodeRequest", () => {
  test("LOOKUP: header fields and the name up to its NUL", () => {
    const r = P.decodeRequest(request(P.Opcode.LOOKUP, cstr("sha256:abc"), { unique: 99n, nodeid: 5n, pid: 1234 }))
    expect(r).toEqual({ op: "Lookup", h: { len: 51, opcode: 1, unique: 99n, nodeid: 5, uid: 0, gid: 0, pid: 1234 }, name: "sha256:abc" })
  })

  test("INIT, MKNOD (7.12+ layout), CREATE, RMDIR, READDIR, BATCH_FORGET, INTERRUPT", () => {
    expect(P.decodeRequest(request(P.Opcode.INIT, u32s(7, 41, 131072, 0x3fffffff)))).toMatchObject({ op: "Init", major: 7, minor: 41, maxReadahead: 131072 })
    expect(P.decodeRequest(request(P.Opcode.MKNOD, cat(u32s(0o100644, 0, 0o22, 0), cstr("use"))))).toMatchObject({ op: "Mknod", name: "use", mode: 0o100644 })
    expect(P.decodeRequest(request(P.Opcode.CREATE, cat(u32s(0o1101, 0o100666, 0o22, 0), cstr("use"))))).toMatchObject({ op: "Create", name: "use", mode: 0o100666, flags: 0o1101 })
    expect(P.decodeRequest(request(P.Opcode.RMDIR, cstr("sha256:x")))).toMatchObject({ op: "Rmdir", name: "sha256:x" })
    const rd = new Uint8Array(40)
    new DataView(rd.buffer).setBigUint64(8, 2n, true)
    new DataView(rd.buffer).setUint32(16, 4096, true)
    expect(P.decodeRequest(request(P.Opcode.READDIR, rd))).toMatchObject({ op: "Readdir", offset: 2, size: 4096 })
    const bf = new Uint8Array(8 + 32)
    const v = new DataView(bf.buffer)
    v.setUint32(0, 2, true)
    v.setBigUint64(8, 10n, true)
    v.setBigUint64(16, 3n, true)
    v.setBigUint64(24, 11n, true)
    v.setBigUint64(32, 1n, true)
    expect(P.decodeRequest(request(P.Opcode.BATCH_FORGET, bf))).toMatchObject({ op: "BatchForget", items: [{ nodeid: 10, nlookup: 3 }, { nodeid: 11, nlookup: 1 }] })
    const it = new Uint8Array(8)
    new DataView(it.buffer).setBigUint64(0, 77n, true)
    expect(P.decodeRequest(request(P.Opcode.INTERRUPT, it))).toMatchObject({ op: "Interrupt", target: 77n })
  })

  test("bytes that do not make a request are Malformed, never a throw", () => {
    expect(P.decodeRequest(new Uint8Array(10)).op).toBe("Malformed")
    expect(P.decodeRequest(request(P.Opcode.LOOKUP, new TextEncoder().encode("no-nul"))).op).toBe("Malformed")
    expect(P.decodeRequest(request(P.Opcode.LOOKUP, cstr("x"), { len: 999 })).op).toBe("Malformed")
    expect(P.decodeRequest(request(P.Opcode.INIT, u32s(7))).op).toBe("Malformed")
    // a count the body does not hold
    expect(P.decodeRequest(request(P.Opcode.BATCH_FORGET, u32s(1000, 0))).op).toBe("Malformed")
    // a node id no JS number can hold is not one of ours
    expect(P.decodeRequest(request(P.Opcode.GETATTR, new Uint8Array(16), { nodeid: 1n << 60n })).op).toBe("Malformed")
    // random bytes: always a value
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(Math.floor(Math.random() * 120))
      crypto.getRandomValues(b)
      expect(typeof P.decodeRequest(b).op).toBe("string")
    }
  })

  test("opcodes we do not implement are Unsupported; writes to the tree are Write", () => {
    expect(P.decodeRequest(request(9999, new Uint8Array(0))).op).toBe("Unsupported")
    expect(P.decodeRequest(request(P.Opcode.READDIRPLUS, new Uint8Array(40))).op).toBe("Unsupported")
    expect(P.decodeRequest(request(P.Opcode.SYMLINK, cat(cstr("a"), cstr("b")))).op).toBe("Write")
    expect(P.decodeRequest(request(P.Opcode.SETATTR, new Uint8Array(88))).op).toBe("Write")
  })
})

describe("replies", () => {
  test("an error is a bare header with -errno", () => {
    const b = R.replyError(5n, P.Errno.ENOENT)
    const v = new DataView(b.buffer)
    expect([b.length, v.getUint32(0, true), v.getInt32(4, true), v.getBigUint64(8, true)]).toEqual([16, 16, -2, 5n])
  })

  test("fuse_entry_out: node id, timeouts (seconds + nanoseconds), then fuse_attr", () => {
    const b = R.replyEntry(1n, 42, { ino: 42, mode: P.S_IFDIR | 0o755, size: 0, nlink: 2, time: 1000 }, { entry: 1.5, attr: 60 })
    const v = new DataView(b.buffer)
    expect(b.length).toBe(16 + 128)
    expect(v.getBigUint64(16, true)).toBe(42n) // nodeid
    expect(v.getBigUint64(32, true)).toBe(1n) // entry_valid
    expect(v.getUint32(48, true)).toBe(500_000_000) // entry_valid_nsec
    expect(v.getBigUint64(40, true)).toBe(60n) // attr_valid
    expect(v.getBigUint64(56, true)).toBe(42n) // attr.ino
    expect(v.getUint32(56 + 60, true)).toBe(P.S_IFDIR | 0o755) // attr.mode
    expect(v.getUint32(56 + 64, true)).toBe(2) // attr.nlink
  })

  test("READDIR entries are 8-byte aligned, carry the next offset, and stop at the size asked", () => {
    const entries = [{ ino: 1, name: ".", type: P.DT_DIR }, { ino: 1, name: "..", type: P.DT_DIR }, { ino: 9, name: "diff", type: P.DT_LNK }]
    const all = R.encodeDirents(entries, 0, 4096)
    expect(all.length).toBe(32 + 32 + 32)
    const v = new DataView(all.buffer)
    expect([v.getBigUint64(64, true), v.getBigUint64(72, true), v.getUint32(80, true), v.getUint32(84, true)]).toEqual([9n, 3n, 4, P.DT_LNK])
    expect(new TextDecoder().decode(all.subarray(88, 92))).toBe("diff")
    expect(R.encodeDirents(entries, 1, 40).length).toBe(32) // only one fits
    expect(R.encodeDirents(entries, 3, 4096).length).toBe(0) // past the end
  })

  test("fuse_init_out is 64 bytes with our version and limits", () => {
    const b = R.replyInit(1n, { minor: 38, maxReadahead: 4096, flags: P.InitFlag.PARALLEL_DIROPS, maxBackground: 64, maxWrite: 131072, maxPages: 32 })
    const v = new DataView(b.buffer)
    expect(b.length).toBe(16 + 64)
    expect([v.getUint32(16, true), v.getUint32(20, true), v.getUint32(28, true), v.getUint32(36, true)]).toEqual([7, 38, P.InitFlag.PARALLEL_DIROPS, 131072])
  })
})

describe("passthrough (7.40)", () => {
  test("INIT: flags2 is read only when INIT_EXT says the extended fuse_init_in is there", () => {
    const ext = P.InitFlag.INIT_EXT | P.InitFlag.ASYNC_READ
    expect(P.decodeRequest(request(P.Opcode.INIT, cat(u32s(7, 44, 131072, ext, P.InitFlag2.PASSTHROUGH), new Uint8Array(44))))).toMatchObject({ op: "Init", flags: ext, flags2: 1 << 5 })
    expect(P.decodeRequest(request(P.Opcode.INIT, u32s(7, 31, 131072, P.InitFlag.ASYNC_READ)))).toMatchObject({ op: "Init", flags2: 0 })
  })

  test("OPEN carries the open(2) flags; RELEASE the handle; read-only means O_ACCMODE 0", () => {
    const open = P.decodeRequest(request(P.Opcode.OPEN, u32s(0o100000, 0)))
    expect(open).toMatchObject({ op: "Open", flags: 0o100000 })
    expect(P.isReadOnlyOpen(0o100000)).toBe(true)
    expect(P.isReadOnlyOpen(0o100002)).toBe(false) // O_RDWR
    expect(P.isReadOnlyOpen(1)).toBe(false) // O_WRONLY
    const rel = new Uint8Array(24)
    new DataView(rel.buffer).setBigUint64(0, (1n << 63n) | 5n, true)
    expect(P.decodeRequest(request(P.Opcode.RELEASE, rel))).toMatchObject({ op: "Release", fh: (1n << 63n) | 5n })
    expect(P.decodeRequest(request(P.Opcode.RELEASE, new Uint8Array(4)))).toMatchObject({ op: "Malformed" })
  })

  test("fuse_open_out names the backing id after the flags; fuse_init_out grants flags2 and the stack depth", () => {
    const o = new DataView(R.replyOpen(3n, 9n, P.OpenFlag.PASSTHROUGH, 12).buffer)
    expect([o.getBigUint64(16, true), o.getUint32(24, true), o.getInt32(28, true)]).toEqual([9n, 1 << 7, 12])
    const i = new DataView(R.replyInit(1n, { minor: 40, maxReadahead: 0, flags: P.InitFlag.INIT_EXT, maxBackground: 64, maxWrite: 4096, maxPages: 1, flags2: P.InitFlag2.PASSTHROUGH, maxStackDepth: 1 }).buffer)
    expect([i.getUint32(16 + 32, true), i.getUint32(16 + 36, true)]).toEqual([1 << 5, 1])
  })

  test("a BackedOpen is its fallback answer's bytes, plus the backing file and its size", () => {
    const plain = R.replyOpen(4n, 0n, P.OpenFlag.KEEP_CACHE)
    const b = R.backedOpen(plain, "/store/x/diff/etc/os-release", 42)
    expect(b).toBeInstanceOf(Uint8Array)
    expect(Buffer.from(b).equals(Buffer.from(plain))).toBe(true)
    expect([b.backing, b.size, R.replyErrno(b), R.replyErrno(R.replyError(4n, P.Errno.ENOENT))]).toEqual(["/store/x/diff/etc/os-release", 42, 0, 2])
  })
})
