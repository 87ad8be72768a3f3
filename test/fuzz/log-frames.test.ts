// Property tests of the event log's readers: the frame reader, scanner and tail finder
// (src/events/LogFrames.ts, FrameReader.ts, LogTail.ts, LogVerify.ts over LogFormat.ts), the payload decoders (Payload.ts) and the fast
// msgpack subset reader (FastUnpack.ts). The log is the store's own file, but anyone with
// write access to the store can hand als any bytes there.
// Properties: events appended by the real EventLog read back equal (round trip); any bytes,
// and any damage to a real log, end in entries or a typed LogError (LogCorrupt,
// LogDecodeError), never a defect; what a damaged log still yields is a prefix of what was
// written (the hash chain lets nothing else through); FastUnpack agrees with msgpackr or
// says Unsupported.
import { describe, expect, test } from "bun:test"
import { Arbitrary as EffectArbitrary, Effect, Either, FastCheck as efc, Layer, Stream } from "effect"
import fc from "fast-check"
import { Buffer } from "node:buffer"
import { Packr, Unpackr } from "msgpackr"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { EventLog, EventLogFile, EventLogOn, IdsSequential, isLogError, MemoryStore } from "../../src/events/EventLog.ts"
import { Event } from "../../src/events/Events.ts"
import { fastPayload, fastUnpack, Unsupported } from "../../src/events/FastUnpack.ts"
import { checkFrame, FILE_HEADER, frameSize, readIndex, writeFrame } from "../../src/events/LogFormat.ts"
import { decodeFast, decodeStrict } from "../../src/events/Payload.ts"
import { sampleEvent } from "../unit/events/support.ts"
import { FUZZ_TIMEOUT_MS, fuzzParams } from "./config.ts"

type Api = typeof EventLog.Service

const layerOn = (store: MemoryStore) => EventLogOn(store).pipe(Layer.provide(IdsSequential("fuzz")))

/** Runs `f` on a log over `store`; a defect (an untyped throw) rejects, which fails the property. */
const onLog = <A, E>(store: MemoryStore, f: (log: Api) => Effect.Effect<A, E>): Promise<Either.Either<A, E>> =>
  Effect.runPromise(Effect.either(Effect.flatMap(EventLog, f).pipe(Effect.provide(layerOn(store)))))

const storeOf = (bytes: Uint8Array): MemoryStore => {
  const s = new MemoryStore()
  if (bytes.length > 0) s.append(Buffer.from(bytes))
  return s
}

/** The bytes of a real log holding `events`, appended in batches of `batch`. */
const writeLog = async (events: ReadonlyArray<Event>, batch: number): Promise<Buffer> => {
  const store = new MemoryStore()
  for (let i = 0; i < events.length; i += batch) {
    const r = await onLog(store, (log) => log.append(events.slice(i, i + batch), "fuzz"))
    if (Either.isLeft(r)) throw new Error(`append failed: ${JSON.stringify(r.left)}`)
  }
  return Buffer.from(store.bytes())
}

const expectTypedFailure = (r: Either.Either<unknown, unknown>): void => {
  if (Either.isLeft(r)) expect(isLogError(r.left)).toBe(true)
}

/** Reads everything the log yields before it ends or fails, and the failure. */
const readAll = async (store: MemoryStore) => {
  const seen: Array<Event> = []
  const r = await onLog(store, (log) => Stream.runForEach(log.stream(), (e) => Effect.sync(() => seen.push(e.event))))
  return { seen, result: r }
}

