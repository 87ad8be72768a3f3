/** errno numbers (Linux, x86_64 and aarch64 agree) to the names users search for. */
const names: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 5: "EIO", 9: "EBADF", 12: "ENOMEM", 13: "EACCES", 17: "EEXIST",
  18: "EXDEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 25: "ENOTTY", 28: "ENOSPC", 30: "EROFS",
  34: "ERANGE", 36: "ENAMETOOLONG", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA",
  95: "EOPNOTSUPP", 122: "EDQUOT",
}
export const errnoName = (n: number): string => names[n] ?? `E${n}`
export const ENODATA = 61
export const ERANGE = 34
