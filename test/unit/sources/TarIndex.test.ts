import { afterAll, describe, expect, test } from "bun:test"
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import tar from "tar-stream"
import { archiveTree } from "../../../src/sources/FileTree.ts"
import { indexTar, resolveMember, TarIndexError } from "../../../src/sources/TarIndex.ts"

const dirs: string[] = []
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "als-tarindex-"))
  dirs.push(d)
  return d
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

type Entry = { name: string; type?: "file" | "directory" | "symlink" | "link"; body?: string; linkname?: string; pax?: Record<string, string> }

/** A tar written by tar-stream (pax headers for long names). */
const packTar = async (entries: ReadonlyArray<Entry>): Promise<Uint8Array> => {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer)
  })
  const done = new Promise<void>((resolve) => pack.on("end", () => resolve()))
  for (const e of entries) {
    const body = e.body === undefined ? undefined : Buffer.from(e.body)
    const header = { name: e.name, type: e.type ?? "file", ...(body ? { size: body.length } : {}), ...(e.linkname ? { linkname: e.linkname } : {}), ...(e.pax ? { pax: e.pax } : {}) }
    if (body) pack.entry(header, body)
    else pack.entry(header)
  }
  pack.finalize()
  await done
  return new Uint8Array(Buffer.concat(chunks))
}

const collect = async (it: AsyncIterable<Uint8Array>) => {
  const parts: Uint8Array[] = []
  for await (const c of it) parts.push(c)
  return Buffer.concat(parts).toString("utf8")
}

describe("indexTar", () => {
  test("finds files, dirs and links with their data offsets, long names included", async () => {
    const long = `${"d".repeat(120)}/${"f".repeat(90)}.txt`
    const bytes = await packTar([
      { name: "dir/", type: "directory" },
      { name: "dir/a.txt", body: "alpha" },
      { name: long, body: "long one" },
      { name: "abc/layer.tar", type: "symlink", linkname: "../dir/a.txt" },
      { name: "hard", type: "link", linkname: "dir/a.txt" },
      { name: "./dotted//name", body: "x" },
    ])
    const dir = temp()
    const file = join(dir, "t.tar")
    writeFileSync(file, bytes)
    const m = indexTar(file)
    expect(m.get("dir")?.type).toBe("dir")
    const a = m.get("dir/a.txt")!
    expect(Buffer.from(bytes.subarray(a.offset, a.offset + a.size)).toString()).toBe("alpha")
    const l = m.get(long)!
    expect(Buffer.from(bytes.subarray(l.offset, l.offset + l.size)).toString()).toBe("long one")
    expect(m.get("dotted/name")?.size).toBe(1)
    expect(resolveMember(m, "abc/layer.tar")?.name).toBe("dir/a.txt")
    expect(resolveMember(m, "hard")?.name).toBe("dir/a.txt")
    expect(resolveMember(m, "missing")).toBeUndefined()
    const tree = archiveTree(file)
    expect(await collect(tree.stream("abc/layer.tar"))).toBe("alpha")
    expect(await collect(tree.stream("dir/a.txt", 2))).toBe("pha")
    expect(tree.hash("hard", "sha256")).toBe(new Bun.CryptoHasher("sha256").update("alpha").digest("hex"))
  })

  test("reads GNU tar's own long-name headers and prefix fields", () => {
    const dir = temp()
    const src = join(dir, "src")
    const deep = join(src, "p".repeat(60), "q".repeat(60))
    mkdirSync(deep, { recursive: true })
    writeFileSync(join(deep, "file-with-a-long-name.txt"), "gnu")
    symlinkSync("file-with-a-long-name.txt", join(deep, "link"))
    for (const format of ["gnu", "ustar", "posix"]) {
      const file = join(dir, `${format}.tar`)
      const r = spawnSync("tar", ["--format", format, "-C", src, "-cf", file, "."])
      expect(r.status).toBe(0)
      const tree = archiveTree(file)
      const name = `${"p".repeat(60)}/${"q".repeat(60)}/file-with-a-long-name.txt`
      expect({ format, size: tree.size(name), via: tree.size(`${"p".repeat(60)}/${"q".repeat(60)}/link`) }).toEqual({ format, size: 3, via: 3 })
    }
  })

  test("a file that is not a tar, or is cut short, is refused", async () => {
    const dir = temp()
    const junk = join(dir, "junk")
    writeFileSync(junk, Buffer.alloc(2048, 7))
    expect(() => indexTar(junk)).toThrow(TarIndexError)
    const bytes = await packTar([{ name: "big", body: "z".repeat(5000) }])
    const cut = join(dir, "cut.tar")
    writeFileSync(cut, bytes.subarray(0, 1024))
    expect(() => indexTar(cut)).toThrow(/past the end/)
    expect(readFileSync(cut).length).toBe(1024)
  })
})
