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
 * Reads every regular file (symlinks followed) directly in `dir`, skipping dot-names (Kubernetes
 * projected volumes keep `..data` and timestamped directories there). A missing directory is empty.
 * Throws on other I/O errors.
 */
export async function readSeedLists(dir: string): Promise<ListText[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const out: ListText[] = [];
  for (const name of names.sort()) {
    if (name.startsWith(".")) continue;
    const file = path.join(dir, name);
    const st = await fs.stat(file);
    if (!st.isFile()) continue;
    out.push({ source: file, text: await fs.readFile(file, "utf8") });
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
    const [text, st] = await Promise.all([fs.readFile(file, "utf8"), fs.stat(file)]);
    return { source: url, text, fetchedAt: st.mtimeMs };
  } catch {
    return undefined;
  }
}

/**
 * Fetches `url` (http/https, ≤ MAX_LIST_BYTES, within `timeoutMs`) and, on success, stores it as the
 * last good copy in `cacheDir`. Rejects on any failure (status ≠ 200, too large, timeout, I/O); the
 * caller keeps using the previous copy. URLs come from configuration, not from agents.
 */
export async function fetchList(url: string, cacheDir: string, now: number, timeoutMs = 30_000): Promise<ListText> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "follow" });
  if (response.status !== 200 || !response.body) throw new Error(`status ${response.status}`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.length;
    if (total > MAX_LIST_BYTES) throw new Error(`larger than ${MAX_LIST_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  await fs.mkdir(cacheDir, { recursive: true });
  const file = cacheFile(cacheDir, url);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
  return { source: url, text, fetchedAt: now };
}
