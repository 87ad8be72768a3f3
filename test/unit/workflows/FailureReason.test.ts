/** The code a failed pull is logged with (`als log --stats` counts by it), chosen by the error's type. */
import { describe, expect, test } from "bun:test"
import type { Digest } from "../../../src/domain/Digest.ts"
import { InvalidReference } from "../../../src/domain/Reference.ts"
import { LogIoError } from "../../../src/events/LogErrors.ts"
import { LayerIoError, LayerRejected } from "../../../src/extract/errors.ts"
import { RegistryError } from "../../../src/registry/RegistryError.ts"
import { SourceError } from "../../../src/sources/SourceError.ts"
import { StoreIoError } from "../../../src/store/errors.ts"
import { failureReason, LayerFailure } from "../../../src/workflows/Pull.ts"

const L = `sha256:${"a".repeat(64)}` as Digest

describe("failureReason", () => {
  test("the sources', ingest's and the log's errors give their own closed code", () => {
    expect(failureReason(new RegistryError({ code: "NotFound", ref: "r", message: "m1" }))).toEqual({ code: "NotFound", message: "m1" })
    expect(failureReason(new SourceError({ code: "BlobMissing", source: "oci:x", message: "m2" }))).toEqual({ code: "BlobMissing", message: "m2" })
    expect(failureReason(new LayerRejected({ code: "DiffIdMismatch", message: "m3" }))).toEqual({ code: "DiffIdMismatch", message: "m3" })
    expect(failureReason(new LayerIoError({ code: "NoSpace", path: "/p", message: "m4" })).code).toBe("NoSpace")
    expect(failureReason(new LogIoError({ op: "append", path: "/l", code: "ENOSPC", detail: "full" })).code).toBe("ENOSPC")
  })

  test("a layer's failure is told by its cause", () => {
    const r = failureReason(new LayerFailure({ layer: L, cause: new LayerRejected({ code: "BlobDigestMismatch", message: "bad" }) }))
    expect(r).toEqual({ code: "BlobDigestMismatch", message: "bad" })
  })

  test("a store I/O error is one kind whatever its errno; other typed errors by their tag", () => {
    const s = new StoreIoError({ op: "rename", path: "/s", code: "EXDEV", detail: "cross-device" })
    expect(failureReason(s)).toEqual({ code: "StoreIoError", message: s.message })
    expect(failureReason(new InvalidReference({ input: "A:B", reason: "bad" })).code).toBe("InvalidReference")
  })

  test("an untyped error by its errno name, else Unknown", () => {
    expect(failureReason(Object.assign(new Error("gone"), { code: "ENOENT" }))).toEqual({ code: "ENOENT", message: "gone" })
    expect(failureReason(new Error("odd"))).toEqual({ code: "Unknown", message: "odd" })
    expect(failureReason("text")).toEqual({ code: "Unknown", message: "text" })
  })
})
