// Learn mode's record of destinations (DESIGN §6: "Learn: allow and record"), kept in the router's
// state directory (never the config directory) as `egress-learned-hosts.json`, so an operator can
// turn it into a Strict allowlist. Writes are batched and atomic (temp file + rename).
// Bounded: an agent can invent unlimited host names (a DNS-exfiltration shape), so at most
// `maxEntries` distinct host:port pairs are kept; further ones are counted as dropped.

import { promises as fs } from "node:fs";
import path from "node:path";

/** One learned destination; times in ms since the epoch. */
export interface LearnedHost {
  host: string;
  port: number;
  firstSeen: number;
  lastSeen: number;
  count: number;
}

/** File name inside the state directory. */
export const LEARNED_HOSTS_FILE = "egress-learned-hosts.json";

/** The store; call {@link LearnedHosts.load} once, {@link LearnedHosts.record} per allowed Learn request. */
export class LearnedHosts {
  private readonly entries = new Map<string, LearnedHost>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Distinct pairs not recorded because the store was full. */
  dropped = 0;

  constructor(
    private readonly stateDir: string,
    private readonly flushDelayMs = 1000,
    private readonly maxEntries = 10_000,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  /** Path of the JSON file. */
  get file(): string {
    return path.join(this.stateDir, LEARNED_HOSTS_FILE);
  }

  /** Number of distinct pairs recorded. */
  get size(): number {
    return this.entries.size;
  }

  /** Loads a previous run's file; a missing or unreadable file starts empty (it is only a record). */
  async load(): Promise<void> {
    try {
      const doc = JSON.parse(await fs.readFile(this.file, "utf8")) as { hosts?: LearnedHost[] };
      for (const h of doc.hosts ?? []) {
        if (typeof h.host === "string" && typeof h.port === "number") this.entries.set(`${h.host}:${h.port}`, h);
      }
    } catch {
      // absent or corrupt: start over
    }
  }

  /** Records one use of host:port at `now` (ms); the file is written within `flushDelayMs`. */
  record(host: string, port: number, now: number): void {
    const key = `${host}:${port}`;
    const existing = this.entries.get(key);
    if (existing) {
      existing.lastSeen = now;
      existing.count++;
    } else if (this.entries.size >= this.maxEntries) {
      this.dropped++;
      return;
    } else {
      this.entries.set(key, { host, port, firstSeen: now, lastSeen: now, count: 1 });
    }
    this.dirty = true;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(this.onError);
    }, this.flushDelayMs);
    this.timer.unref();
  }

  /** A copy of the entries, sorted by host then port. */
  list(): LearnedHost[] {
    return [...this.entries.values()].map((e) => ({ ...e })).sort((a, b) => a.host.localeCompare(b.host) || a.port - b.port);
  }

  /** Writes pending changes now (atomic replace). Rejects if the state directory is not writable. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.writing = this.writing.catch(() => undefined).then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fs.mkdir(this.stateDir, { recursive: true });
      await fs.writeFile(tmp, JSON.stringify({ version: 1, hosts: this.list() }, null, 1));
      await fs.rename(tmp, this.file);
    });
    return this.writing;
  }
}
