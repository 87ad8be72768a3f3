// Archives written by GNU tar in every format it has: extracting them must give back the tree
// they were made from (modes, owners, mtimes, links, devices, xattrs), compared with tree.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { layerBlob } from "../../lib/tars.ts"
import { diffTrees, walkTree } from "../../lib/tree.ts"
import { ingest, ok, sys, withSandbox } from "./harness.ts"

const src = fs.mkdtempSync(path.join(os.tmpdir(), "als-tarsrc-"))
const T = 1650000000
const CAP = new Uint8Array([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])

beforeAll(() => {
  const p = (r: string) => path.join(src, r)
  fs.mkdirSync(p("usr/bin"), { recursive: true })
  fs.mkdirSync(p("tmp"))
  fs.mkdirSync(p("srv/data"), { recursive: true })
  fs.writeFileSync(p("usr/bin/tool"), "#!/bin/sh\necho hi\n")
  fs.chmodSync(p("usr/bin/tool"), 0o4755)
  fs.writeFileSync(p("usr/bin/ping"), "ping")
  sys.lsetxattr(p("usr/bin/ping"), "security.capability", CAP)
  sys.lsetxattr(p("usr/bin/ping"), "user.note", new TextEncoder().encode("hello"))
  fs.linkSync(p("usr/bin/tool"), p("usr/bin/tool-again"))
  fs.symlinkSync("tool", p("usr/bin/t"))
  fs.chmodSync(p("tmp"), 0o1777)
  fs.writeFileSync(p("srv/data/owned"), "x".repeat(10000))
  fs.chownSync(p("srv/data/owned"), 1234, 5678)
  fs.chmodSync(p("srv/data/owned"), 0o2640)
  fs.chownSync(p("srv/data"), 33, 33)
  sys.mknod(p("srv/fifo"), 0o010000 | 0o644, 0, 0)
  sys.mknod(p("srv/null"), 0o020000 | 0o666, 1, 3)
  fs.chmodSync(p("srv/null"), 0o666)
  fs.writeFileSync(p("srv/empty"), "")
  const long = p(`srv/${"l".repeat(90)}/${"m".repeat(90)}`)
  fs.mkdirSync(long, { recursive: true })
  fs.writeFileSync(path.join(long, `${"n".repeat(120)}.txt`), "long path")
  // integer-second mtimes everywhere (the tar formats without PAX keep only seconds), dirs last
  for (const e of walkTree(src, sys, { xattrs: false }).reverse()) {
    const abs = e.path === "." ? src : p(e.path)
    if (e.type === "symlink") fs.lutimesSync(abs, T, T)
    else fs.utimesSync(abs, T, T)
  }
})
afterAll(() => fs.rmSync(src, { recursive: true, force: true }))

const tarOf = (format: string, extra: Array<string> = []) =>
  execFileSync("tar", ["--format", format, "--numeric-owner", ...extra, "-C", src, "-cf", "-", "."], {
    maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "pipe"],
  })

describe("archives written by GNU tar", () => {
  for (const format of ["gnu", "oldgnu", "posix"]) {
    test(`--format=${format}`, async () => {
      const extra = format === "posix" ? ["--xattrs", "--xattrs-include=*"] : []
      await withSandbox(async (box) => {
        ok(await ingest(layerBlob(tarOf(format, extra), "gzip"), box))
        const want = walkTree(src, sys)
        const got = walkTree(box.diffDir, sys)
        const noXattrs = format !== "posix"
        expect(diffTrees(want, got, {
          root: false,
          mtime: true,
          hardlinks: true,
          ...(noXattrs ? { xattr: () => false } : {}),
        })).toEqual([])
      })
    })
  }

  test("--format=ustar (paths up to 255 bytes, no xattrs)", async () => {
    await withSandbox(async (box) => {
      const long = `srv/${"l".repeat(90)}`
      ok(await ingest(layerBlob(tarOf("ustar", [`--exclude=./${long}`]), "zstd"), box))
      expect(diffTrees(walkTree(src, sys), walkTree(box.diffDir, sys), {
        root: false,
        mtime: true,
        hardlinks: true,
        xattr: () => false,
        ignore: [long],
      })).toEqual([])
    })
  })

  test("diffTrees reports what differs, in words", async () => {
    await withSandbox(async (box) => {
      ok(await ingest(layerBlob(tarOf("posix", ["--xattrs", "--xattrs-include=*"]), "gzip"), box))
      fs.chmodSync(path.join(box.diffDir, "usr/bin/tool"), 0o755)
      fs.writeFileSync(path.join(box.diffDir, "srv/empty"), "now with content")
      fs.rmSync(path.join(box.diffDir, "usr/bin/t"))
      fs.writeFileSync(path.join(box.diffDir, "extra"), "")
      const d = diffTrees(walkTree(src, sys), walkTree(box.diffDir, sys), { root: false, hardlinks: true })
      expect(d).toContain("usr/bin/t: missing (expected symlink 0777 0:0 -> tool)")
      expect(d).toContain("extra: unexpected (file 0644 0:0 0B)")
      expect(d.find((l) => l.startsWith("usr/bin/tool:"))).toContain("mode 4755 ≠ 0755")
      expect(d.find((l) => l.startsWith("srv/empty:"))).toContain("content 0B")
      expect(diffTrees(walkTree(src, sys), walkTree(box.diffDir, sys), { root: false, ignore: ["usr", "srv", "extra"] }))
        .toEqual([])
    })
  })
})
