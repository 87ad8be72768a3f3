/**
 * FUSE passthrough (kernel 6.9+, protocol 7.40): an OPEN answered with FOPEN_PASSTHROUGH and a
 * backing id makes the kernel read that file (read, splice, mmap) from a backing file on disk
 * itself, so the reads never reach us. A handler asks for it by answering OPEN with a
 * `BackedOpen` (Protocol.ts); this module decides whether the open gets it and keeps the
 * kernel's rules:
 *
 * - One backing file per inode while it is open: every open file of an inode in passthrough
 *   mode must name the same backing (the kernel fails the open with EIO otherwise), so a node
 *   keeps one backing id while it has passthrough handles, dropped at the last RELEASE.
 * - An inode is either cached (READ through us, page cache) or passthrough, never both at
 *   once (EIO again): while a node has a cached open, a BackedOpen gets its fallback answer.
 * - A refusal of passthrough itself (no FUSE_PASSTHROUGH offered, EPERM: no CAP_SYS_ADMIN or
 *   not negotiated, ENOTTY: a kernel without the ioctl) turns it off for the session, told
 *   once; every later open is answered as before and reads go through us. A refusal of one
 *   backing file (ELOOP: its filesystem is stacked, say a pool on overlayfs or FUSE; EINVAL…)
 *   sends that open through us, told once per reason.
 * - The backing file is checked before it is registered: opened read-only without following
 *   a final symlink, a regular file of exactly the size the tree says.
 */
import * as fs from "node:fs"
import type { SyscallsApi } from "../sys/Syscalls.ts"
import { OpenFlag, type Request } from "./Protocol.ts"
import { BackedOpen, replyErrno, replyOpen } from "./Replies.ts"

/** The kernel's backing files may stack this deep below us: 1 keeps room for podman's overlay on top. */
export const MAX_STACK_DEPTH = 1

/** ioctl errors that say passthrough itself is refused, not one file */
const SESSION_REFUSALS = new Set(["EPERM", "ENOTTY", "ENOSYS", "EOPNOTSUPP"])

/** Handles we give passthrough opens: the top bit set, never a handle a handler hands out. */
const PT_FH = 1n << 63n

export type PassthroughState =
  | { readonly state: "off"; readonly why: string }
  | { readonly state: "on" }

export interface PassthroughStats {
  /** opens answered in passthrough mode */
  passthrough: number
  /** BackedOpens answered with their fallback (off, cached opens of the node, file did not check out) */
  fallback: number
}

export interface Passthrough {
  readonly state: () => PassthroughState
  readonly stats: PassthroughStats
  /** INIT: passthrough asked for, or not and why (told unless `quiet`) */
  readonly negotiated: (on: boolean, why: string, quiet?: boolean) => void
  /** The bytes to send for an OPEN, given the handler's answer; `undo` if they never arrive. */
  readonly open: (req: Extract<Request, { op: "Open" }>, reply: Uint8Array) => { readonly bytes: Uint8Array; readonly undo: () => void }
  /** RELEASE of a handle (before the handler sees it) */
  readonly release: (req: Extract<Request, { op: "Release" }>) => void
}

type Backing = Pick<SyscallsApi, "fuseBackingOpen" | "fuseBackingClose">

interface NodeOpens {
  /** open files of the node read through us */
  cached: number
  /** the node's backing id and its passthrough handles */
  backing?: { readonly id: number; handles: number }
}