/** Every reader and the appender, on a copy of `bytes`: each ends in a value or a typed LogError. */
const everyReaderTyped = async (bytes: Uint8Array): Promise<{ seen: Array<Event> }> => {
  const { seen, result } = await readAll(storeOf(bytes))
  expectTypedFailure(result)
  const folded = await onLog(storeOf(bytes), (log) => log.fold(0, (n) => n + 1))
  expectTypedFailure(folded)
  if (Either.isRight(folded) && Either.isRight(result)) expect(folded.right).toBe(seen.length)
  const verified = await onLog(storeOf(bytes), (log) => log.verify())
  expectTypedFailure(verified)
  expectTypedFailure(await onLog(storeOf(bytes), (log) => log.head()))
  // an append either repairs a torn tail and succeeds, or refuses a damaged log
  const appended = await onLog(storeOf(bytes), (log) => log.append([sampleEvent(0)], "fuzz"))
  expectTypedFailure(appended)
  // offsets inside the log: a start that is not a frame boundary is a LogCorrupt, never a throw
  for (const from of [9, bytes.length >> 1, bytes.length]) {
    const r = await onLog(storeOf(bytes), (log) => Stream.runDrain(log.stream({ fromOffset: from })))
    expectTypedFailure(r)
  }
  return { seen }
}

const sampleEvents = fc.integer({ min: 1, max: 12 }).map((n) => Array.from({ length: n }, (_, i) => sampleEvent(i)))

/** Damage: bytes flipped, cut, zeroed, spliced, or a stretch repeated. */
const damage = fc.oneof(
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }).map((flips) => (b: Buffer) => {
    const c = Buffer.from(b)
    for (const [at, x] of flips) c[at % c.length] ^= x
    return c
  }),
  fc.nat().map((cut) => (b: Buffer) => b.subarray(0, cut % (b.length + 1))),
  fc.tuple(fc.nat(), fc.nat({ max: 200 })).map(([at, n]) => (b: Buffer) => {
    const c = Buffer.from(b)
    c.fill(0, at % c.length, Math.min(c.length, (at % c.length) + n))
    return c
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 100 })).map(([at, ins]) => (b: Buffer) => {
    const p = at % (b.length + 1)
    return Buffer.concat([b.subarray(0, p), ins, b.subarray(p)])
  }),
  fc.tuple(fc.nat(), fc.nat(), fc.nat()).map(([from, len, to]) => (b: Buffer) => {
    const s = from % b.length
    const piece = b.subarray(s, s + (len % 400))
    const p = to % (b.length + 1)
    return Buffer.concat([b.subarray(0, p), piece, b.subarray(p)])
  }),
  fc.integer({ min: 1, max: 300 }).map((n) => (b: Buffer) => Buffer.concat([b, Buffer.alloc(n)])),
)

