// `als serve` answers requests from whatever process walks its mount, as root: one request must
// never throw, hang or reach the store with a name it did not parse. Two properties, fixed seed:
// the FUSE decoder over any bytes, and the served tree (src/serve/ServeFs.ts) over sequences of
// requests with hostile names, node ids and sizes, against a supply that records what reaches it.

import { describe, expect, test } from "bun:test"
import fc from "fast-check"
import { type Digest, isDigest } from "../../src/domain/Digest.ts"
import { encodeRef } from "../../src/domain/StorePaths.ts"
import * as P from "../../src/fuse/Protocol.ts"
import type { LayerRequest, ServedLayer } from "../../src/serve/Resolver.ts"
import { makeServeFs } from "../../src/serve/ServeFs.ts"
import { parseRefName } from "../../src/serve/Names.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

const OPCODES = Object.values(P.Opcode)

const header = (len: number, opcode: number, unique: bigint, nodeid: bigint) => {
  const b = new Uint8Array(P.IN_HEADER_SIZE)
  const v = new DataView(b.buffer)
  v.setUint32(0, len, true)
  v.setUint32(4, opcode, true)
  v.setBigUint64(8, unique, true)
  v.setBigUint64(16, nodeid, true)
  v.setUint32(32, 4242, true)
  return b
}

/** The out header every answer starts with: its length, the error, the request it answers. */
const outHeader = (b: Uint8Array) => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  return { len: v.getUint32(0, true), error: v.getInt32(4, true), unique: v.getBigUint64(8, true) }
}

const digestArb: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{64}$/).map((h) => `sha256:${h}`),
  fc.constantFrom(`sha256:${"a".repeat(64)}`, `sha256:${"b".repeat(64)}`, `sha256:${"A".repeat(64)}`, `sha256:${"a".repeat(63)}`, `sha512:${"c".repeat(128)}`),
)

const refArb = fc.oneof(
  fc.constantFrom("127.0.0.1:5000/app/web:1", "docker.io/library/busybox:latest", "quay.io/x/y@sha256:" + "d".repeat(64)),
  fc.string({ maxLength: 80 }),
)

/** Names a process might look up: the tree's own shapes, near misses and anything at all. */
const nameArb: fc.Arbitrary<string> = fc.oneof(
  refArb.map(encodeRef),
  digestArb,
  fc.constantFrom("diff", "info", "blob", "use", ".pool", ".", "..", "", "../../etc", "a/b", "rootfs.", "\0"),
  digestArb.map((d) => `rootfs.${d}`),
  fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 60 })).map(([k, v]) => Buffer.from(`${k}=${v}`, "utf8").toString("base64").replaceAll("/", "_")),
  fc.string({ maxLength: 300 }),
  fc.string({ minLength: 1000, maxLength: 5000 }),
)

type Op =
  | { kind: "Lookup"; at: number; name: string }
  | { kind: "Getattr" | "Readlink" | "Opendir" | "Open" | "Statfs" | "Releasedir"; at: number }
  | { kind: "Readdir" | "Read"; at: number; offset: number; size: number }
  | { kind: "Rmdir" | "Mknod" | "Create" | "Mkdir" | "Unlink"; at: number; name: string }
  | { kind: "Forget"; at: number; n: number }
  | { kind: "Getxattr"; at: number; name: string; size: number }
  | { kind: "Listxattr"; at: number; size: number }

const at = fc.oneof(fc.nat({ max: 40 }), fc.constant(1), fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }))
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("Lookup" as const), at, name: nameArb }) },
  fc.record({ kind: fc.constantFrom("Getattr" as const, "Readlink" as const, "Opendir" as const, "Open" as const, "Statfs" as const, "Releasedir" as const), at }),
  fc.record({ kind: fc.constantFrom("Readdir" as const, "Read" as const), at, offset: fc.oneof(fc.nat({ max: 10 }), fc.nat()), size: fc.oneof(fc.nat({ max: 300 }), fc.nat()) }),
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("Rmdir" as const, "Mknod" as const, "Create" as const, "Mkdir" as const, "Unlink" as const), at, name: nameArb }) },
  fc.record({ kind: fc.constant("Forget" as const), at, n: fc.nat({ max: 5 }) }),
  fc.record({ kind: fc.constant("Getxattr" as const), at, name: fc.string({ maxLength: 40 }), size: fc.nat({ max: 65536 }) }),
  fc.record({ kind: fc.constant("Listxattr" as const), at, size: fc.nat({ max: 65536 }) }),
)

