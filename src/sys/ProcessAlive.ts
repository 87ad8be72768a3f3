/**
 * Whether a process on this host still exists, for the names that record their maker (staging
 * entries, pins, layer locks). EPERM means it exists under another user; only ESRCH means gone.
 */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH"
  }
}