describe("log frames, fuzzed", () => {
  test("round trip: any payload framed by writeFrame checks out whole, and any one changed byte is caught", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat({ max: 2 ** 40 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (payload, index, prev, at, x) => {
          const size = frameSize(payload.length)
          const buf = Buffer.alloc(size + 7)
          writeFrame(buf, 7, index, prev, payload)
          expect(checkFrame(buf, 7, size)).toEqual({ ok: true, len: payload.length })
          expect(readIndex(buf, 7)).toBe(index)
          expect(Buffer.from(buf.subarray(7 + 16, 7 + 48)).equals(Buffer.from(prev))).toBe(true)
          expect(Buffer.from(buf.subarray(7 + 48, 7 + 48 + payload.length)).equals(Buffer.from(payload))).toBe(true)
          const hurt = Buffer.from(buf)
          hurt[7 + (at % size)] ^= x
          expect(checkFrame(hurt, 7, size).ok).toBe(false)
          // fewer bytes than the frame: never a read past them
          expect(checkFrame(buf, 7, at % size).ok).toBe(false)
        },
      ),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("checkFrame on arbitrary bytes: a verdict, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (b, magic) => {
        const buf = Buffer.from(b)
        if (magic && buf.length >= 8) {
          buf.write("ALSF", 0, "latin1")
          buf.writeUInt32LE(Math.max(0, buf.length - 88), 4)
        }
        const r = checkFrame(buf, 0, buf.length)
        expect(typeof r.ok).toBe("boolean")
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)
})

describe("event log readers, fuzzed", () => {
  test("round trip: any valid events appended by the real EventLog read back equal, and verify clean", async () => {
    // effect's own fast-check builds the events from the Event schema: every tag, every field
    const arb = efc.array(EffectArbitrary.make(Event), { minLength: 1, maxLength: 6 })
    await efc.assert(
      efc.asyncProperty(arb, efc.integer({ min: 1, max: 4 }), async (events, batch) => {
        const bytes = await writeLog(events, batch)
        const { seen, result } = await readAll(storeOf(bytes))
        expect(Either.isRight(result)).toBe(true)
        // what was written is what the schema encodes; compare through a JSON round trip (undefined fields vanish)
        const norm = (e: unknown) => JSON.parse(JSON.stringify(e))
        expect(seen.map(norm)).toEqual(events.map(norm))
        const report = await onLog(storeOf(bytes), (log) => log.verify())
        expect(Either.isRight(report) && report.right.ok).toBe(true)
      }),
      fuzzParams(0.25) as efc.Parameters<[Array<Event>, number]>,
    )
  }, FUZZ_TIMEOUT_MS)

  test("arbitrary bytes after a valid header: every reader ends in entries or a typed LogError", async () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 400 }),
      // frame magics sprinkled in, so the scanner looks for frames and trailers
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom(Buffer.from("ALSF"), Buffer.from("ALSE"))), { maxLength: 12 })
        .map((parts) => Buffer.concat(parts)),
    )
    await fc.assert(
      fc.asyncProperty(fc.boolean(), body, async (header, b) => {
        await everyReaderTyped(Buffer.concat([header ? FILE_HEADER : Buffer.alloc(0), b]))
      }),
      fuzzParams(0.25),
    )
  }, FUZZ_TIMEOUT_MS)

  test("damaged real logs: every reader ends in entries or a typed LogError, and what it reads was written", async () => {
    await fc.assert(
      fc.asyncProperty(sampleEvents, fc.integer({ min: 1, max: 3 }), damage, async (events, batch, hurt) => {
        const bytes = hurt(await writeLog(events, batch))
        const { seen } = await everyReaderTyped(bytes)
        // the hash chain lets through only a prefix of what was appended
        const norm = (e: unknown) => JSON.stringify(e)
        expect(seen.map(norm)).toEqual(events.slice(0, seen.length).map(norm))
      }),
      fuzzParams(0.25),
    )
  }, FUZZ_TIMEOUT_MS)
})

describe("event log readers on files, fuzzed", () => {
  /** Folds the log file at `root` with the checksum thread forced on (it starts at 16 MiB otherwise). */
  const foldFile = (root: string, verifyThread: boolean) =>
    Effect.runPromise(Effect.either(Effect.flatMap(EventLog, (log) => log.fold(0, (n) => n + 1)).pipe(
      Effect.provide(EventLogFile(root, { sync: false, verifyThread, verifyThreadMinBytes: 0 }).pipe(Layer.provide(IdsSequential("fuzz")))),
    )))

  test("damaged real logs fold the same with the checksum thread as without it, and as in memory", async () => {
    await fc.assert(
      fc.asyncProperty(sampleEvents, fc.integer({ min: 1, max: 3 }), damage, async (events, batch, hurt) => {
        const bytes = hurt(await writeLog(events, batch))
        const root = fs.mkdtempSync(path.join(os.tmpdir(), "als-fuzz-log-"))
        try {
          fs.mkdirSync(path.join(root, ".als"))
          fs.writeFileSync(path.join(root, ".als", "log"), bytes)
          const threaded = await foldFile(root, true)
          const single = await foldFile(root, false)
          const memory = await onLog(storeOf(bytes), (log) => log.fold(0, (n) => n + 1))
          for (const r of [threaded, single, memory]) expectTypedFailure(r)
          const shape = (r: Either.Either<number, unknown>) =>
            Either.isRight(r) ? { frames: r.right } : { error: (r.left as { _tag: string })._tag, at: (r.left as { offset?: number }).offset }
          expect(shape(threaded)).toEqual(shape(single))
          expect(shape(single)).toEqual(shape(memory))
        } finally {
          fs.rmSync(root, { recursive: true, force: true })
        }
      }),
      fuzzParams(0.1),
    )
  }, FUZZ_TIMEOUT_MS)
})

