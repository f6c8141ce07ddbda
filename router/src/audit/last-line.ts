// The chain head of an append-only JSONL file, found from its end: opening a log must cost the same
// whatever its size (a router restarted after a million decisions must not read 300 MB into a
// container limited to 128 MiB).

import * as fs from "node:fs";

const NEWLINE = 0x0a;

/** fs.openSync, or null when the file does not exist; other errors are thrown. */
function openIfExists(file: string, flags: string): number | null {
  try {
    return fs.openSync(file, flags);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/**
 * Returns the last complete, non-empty line of `file` (without its newline), or null when the file is
 * missing or holds none. A torn last line — bytes after the last newline, left by a write that a
 * crash cut short — is cut off the file (ftruncate), so that appends continue on a line boundary.
 * Reads backwards from the end in `chunkBytes` pieces: memory and time depend on the last line's
 * length, not the file's. Lines are UTF-8. Throws on I/O errors other than a missing file.
 */
export function lastWholeLine(file: string, chunkBytes = 64 * 1024): string | null {
  const fd = openIfExists(file, "r+");
  if (fd === null) return null;
  try {
    const size = fs.fstatSync(fd).size;
    // tail = bytes [tailStart, size) read so far
    let tail = Buffer.alloc(0);
    let tailStart = size;
    const readMore = (): boolean => {
      if (tailStart === 0) return false;
      const n = Math.min(chunkBytes, tailStart);
      const chunk = Buffer.alloc(n);
      fs.readSync(fd, chunk, 0, n, tailStart - n);
      tailStart -= n;
      tail = Buffer.concat([chunk, tail]);
      return true;
    };
    /** Absolute offset of the last newline before absolute offset `before`, or -1 (start of file). */
    const newlineBefore = (before: number): number => {
      for (;;) {
        const i = before - tailStart > 0 ? tail.lastIndexOf(NEWLINE, before - tailStart - 1) : -1;
        if (i >= 0) return tailStart + i;
        if (!readMore()) return -1;
      }
    };
    const lastNewline = newlineBefore(size);
    if (lastNewline + 1 < size) fs.ftruncateSync(fd, lastNewline + 1); // torn last line (or no newline at all)
    let end = lastNewline;
    while (end > 0) {
      const start = newlineBefore(end) + 1;
      if (end > start) return tail.subarray(start - tailStart, end - tailStart).toString("utf8");
      end = start - 1; // an empty line: keep looking
    }
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The first line of `file` (without its newline; the whole content when it has none), or null when
 * the file is missing or empty. Reads from the start in `chunkBytes` pieces until a newline.
 */
export function firstLine(file: string, chunkBytes = 64 * 1024): string | null {
  const fd = openIfExists(file, "r");
  if (fd === null) return null;
  try {
    let head = Buffer.alloc(0);
    for (;;) {
      const chunk = Buffer.alloc(chunkBytes);
      const n = fs.readSync(fd, chunk, 0, chunkBytes, head.length);
      head = Buffer.concat([head, chunk.subarray(0, n)]);
      const nl = head.indexOf(NEWLINE);
      if (nl >= 0) return head.subarray(0, nl).toString("utf8");
      if (n === 0) return head.length > 0 ? head.toString("utf8") : null;
    }
  } finally {
    fs.closeSync(fd);
  }
}
