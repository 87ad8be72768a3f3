// Every entry type survives blob → tar → overlay diff, for each compression.
import { describe, expect, test } from "bun:test"
import * as fs from "node:fs"
import * as path from "node:path"
import { layerBlob, packTar, rawTar, type RawEntry, sha256, type TestCompression } from "../../lib/tars.ts"
import { type TreeEntry, walkTree } from "../../lib/tree.ts"
import { ingest, ok, sys, withSandbox } from "./harness.ts"

const T1 = 1600000000
const T2 = 1650000000
const T3 = 1690000000
// VFS_CAP_REVISION_2, permitted = CAP_NET_RAW (13) | CAP_SETFCAP (31): bytes ≥ 0x80 on purpose
const CAP = new Uint8Array([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
const longName = `deep/${"x".repeat(120)}/file`
const gnuLongName = `gnu/${"y".repeat(130)}`

const entries: ReadonlyArray<RawEntry> = [
  { name: "./", type: "dir", mode: 0o700, mtime: T1 }, // the root: skipped, as containers/storage does
  { name: "usr/", type: "dir", mode: 0o755, mtime: T1 },
  { name: "usr/bin/", type: "dir", mode: 0o755, mtime: T1, xattrs: { "user.dir": "1" } },
  { name: "usr/bin/su", content: "su binary\n", mode: 0o4755, mtime: T2 },
  { name: "usr/bin/wall", content: "wall\n", mode: 0o2755, gid: 5, mtime: T2 },
  { name: "tmp/", type: "dir", mode: 0o1777, mtime: T1 },
  { name: "home/u/a.txt", content: "hello\n", mode: 0o640, uid: 1000, gid: 1000, mtime: T3 },
  { name: "usr/bin/sh", type: "symlink", linkname: "/bin/busybox", uid: 0, mtime: T3 },
  { name: "lib", type: "symlink", linkname: "usr/lib", uid: 12, gid: 34, mtime: T2 },
  { name: "usr/bin/su2", type: "link", linkname: "usr/bin/su", mode: 0o4755, mtime: T2 },
  { name: "run/fifo", type: "fifo", mode: 0o600, mtime: T2 },
  { name: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666, mtime: T2 },
  { name: "dev/sda", type: "block", devmajor: 8, devminor: 0, mode: 0o660, gid: 6, mtime: T2 },
  {
    name: "usr/bin/ping",
    content: "ping\n",
    mode: 0o755,
    mtime: T2,
    xattrs: {
      "security.capability": CAP,
      "user.foo": "bar",
      "trusted.foo": "baz",
      "trusted.overlay.opaque": "y",
      "user.overlay.redirect": "/x",
      "security.selinux": "system_u:object_r:bin_t:s0",
    },
  },
  { name: "etc/.wh.motd", uid: 7, gid: 8, mtime: T2 },
  { name: "var/cache/.wh..wh..opq", mtime: T2 },
  { name: ".wh..wh.aufs", mtime: T2 },
  { name: ".wh..wh.plnk/123.456", content: "aufs", mtime: T2 },
  { name: "big-ids", content: "ids", uid: 3000000, gid: 4000000, mtime: T2 },
  { name: longName, content: "long", mtime: T2 },
  { name: gnuLongName, content: "gnu long", mtime: T2, format: "gnu" },
  { name: "empty", content: "", mode: 0o600, mtime: T2 },
  { name: "/abs/file", content: "made relative", mtime: T2 },
  { name: "sub/./x/../y", content: "cleaned", mtime: T2 },
]

const byPath = (tree: ReadonlyArray<TreeEntry>) => new Map(tree.map((e) => [e.path, e]))
const ns = (s: number) => String(BigInt(s) * 1_000_000_000n)

describe("every entry type round-trips", () => {
  const tar = rawTar(entries)
  for (const c of ["none", "gzip", "zstd"] as ReadonlyArray<TestCompression>) {
    test(`compression ${c}`, async () => {
      await withSandbox(async (box) => {
        const blob = layerBlob(tar, c)
        const r = ok(await ingest(blob, box, { chunkSize: 1000 }))
        expect(r.compression).toBe(c)
        expect(r.digest).toBe(blob.digest)
        expect(r.size).toBe(blob.size)
        expect(r.diffId).toBe(sha256(tar))
        expect(r.diffSize).toBe(tar.length)
        expect(r.tocDigest).toBeUndefined()
        expect(fs.readFileSync(box.blobPath).equals(blob.blob)).toBe(true)

        const t = byPath(walkTree(box.diffDir, sys))
        const e = (p: string) => {
          const x = t.get(p)
          if (!x) throw new Error(`${p} missing; have ${[...t.keys()].join(", ")}`)
          return x
        }
        // root: untouched by the "./" entry
        expect(e(".").mode).toBe(fs.statSync(box.diffDir).mode & 0o7777)
        // directories: mode, times set after their children were written, xattrs
        expect(e("usr")).toMatchObject({ type: "dir", mode: 0o755, mtime: ns(T1) })
        expect(e("usr/bin")).toMatchObject({ type: "dir", mode: 0o755, mtime: ns(T1), xattrs: { "user.dir": "1" } })
        expect(e("tmp")).toMatchObject({ type: "dir", mode: 0o1777, mtime: ns(T1) })
        // implicit parents: 0755 root
        expect(e("home")).toMatchObject({ type: "dir", mode: 0o755, uid: 0, gid: 0 })
        expect(e("home/u")).toMatchObject({ type: "dir", mode: 0o755, uid: 0, gid: 0 })
        // files: content, setuid/setgid kept after chown, owners, times
        expect(e("usr/bin/su")).toMatchObject({ type: "file", mode: 0o4755, uid: 0, gid: 0, mtime: ns(T2) })
        expect(fs.readFileSync(path.join(box.diffDir, "usr/bin/su"), "utf8")).toBe("su binary\n")
        expect(e("usr/bin/wall")).toMatchObject({ mode: 0o2755, gid: 5 })
        expect(e("home/u/a.txt")).toMatchObject({ mode: 0o640, uid: 1000, gid: 1000, mtime: ns(T3), size: 6 })
        expect(e("big-ids")).toMatchObject({ uid: 3000000, gid: 4000000 })
        expect(e("empty")).toMatchObject({ type: "file", size: 0, mode: 0o600 })
        expect(fs.readFileSync(path.join(box.diffDir, longName), "utf8")).toBe("long")
        expect(fs.readFileSync(path.join(box.diffDir, gnuLongName), "utf8")).toBe("gnu long")
        expect(fs.readFileSync(path.join(box.diffDir, "abs/file"), "utf8")).toBe("made relative")
        expect(fs.readFileSync(path.join(box.diffDir, "sub/y"), "utf8")).toBe("cleaned")
        // symlinks: target as written, owner, lutimes
        expect(e("usr/bin/sh")).toMatchObject({ type: "symlink", linkTarget: "/bin/busybox", mtime: ns(T3) })
        expect(e("lib")).toMatchObject({ type: "symlink", linkTarget: "usr/lib", uid: 12, gid: 34, mtime: ns(T2) })
        // hardlink: same inode
        const su = fs.statSync(path.join(box.diffDir, "usr/bin/su"))
        const su2 = fs.statSync(path.join(box.diffDir, "usr/bin/su2"))
        expect(su2.ino).toBe(su.ino)
        expect(su.nlink).toBe(2)
        // fifo and devices
        expect(e("run/fifo")).toMatchObject({ type: "fifo", mode: 0o600 })
        expect(e("dev/null")).toMatchObject({ type: "char", rdevMajor: 1, rdevMinor: 3, mode: 0o666 })
        expect(e("dev/sda")).toMatchObject({ type: "block", rdevMajor: 8, rdevMinor: 0, mode: 0o660, gid: 6 })
        // xattrs: binary capability intact, user/trusted kept, overlay and selinux dropped
        const ping = e("usr/bin/ping")
        expect(ping.xattrs).toEqual({
          "security.capability": `hex:${Buffer.from(CAP).toString("hex")}`,
          "trusted.foo": "baz",
          "user.foo": "bar",
        })
        // whiteout: 0/0 char device, owner from the header, marker not written
        expect(e("etc/motd")).toMatchObject({ type: "char", rdevMajor: 0, rdevMinor: 0, uid: 7, gid: 8 })
        expect(t.has("etc/.wh.motd")).toBe(false)
        // opaque: xattr on the directory, marker not written
        expect(e("var/cache").xattrs).toEqual({ "trusted.overlay.opaque": "y" })
        expect(t.has("var/cache/.wh..wh..opq")).toBe(false)
        // aufs metadata skipped
        expect([...t.keys()].filter((p) => p.includes(".wh."))).toEqual([])

        const fileCount = [...t.values()].filter((x) => x.type === "file").length
        expect(fileCount).toBe(11)
        expect(r.bytes).toBe(
          ["su binary\n", "wall\n", "hello\n", "ping\n", "ids", "long", "gnu long", "made relative", "cleaned"]
            .reduce((n, s) => n + s.length, 0),
        )
        box.assertUntouched()
      })
    })
  }

  test("rootless stores get user.overlay.opaque", async () => {
    await withSandbox(async (box) => {
      const blob = layerBlob(rawTar([{ name: "d/.wh..wh..opq" }]), "gzip")
      ok(await ingest(blob, box, { opaqueXattr: "user.overlay.opaque" }))
      const d = byPath(walkTree(box.diffDir, sys)).get("d")!
      expect(d.xattrs).toEqual({ "user.overlay.opaque": "y" })
    })
  })

  test("a tar written by tar-stream's pack() extracts the same", async () => {
    await withSandbox(async (box) => {
      const tar = await packTar([
        { name: "a/", type: "directory", mode: 0o750, uid: 3, gid: 4, mtime: new Date(T1 * 1000) },
        { name: "a/f", content: "x".repeat(70000), mode: 0o644, mtime: new Date(T2 * 1000), pax: { "SCHILY.xattr.user.k": "v" } },
        { name: "a/l", type: "symlink", linkname: "f", mtime: new Date(T2 * 1000) },
        { name: "a/h", type: "link", linkname: "a/f", mtime: new Date(T2 * 1000) },
        { name: `a/${"n".repeat(150)}`, content: "long", mtime: new Date(T2 * 1000) },
        { name: "a/.wh.gone", mtime: new Date(T2 * 1000) },
      ])
      const r = ok(await ingest(layerBlob(tar, "zstd"), box, { chunkSize: 777 }))
      const t = byPath(walkTree(box.diffDir, sys))
      expect(t.get("a")).toMatchObject({ mode: 0o750, uid: 3, gid: 4, mtime: ns(T1) })
      expect(t.get("a/f")).toMatchObject({ size: 70000, xattrs: { "user.k": "v" } })
      expect(t.get("a/l")).toMatchObject({ type: "symlink", linkTarget: "f" })
      expect(t.get("a/h")?.hardlinkOf).toBe("a/f")
      expect(t.get(`a/${"n".repeat(150)}`)?.size).toBe(4)
      expect(t.get("a/gone")).toMatchObject({ type: "char", rdevMajor: 0, rdevMinor: 0 })
      expect(r.files).toBe(5)
      expect(r.bytes).toBe(70004)
    })
  })

  test("later entries win: file over file, dir over dir merges, file over dir, dir over file", async () => {
    await withSandbox(async (box) => {
      const tar = rawTar([
        { name: "f", content: "first" },
        { name: "f", content: "second", mode: 0o600 },
        { name: "d/", type: "dir", mode: 0o700 },
        { name: "d/child", content: "kept" },
        { name: "d/", type: "dir", mode: 0o711, uid: 5 },
        { name: "x/", type: "dir" },
        { name: "x/inner", content: "gone with x" },
        { name: "x", content: "x is a file now" },
        { name: "y", content: "y was a file" },
        { name: "y/", type: "dir", mode: 0o750 },
        { name: "y/z", content: "under the new dir" },
        { name: "s", type: "symlink", linkname: "/nowhere" },
        { name: "s", content: "s replaced a symlink" },
      ])
      ok(await ingest(layerBlob(tar, "none"), box))
      const t = byPath(walkTree(box.diffDir, sys))
      expect(fs.readFileSync(path.join(box.diffDir, "f"), "utf8")).toBe("second")
      expect(t.get("f")?.mode).toBe(0o600)
      expect(t.get("d")).toMatchObject({ type: "dir", mode: 0o711, uid: 5 })
      expect(t.get("d/child")?.type).toBe("file")
      expect(t.get("x")?.type).toBe("file")
      expect(t.has("x/inner")).toBe(false)
      expect(t.get("y")).toMatchObject({ type: "dir", mode: 0o750 })
      expect(t.get("y/z")?.type).toBe("file")
      expect(t.get("s")?.type).toBe("file")
      box.assertUntouched()
    })
  })

  test("whiteouts: of an earlier entry, and below a whited-out directory (skipped like containers/storage)", async () => {
    await withSandbox(async (box) => {
      const tar = rawTar([
        { name: "a/file", content: "x" },
        { name: "a/.wh.file" },
        { name: ".wh.foo" },
        { name: "foo/.wh.bar" },
        { name: "foo/.wh..wh..opq" },
      ])
      ok(await ingest(layerBlob(tar, "gzip"), box))
      const t = byPath(walkTree(box.diffDir, sys))
      expect(t.get("a/file")).toMatchObject({ type: "char", rdevMajor: 0, rdevMinor: 0 })
      expect(t.get("foo")).toMatchObject({ type: "char", rdevMajor: 0, rdevMinor: 0, xattrs: {} })
      expect([...t.keys()].sort()).toEqual([".", "a", "a/file", "foo"])
    })
  })
})