describe("als serve's request boundary, fuzzed", () => {
  test("the FUSE decoder: any message gives a request value, never a throw; names never hold a NUL", () => {
    const message = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.tuple(fc.constantFrom(...OPCODES), fc.uint8Array({ maxLength: 160 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: -8, max: 8 }))
        .map(([op, body, nodeid, skew]) => {
          const m = new Uint8Array(P.IN_HEADER_SIZE + body.length)
          m.set(header(Math.max(0, m.length + skew), op, 9n, nodeid))
          m.set(body, P.IN_HEADER_SIZE)
          return m
        }),
    )
    fc.assert(
      fc.property(message, (m) => {
        const r = P.decodeRequest(m)
        expect(typeof r.op).toBe("string")
        if ("name" in r && r.op !== "Getxattr") expect(r.name.includes("\0")).toBe(false)
        if (r.op !== "Malformed") expect(Number.isSafeInteger(r.h.nodeid)).toBe(true)
      }),
      fuzzParams(5),
    )
  }, FUZZ_TIMEOUT_MS)

  test("the served tree: any sequence of requests is answered (never a throw), each answer well-formed, and the store is asked only parsed names", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 40 }), fc.boolean(), async (ops, found) => {
        const asked: LayerRequest[] = []
        const storedAsked: Digest[] = []
        const layer = (key: Digest): ServedLayer => ({ dir: `/var/lib/als/${key}`, layer: key })
        const fs = makeServeFs({
          resolve: async (req) => {
            asked.push(req)
            return found ? layer(req.key) : undefined
          },
          stored: async (key) => {
            storedAsked.push(key)
            return found ? layer(key) : undefined
          },
          used: () => undefined,
        })
        const ids = [1]
        let unique = 100n
        for (const op of ops) {
          unique++
          const nodeid = op.at < 40 ? (ids[op.at % ids.length] ?? 1) : op.at
          const h: P.InHeader = { len: 0, opcode: 0, unique, nodeid, uid: 0, gid: 0, pid: 4242 }
          const req: P.Request = op.kind === "Lookup" ? { op: "Lookup", h, name: op.name }
            : op.kind === "Readdir" ? { op: "Readdir", h, fh: 0n, offset: op.offset, size: op.size }
            : op.kind === "Read" ? { op: "Read", h, fh: 0n, offset: op.offset, size: op.size }
            : op.kind === "Open" ? { op: "Open", h, flags: 0 }
            : op.kind === "Forget" ? { op: "Forget", h, nlookup: op.n }
            : op.kind === "Mknod" ? { op: "Mknod", h, name: op.name, mode: 0o100644 }
            : op.kind === "Create" ? { op: "Create", h, name: op.name, mode: 0o100644, flags: 0 }
            : op.kind === "Rmdir" || op.kind === "Mkdir" || op.kind === "Unlink" ? { op: op.kind, h, name: op.name }
            : op.kind === "Getxattr" ? { op: "Getxattr", h, name: op.name, size: op.size }
            : op.kind === "Listxattr" ? { op: "Listxattr", h, size: op.size }
            : { op: op.kind, h }
          const out = await fs.handle(req)
          if (!P.expectsReply(req)) continue
          expect(out).toBeInstanceOf(Uint8Array)
          const o = outHeader(out!)
          expect({ len: o.len, unique: o.unique }).toEqual({ len: out!.length, unique })
          expect(o.error <= 0 && o.error > -4096).toBe(true)
          if (op.kind === "Lookup" && o.error === 0) {
            // a name the tree answered is one of its shapes: never a path, never empty, never . or ..
            expect(op.name.length > 0 && !op.name.includes("/") && !op.name.includes("\0") && op.name !== "." && op.name !== "..").toBe(true)
            const id = Number(new DataView(out!.buffer, out!.byteOffset).getBigUint64(P.OUT_HEADER_SIZE, true))
            expect(Number.isSafeInteger(id) && id > 1).toBe(true)
            ids.push(id)
          }
          if (op.kind === "Mkdir" || op.kind === "Unlink") expect(o.error).not.toBe(0)
        }
        // what reached the store: digests and references that parse, nothing raw
        for (const r of asked) {
          expect(isDigest(r.key)).toBe(true)
          if (r.ref !== undefined) expect(parseRefName(encodeRef(r.ref))).toBe(r.ref)
        }
        for (const k of storedAsked) expect(isDigest(k)).toBe(true)
      }),
      fuzzParams(1),
    )
  }, FUZZ_TIMEOUT_MS)
})
