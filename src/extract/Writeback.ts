/**
 * Starts the disk on a file's bytes while the layer is still being extracted.
 *
 * Why: a layer is made durable by one syncfs at commit (durable before visible). Linux writes
 * dirty pages back on its own only after 30 s or past 10% of RAM, so on a large host every
 * byte of a pull waited in memory for that syncfs: on the 1 GB image the last commit's syncfs
 * wrote 1.65 GB (tree and blob) in 3.3-3.5 s while the CPU had nothing left to do. Asking the
 * kernel to start writing each big file as it grows (sync_file_range, SYNC_FILE_RANGE_WRITE)
 * overlaps that writing with the decompression and extraction. Nothing about durability
 * changes: the hint makes nothing durable, syncfs still does, before the layer is visible.
 *
 * Small files are left to syncfs: one more call per file would cost more than it saves.
 */

/** Bytes of one file written between two hints. */
export const WRITEBACK_STEP = 8 * 1024 * 1024
/** A closing file of at least this many bytes gets a hint for its tail. */
export const WRITEBACK_MIN_FILE = 1024 * 1024

export type StartWriteback = (fd: number, offset: number, length: number) => unknown

/** Tracks one open file at a time: `opened`, `wrote` after each write, `closing` before close. */
export class Writeback {
  private fd = -1
  private written = 0
  private started = 0

  constructor(private readonly start: StartWriteback) {}

  opened(fd: number): void {
    this.fd = fd
    this.written = 0
    this.started = 0
  }

  wrote(n: number): void {
    this.written += n
    if (this.written - this.started >= WRITEBACK_STEP) this.kick()
  }

  closing(): void {
    if (this.fd >= 0 && this.written >= WRITEBACK_MIN_FILE && this.written > this.started) this.kick()
    this.fd = -1
  }

  private kick(): void {
    if (this.fd < 0) return
    this.start(this.fd, this.started, this.written - this.started)
    this.started = this.written
  }
}
