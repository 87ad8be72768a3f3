import { makeMount, type MountApi } from "./Mount.ts"

// Deno's global is only typed under Deno; keep this module free of Deno's type package.
// deno-lint-ignore no-explicit-any
declare const Deno: any

export const make = (): MountApi => {
  const { symbols: c } = Deno.dlopen("libc.so.6", {
    mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
    umount2: { parameters: ["buffer", "i32"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  })
  return makeMount({
    mount: (s, t, f, flags, d) => c.mount(s, t, f, BigInt(flags), d),
    umount2: (t, flags) => c.umount2(t, flags),
    errno: () => new Deno.UnsafePointerView(c.__errno_location()).getInt32(0),
  })
}
