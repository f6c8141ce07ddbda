// Loading blocklist text: seed files from the configuration directory's `blocklist/` folder, and
// refreshed copies of the URLs in blocklist-sources.json, each cached in the state directory so that
// a failed fetch (or a restart while the source is down) keeps the last good copy (DESIGN §6
// "refreshed with last-good fallback").

import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";

/** Largest list we accept from a source, in bytes (the big OISD list is ~10 MB). */
export const MAX_LIST_BYTES = 64 * 1024 * 1024;

/** One list's text and where it came from; `fetchedAt` (ms) only for refreshed sources. */
export interface ListText {
  source: string;
  text: string;
  fetchedAt?: number;
}

/**
 * A list file's bytes as text: UTF-16 (little or big endian) when it starts with that byte order mark
 * (lists saved by Windows tools), else UTF-8 (its byte order mark dropped).
 */
export function decodeListBytes(bytes: Buffer): string {
  if (bytes.length >= 2 && bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString("utf16le");
  if (bytes.length >= 2 && bytes[0] === 0xfe && bytes[1] === 0xff) return Buffer.from(bytes.subarray(2)).swap16().toString("utf16le");
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return bytes.subarray(3).toString("utf8");
  return bytes.toString("utf8");
}

/**
 * Reads every regular file (symlinks followed) directly in `dir`, skipping dot-names (Kubernetes
 * projected volumes keep `..data` and timestamped directories there). A missing directory is empty.
 * Throws on other I/O errors.
 */
export async function readSeedLists(dir: string): Promise<ListText[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    // no directory is no seed list; a symlink to nothing is a projection gone wrong, not "no list"
    if ((await fs.lstat(dir).catch(() => undefined))?.isSymbolicLink()) throw Object.assign(new Error(`${dir}: a symlink to nothing`), { code: "dangling symlink" });
    return [];
  }
  const out: ListText[] = [];
  for (const name of names.sort()) {
    if (name.startsWith(".")) continue;
    const file = path.join(dir, name);
    const st = await fs.stat(file);
    if (!st.isFile()) continue;
    out.push({ source: file, text: decodeListBytes(await fs.readFile(file)) });
  }
  return out;
}

/** A cheap change signature of the seed directory: names, sizes, mtimes, inodes. */
export async function seedSignature(dir: string): Promise<string> {
  try {
    const names = (await fs.readdir(dir)).filter((n) => !n.startsWith(".")).sort();
    const parts: string[] = [];
    for (const name of names) {
      const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
      if (st) parts.push(`${name}:${st.size}:${st.mtimeMs}:${st.ino}`);
    }
    return parts.join("|");
  } catch {
    return "";
  }
}

function cacheFile(cacheDir: string, url: string): string {
  return path.join(cacheDir, `${createHash("sha256").update(url).digest("hex").slice(0, 32)}.list`);
}

/** The last good copy of `url` from `cacheDir`, or undefined. `fetchedAt` is the file's mtime. */
export async function readCachedList(cacheDir: string, url: string): Promise<ListText | undefined> {
  const file = cacheFile(cacheDir, url);
  try {
    const [bytes, st] = await Promise.all([fs.readFile(file), fs.stat(file)]);
    return { source: url, text: decodeListBytes(bytes), fetchedAt: st.mtimeMs };
  } catch {
    return undefined;
  }
}

/**
 * Fetches `url` (http/https, ≤ MAX_LIST_BYTES, within `timeoutMs`) and, on success, stores it as the
 * last good copy in `cacheDir`. Rejects on any failure (status ≠ 200, too large, timeout, I/O, or
 * `accept` throwing for its text); the caller keeps using the previous copy. URLs come from
 * configuration, not from agents.
 */
export async function fetchList(url: string, cacheDir: string, now: number, timeoutMs = 30_000, accept: (text: string) => void = () => undefined): Promise<ListText> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "follow" });
  if (response.status !== 200 || !response.body) throw new Error(`status ${response.status}`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.length;
    if (total > MAX_LIST_BYTES) throw new Error(`larger than ${MAX_LIST_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = decodeListBytes(Buffer.concat(chunks));
  accept(text); // throws for a list the caller cannot use: it must not replace the last good copy
  await fs.mkdir(cacheDir, { recursive: true });
  const file = cacheFile(cacheDir, url);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
  return { source: url, text, fetchedAt: now };
}
