import * as fs from "node:fs";
import * as path from "node:path";
import type { LedgerRecord, LedgerSink } from "./ledger";
import { windowKey, type WindowKind } from "./windows";

/** Longest a settlement waits in memory before it is written (ms); see BudgetJournal. */
export const SETTLE_FLUSH_MS = 20;

/** File name of the budget journal inside the state directory. */
export const JOURNAL_FILE = "budget.journal";

/**
 * Append-only, crash-safe budget journal (one JSON record per line) in the router's --state-dir.
 *
 * Durability: a reservation is written with a synchronous write(2) before the ledger grants it, so a
 * killed process (kill -9) never loses a reservation that may have been forwarded. Settlements are
 * buffered and written with the next reservation or after SETTLE_FLUSH_MS, whichever comes first:
 * losing one to a kill only leaves its full reservation charged (never under-counts spend).
 * fdatasync(2) runs at most every `syncIntervalMs` (default 1 s) while there are unsynced writes, so an
 * OS crash or power loss can lose at most that much; per-record fsync would block every write behind
 * the disk flush.
 * On open, the journal is replayed: an unsettled reservation counts as spent in full (the request may
 * have reached the upstream), then the journal is compacted to one `set` line per counter.
 */
export class BudgetJournal implements LedgerSink {
  private pending = "";
  /** Reservations appended and not settled yet (what compact writes back as `open` lines). */
  private readonly openReservations = new Map<string, LedgerRecord & { op: "reserve" }>();
  private flushScheduled = false;
  private dirty = false;
  private closed = false;
  private readonly syncTimer: NodeJS.Timeout;

  private constructor(
    private fd: number,
    readonly file: string,
    syncIntervalMs: number,
  ) {
    this.syncTimer = setInterval(() => this.sync(), syncIntervalMs);
    this.syncTimer.unref();
  }

  /**
   * Opens (creating) `<stateDir>/budget.journal`, replays it and compacts it, dropping windows that
   * ended before `nowMs` (ms since epoch).
   * Returns the journal and the replayed counters (`counter key → tokens`). Lines that do not parse
   * (a torn last write) are skipped; their count is returned as `skipped`. `beforeCompaction` is
   * given the reservations found unsettled before the compaction folds them into the counters (for
   * the audit log: if it throws, the journal is left as it was and open throws).
   */
  static open(
    stateDir: string,
    nowMs: number,
    syncIntervalMs = 1000,
    beforeCompaction?: (unsettled: readonly UnsettledReservation[]) => void,
  ): { journal: BudgetJournal; counters: Map<string, number>; skipped: number; unsettled: UnsettledReservation[] } {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const file = path.join(stateDir, JOURNAL_FILE);
    const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
    const { counters, skipped, unsettled } = replay(text);
    if (unsettled.length > 0) beforeCompaction?.(unsettled);
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
    return { journal: new BudgetJournal(fd, file, syncIntervalMs), counters, skipped, unsettled };
  }

  /** Records one change (see class doc for when it reaches the file). Throws if a write fails: fail closed. */
  append(record: LedgerRecord): void {
    if (this.closed) throw new Error("budget journal is closed");
    const line = `${JSON.stringify(record)}\n`;
    if (record.op === "reserve") this.openReservations.set(record.id, record);
    else this.openReservations.delete(record.id);
    if (record.op === "reserve") {
      const text = this.pending + line;
      this.pending = "";
      fs.writeSync(this.fd, text);
      this.dirty = true;
      return;
    }
    this.pending += line;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => this.flush(), SETTLE_FLUSH_MS).unref();
    }
  }

  /** Writes buffered settlements now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.pending === "") return;
    const text = this.pending;
    this.pending = "";
    fs.writeSync(this.fd, text);
    this.dirty = true;
  }

  private sync(): void {
    if (this.closed || !this.dirty) return;
    this.dirty = false;
    fs.fdatasync(this.fd, () => undefined);
  }

  /** Bytes written to the journal file so far (for deciding when to compact). */
  size(): number {
    return fs.fstatSync(this.fd).size + Buffer.byteLength(this.pending);
  }

  /**
   * Replaces the journal by one `set` line per counter (`counters` = the ledger's current windows,
   * open reservations included) and one `open` line per reservation not settled yet (its id, counters
   * and tokens, not added again on replay), atomically (write temp, fsync, rename). A reservation open
   * during compaction is then remembered at its full amount, and as unsettled, if the router dies
   * before it settles: spend is over-counted, never under-counted, and the call is audited.
   */
  compact(counters: Iterable<[string, number]>): void {
    if (this.closed) throw new Error("budget journal is closed");
    this.pending = "";
    const tmp = `${this.file}.tmp`;
    // open reservations go back as `open` lines (their tokens are in the counters already): a kill
    // before they settle still finds them, to audit them as unsettled at the next start
    const lines = [
      ...[...counters].map(([key, tokens]) => JSON.stringify({ op: "set", key, tokens })),
      ...[...this.openReservations.values()].map(r => JSON.stringify({ op: "open", id: r.id, counters: r.counters, tokens: r.tokens })),
    ].join("\n");
    const tfd = fs.openSync(tmp, "w", 0o600);
    fs.writeSync(tfd, lines.length > 0 ? `${lines}\n` : "");
    fs.fsyncSync(tfd);
    fs.closeSync(tfd);
    fs.renameSync(tmp, this.file);
    fsyncDir(path.dirname(this.file));
    const old = this.fd;
    this.fd = fs.openSync(this.file, "a", 0o600);
    fs.closeSync(old);
  }

  /** Flushes and closes the file. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    clearInterval(this.syncTimer);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }
}

/**
 * A reservation the journal holds no settlement for: the router stopped (a crash, a kill) while its
 * call was in flight, so its outcome was never seen and it is charged in full. `counters` are the
 * window counter keys it charged (which name its scopes and windows), `tokens` what it reserved.
 */
export interface UnsettledReservation {
  id: string;
  counters: string[];
  tokens: number;
}

/** Rebuilds counters from journal text (see BudgetJournal), and lists the reservations never settled. Exported for tests. */
export function replay(text: string): { counters: Map<string, number>; skipped: number; unsettled: UnsettledReservation[] } {
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
    } else if (rec.op === "open" && typeof rec.id === "string" && Array.isArray(rec.counters)) {
      open.set(rec.id, { counters: rec.counters, tokens: rec.tokens }); // written by compact: already in the counters' `set`
    } else if (rec.op === "settle" && typeof rec.id === "string") {
      const r = open.get(rec.id);
      if (!r) continue; // settle of a reservation compacted earlier: already folded in
      open.delete(rec.id);
      for (const key of r.counters) add(key, rec.tokens - r.tokens);
    } else {
      skipped++;
    }
  }
  return { counters, skipped, unsettled: [...open].map(([id, r]) => ({ id, counters: r.counters, tokens: r.tokens })) };
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