export const makePassthrough = (devFd: number, loadBacking: () => Backing, notice: (message: string) => void): Passthrough => {
  let current: PassthroughState = { state: "off", why: "not negotiated yet" }
  const stats: PassthroughStats = { passthrough: 0, fallback: 0 }
  const nodes = new Map<number, NodeOpens>()
  /** passthrough handle → node */
  const handles = new Map<bigint, number>()
  let nextFh = PT_FH
  let backing: Backing | undefined
  /** reasons a backing file was refused, each told once */
  const told = new Set<string>()

  const opensOf = (nodeid: number) => {
    let n = nodes.get(nodeid)
    if (!n) nodes.set(nodeid, n = { cached: 0 })
    return n
  }
  const tidy = (nodeid: number, n: NodeOpens) => {
    if (n.cached === 0 && !n.backing) nodes.delete(nodeid)
  }

  const turnOff = (why: string) => {
    if (current.state === "off") return
    current = { state: "off", why }
    notice(`FUSE passthrough off (${why}): reads of complete files go through als`)
  }

  /** An fd of the backing file if it is what the tree says, else why not. */
  const openChecked = (file: string, size: number): number | string => {
    let fd: number
    try {
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW)
    } catch (e) {
      return `cannot open ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`
    }
    const st = fs.fstatSync(fd)
    if (st.isFile() && st.size === size) return fd
    fs.closeSync(fd)
    return `${file} is ${st.isFile() ? `${st.size} bytes, not ${size}` : "not a regular file"}`
  }

  /** The node's backing id (registering the file once per node), or undefined to fall back. */
  const backingFor = (nodeid: number, req: BackedOpen): number | undefined => {
    const n = nodes.get(nodeid)
    if (n?.backing) return n.backing.id
    const fd = openChecked(req.backing, req.size)
    if (typeof fd === "string") {
      notice(`passthrough not used: ${fd}`)
      return undefined
    }
    try {
      backing ??= loadBacking()
      return backing.fuseBackingOpen(devFd, fd)
    } catch (e) {
      const code = (e as { code?: string }).code ?? (e as Error).message
      if (SESSION_REFUSALS.has(code)) turnOff(`the kernel refused it: ${code}`)
      else if (!told.has(code)) {
        told.add(code)
        notice(`FUSE passthrough refused for ${req.backing} (${code}): files refused this way are read through als`)
      }
      return undefined
    } finally {
      fs.closeSync(fd) // the kernel holds its own reference to the file
    }
  }

  const dropBacking = (nodeid: number, n: NodeOpens) => {
    const b = n.backing
    if (!b || b.handles > 0) return
    n.backing = undefined
    try {
      backing?.fuseBackingClose(devFd, b.id)
    } catch {
      // the connection is going away: the kernel drops its ids with it
    }
    tidy(nodeid, n)
  }

  const open: Passthrough["open"] = (req, reply) => {
    const nodeid = req.h.nodeid
    const none = { bytes: reply, undo: () => {} }
    if (current.state !== "on" || replyErrno(reply) !== 0) {
      if (reply instanceof BackedOpen) stats.fallback++
      return none
    }
    const cachedOpen = () => {
      const n = opensOf(nodeid)
      n.cached++
      return { bytes: reply, undo: () => (n.cached--, tidy(nodeid, n)) }
    }
    if (!(reply instanceof BackedOpen)) return cachedOpen()
    if ((nodes.get(nodeid)?.cached ?? 0) > 0) {
      stats.fallback++
      return cachedOpen()
    }
    const id = backingFor(nodeid, reply)
    if (id === undefined) {
      stats.fallback++
      return cachedOpen()
    }
    const n = opensOf(nodeid)
    const b = n.backing ??= { id, handles: 0 }
    b.handles++
    const fh = nextFh++
    handles.set(fh, nodeid)
    stats.passthrough++
    return {
      bytes: replyOpen(req.h.unique, fh, OpenFlag.PASSTHROUGH, b.id),
      undo: () => {
        handles.delete(fh)
        b.handles--
        dropBacking(nodeid, n)
      },
    }
  }

  const release: Passthrough["release"] = (req) => {
    const pt = handles.get(req.fh)
    if (pt !== undefined) {
      handles.delete(req.fh)
      const n = nodes.get(pt)
      if (n?.backing) {
        n.backing.handles--
        dropBacking(pt, n)
      }
      return
    }
    const n = nodes.get(req.h.nodeid)
    if (n && n.cached > 0) {
      n.cached--
      tidy(req.h.nodeid, n)
    }
  }

  return {
    state: () => current,
    stats,
    negotiated: (on, why, quiet = false) => {
      current = { state: "on" }
      if (!on && quiet) current = { state: "off", why }
      else if (!on) turnOff(why)
    },
    open,
    release,
  }
}
