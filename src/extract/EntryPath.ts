/**
 * Tar entry names → paths relative to the layer root, lexically, never consulting the disk.
 * Absolute names are made relative (the layer root is the container's `/`), `.` and empty
 * components vanish, and `..` pops a component; a `..` that would climb above the root is an
 * escape attempt and refused. containers/storage extracts inside a chroot, where such a name
 * silently lands at the root instead; we refuse it, since no honest tool writes one.
 */

/** Thrown for a name that climbs out of the root; the caller turns it into `UnsafeEntry`. */
export class PathEscape extends Error {
  constructor(readonly entryName: string) {
    super(`${JSON.stringify(entryName)} climbs out of the layer root with ".."`)
  }
}

/** The components of `name` relative to the root; `[]` for the root itself. */
export const cleanComponents = (name: string): Array<string> => {
  // fast path: the common "usr/bin/x" / "./usr/bin/x" shape without `.`/`..`/`//` components
  const out: Array<string> = []
  let start = 0
  const n = name.length
  for (let i = 0; i <= n; i++) {
    if (i === n || name.charCodeAt(i) === 47 /* / */) {
      const len = i - start
      if (len === 0 || (len === 1 && name.charCodeAt(start) === 46)) {
        // "" or "."
      } else if (len === 2 && name.charCodeAt(start) === 46 && name.charCodeAt(start + 1) === 46) {
        if (out.length === 0) throw new PathEscape(name)
        out.pop()
      } else {
        out.push(name.slice(start, i))
      }
      start = i + 1
    }
  }
  return out
}

/** `cleanComponents` joined with `/`; `""` for the root. */
export const cleanPath = (name: string): string => cleanComponents(name).join("/")
