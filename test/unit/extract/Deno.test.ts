// The same pipeline under Deno (the sources must run there too): every compression gives the
// same tree as under Bun, and zstd:chunked works although Deno's zstd decoder stops after one frame.
import { expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import * as path from "node:path"

test("ingestLayer runs on Deno: same trees for none/gzip/zstd/zstd:chunked/eStargz, truncation caught", () => {
  const out = execFileSync("npx", ["deno", "run", "-A", path.join(import.meta.dir, "deno-smoke.ts")], {
    cwd: path.join(import.meta.dir, "../../.."),
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000,
  })
  const lines = out.trim().split("\n").map((l) => JSON.parse(l) as { name: string; error?: string; tree?: unknown; toc?: boolean; compression?: string })
  const by = new Map(lines.map((l) => [l.name, l]))
  const reference = JSON.stringify(by.get("none")?.tree)
  expect((by.get("none")?.tree as Array<unknown>).length).toBeGreaterThan(300)
  for (const name of ["gzip", "zstd", "zstd:chunked", "zstd:chunked-footer", "estargz"]) {
    expect(by.get(name)?.error).toBeUndefined()
    expect(JSON.stringify(by.get(name)?.tree)).toBe(reference)
  }
  expect(by.get("zstd:chunked")).toMatchObject({ compression: "zstd", toc: true })
  expect(by.get("zstd:chunked-footer")).toMatchObject({ compression: "zstd", toc: true })
  expect(by.get("estargz")).toMatchObject({ compression: "gzip", toc: true })
  expect(by.get("truncated-zstd")).toMatchObject({ error: "CorruptData" })
}, 90_000)
