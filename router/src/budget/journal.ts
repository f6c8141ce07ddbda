import * as fs from "node:fs";
import * as path from "node:path";
import type { LedgerRecord, LedgerSink } from "./ledger";
import { windowKey, type WindowKind } from "./windows";

/** File name of the budget journal inside the state directory. */
export const JOURNAL_FILE = "budget.journal";

/**
 * Append-only, crash-safe budget journal (one JSON record per line) in the router's --state-dir.
 *
 * Durability: each record is written with a synchronous write(2) before the ledger acts on it, so a
 * killed process (kill -9) never loses a reservation that was forwarded; fdatasync(2) follows within
 * one event-loop turn (coalesced), so an OS crash loses at most the records of that turn.
 * On open, the journal is replayed: an unsettled reservation counts as spent in full (the request may
 * have reached the upstream), then the journal is compacted to one `set` line per counter.
 */
export class BudgetJournal implements LedgerSink {
  private syncScheduled = false;
  private closed = false;

  private constructor(
    private fd: number,
    readonly file: string,
  ) {}

  /**
   * Opens (creating) `<stateDir>/budget.journal`, replays it and compacts it, dropping windows that
   * ended before `nowMs` (ms since epoch).
   * Returns the journal and the replayed counters (`counter key → tokens`). Lines that do not parse
   * (a torn last write) are skipped; their count is returned as `skipped`.
   */
  static open(stateDir: string, nowMs: number): { journal: BudgetJournal; counters: Map<string, number>; skipped: number } {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const file = path.join(stateDir, JOURNAL_FILE);
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    const { counters, skipped } = replay(text);
    for (const key of [...counters.keys()]) if (!isCurrent(key, nowMs)) counters.delete(key);
    const tmp = `${file}.tmp`;
    const lines = [...counters].map(([key, tokens]) => JSON.stringify({ op: "set", key, tokens })).join("\n");
    const tfd = fs.openSync(tmp, "w", 0o600);
    fs.writeSync(tfd, lines.length > 0 ? `${lines}\n` : "");
    fs.fsyncSync(tfd);
    fs.closeSync(tfd);
    fs.renameSync(tmp, file);
    fsyncDir(stateDir);
    const fd = fs.openSync(file, "a", 0o600);
    return { journal: new BudgetJournal(fd, file), counters, skipped };
  }

  /** Writes one record (synchronously; see class doc). Throws if the write fails: fail closed. */
  append(record: LedgerRecord): void {
    if (this.closed) throw new Error("budget journal is closed");
    fs.writeSync(this.fd, `${JSON.stringify(record)}\n`);
    if (!this.syncScheduled) {
      this.syncScheduled = true;
      setImmediate(() => {
        this.syncScheduled = false;
        if (!this.closed) fs.fdatasync(this.fd, () => undefined);
      });
    }
  }

  /** Flushes and closes the file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }
}

/** Rebuilds counters from journal text (see BudgetJournal). Exported for tests. */
export function replay(text: string): { counters: Map<string, number>; skipped: number } {
  const counters = new Map<string, number>();
  const open = new Map<string, { counters: string[]; tokens: number }>();
  let skipped = 0;
  const add = (key: string, n: number) => counters.set(key, Math.max(0, (counters.get(key) ?? 0) + n));
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let rec: { op?: string; id?: string; key?: string; counters?: string[]; tokens?: number };
    try {
      rec = JSON.parse(line);
    } catch {
      skipped++;
      continue;
    }
    if (typeof rec.tokens !== "number") {
      skipped++;
      continue;
    }
    if (rec.op === "set" && typeof rec.key === "string") {
      counters.set(rec.key, rec.tokens);
    } else if (rec.op === "reserve" && typeof rec.id === "string" && Array.isArray(rec.counters)) {
      open.set(rec.id, { counters: rec.counters, tokens: rec.tokens });
      for (const key of rec.counters) add(key, rec.tokens);
    } else if (rec.op === "settle" && typeof rec.id === "string") {
      const r = open.get(rec.id);
      if (!r) continue; // settle of a reservation compacted earlier: already folded in
      open.delete(rec.id);
      for (const key of r.counters) add(key, rec.tokens - r.tokens);
    } else {
      skipped++;
    }
  }
  return { counters, skipped };
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  }
}

function isCurrent(counter: string, nowMs: number): boolean {
  const [, kind, win] = counter.split("|");
  return (kind === "hourly" || kind === "daily" || kind === "monthly") && win === windowKey(kind as WindowKind, nowMs);
}