describe("payload decoders, fuzzed", () => {
  const packr = new Packr({ useRecords: false })
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

  /** msgpackr's reading of `b`, or undefined where msgpackr itself refuses it. */
  const reference = (b: Buffer): { value: unknown } | undefined => {
    try {
      return { value: unpackr.unpack(b) }
    } catch {
      return undefined
    }
  }

  const agreesOrUnsupported = (b: Buffer): void => {
    let got: unknown
    try {
      got = fastUnpack(b, 0, b.length)
    } catch (e) {
      if (e instanceof Unsupported) return
      throw e
    }
    const ref = reference(b)
    expect(ref).toBeDefined()
    expect(got).toEqual(ref!.value)
  }

  test("FastUnpack on arbitrary bytes: msgpackr's value, or Unsupported", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => agreesOrUnsupported(Buffer.from(b))), fuzzParams(4))
  }, FUZZ_TIMEOUT_MS)

  test("FastUnpack on msgpack of arbitrary JSON values, whole or cut: msgpackr's value, or Unsupported", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.option(fc.nat(), { nil: undefined }), (v, cut) => {
        const b = packr.pack(v)
        agreesOrUnsupported(cut === undefined ? b : b.subarray(0, cut % (b.length + 1)))
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)

  test("payload decoders on arbitrary bytes and odd maps: an event or a problem string, never a throw", () => {
    const payloads = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.record({
        t: fc.oneof(fc.constantFrom("LookupRequested", "LayerCommitted", "__proto__", "constructor", "toString"), fc.string()),
        v: fc.oneof(fc.constantFrom(1, 2, 0, -1, 1.5, 99), fc.jsonValue()),
        e: fc.oneof(fc.constant({ id: "i", time: 1, host: "h", pid: 1, workflow: "w" }), fc.jsonValue()),
        d: fc.oneof(fc.dictionary(fc.constantFrom("layer", "__proto__", "ref", "annotations", "x"), fc.jsonValue()), fc.jsonValue()),
      }).map((p) => packr.pack(p)),
    )
    fc.assert(
      fc.property(payloads, (b) => {
        const fast = decodeFast(b, 0, b.length)
        const strict = decodeStrict(b)
        for (const r of [fast, strict]) expect(typeof r === "string" || (typeof r === "object" && r !== null)).toBe(true)
        // the audit decoder accepts nothing the fold path refuses
        if (typeof strict !== "string") expect(typeof fast).not.toBe("string")
        try {
          fastPayload(b, 0, b.length)
        } catch (e) {
          if (!(e instanceof Unsupported)) throw e
        }
      }),
      fuzzParams(2),
    )
  }, FUZZ_TIMEOUT_MS)
})

// Counterexamples found by the properties above, pinned.
describe("FastUnpack regressions found by fuzzing", () => {
  const unsupported = (bytes: ReadonlyArray<number>) => {
    const b = Buffer.from(bytes)
    expect(() => fastUnpack(b, 0, b.length)).toThrow(Unsupported)
  }

  test("an int8 marker with no byte after it ([0xd0]) is Unsupported (was a RangeError from readInt8)", () => {
    unsupported([0xd0])
  })

  test("a float64 cut short inside an array ([0x91, 0xcb, 1, 2]) is Unsupported (was a RangeError from readDoubleBE)", () => {
    unsupported([0x91, 0xcb, 1, 2])
  })

  test("every fixed-width number and length cut short is Unsupported", () => {
    for (const marker of [0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xd0, 0xd1, 0xd2, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf]) {
      unsupported([marker])
      unsupported([0x81, 0xa1, 0x6b, marker])
    }
  })

  test("a payload cut right after its envelope's map marker is Unsupported for fastPayload", () => {
    const full = Buffer.from(new Packr({ useRecords: false }).pack({ t: "x", v: 1, e: {}, d: {} }))
    const cut = full.subarray(0, full.indexOf(0x80) /* the empty envelope map */)
    expect(() => fastPayload(cut, 0, cut.length)).toThrow(Unsupported)
  })
})
