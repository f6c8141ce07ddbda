import { hash as oneShotHash, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { signCheckpoint } from "./checkpoint";
import { firstLine, lastWholeLine } from "./last-line";

/** One audited decision (an inference call, an egress connection), or a count of refusals recorded together (audit-throttle.ts). */
export type AuditEvent = InferenceAuditEvent | EgressAuditEvent | SuppressedAuditEvent | UnsettledAuditEvent;

/**
 * An inference call found in flight when the router started: its budget reservation was written
 * (budget.journal) but never settled, because the router stopped (a crash, a kill, a SIGKILL after the
 * grace period) before the call's outcome. It may have reached the upstream, so it is charged in full
 * (`usedTokens` = `reservedTokens`). `reservation` is the journal's id, `counters` the budget windows it
 * charged (`<scope>|<window>|<start>`: they name the sandbox, the tenant and the hour). Recorded once,
 * at the start after the stop, before the journal is compacted.
 */
export interface UnsettledAuditEvent {
  kind: "unsettled";
  sandbox: string;
  tenant: string;
  reservation: string;
  counters: string[];
  reservedTokens: number;
  usedTokens: number;
}

/**
 * Events beyond the rate at which they are recorded one by one (audit-throttle.ts: refusals before
 * the budget, egress decisions), counted together: `counts` maps `inference:<api>:<code>`,
 * `egress:<via>:<decision>:<reason>:<host>:<port>` or, past the key limit,
 * `egress:<via>:<decision>:<reason>:*` to how many there were between `fromTs` and `toTs` (ISO 8601).
 */
export interface SuppressedAuditEvent {
  kind: "suppressed";
  sandbox: string;
  tenant: string;
  count: number;
  counts: Record<string, number>;
  fromTs: string;
  toTs: string;
}

/** One egress proxy decision as audited (DESIGN §6: every decision is audited, with its reason code). */
export interface EgressAuditEvent {
  kind: "egress";
  sandbox: string;
  tenant: string;
  /** How the connection arrived: CONNECT, absolute-form HTTP, or transparently redirected TLS/HTTP. */
  via: string;
  host: string | null;
  port: number;
  decision: "allowed" | "refused";
  /** The proxy's reason code (e.g. allowlist, blocklist, non_public_address). */
  reason: string;
  /** On a refusal, what the reason code does not say (the blocklist entry, the fronted SNI…), at most 200 characters. */
  detail?: string;
}

/** One inference decision as audited (no prompt text, no credentials). */
export interface InferenceAuditEvent {
  kind: "inference";
  sandbox: string;
  tenant: string;
  api: string;
  model: string | null;
  upstream: string | null;
  decision: "allowed" | "refused";
  code: string | null;
  reservedTokens: number;
  usedTokens: number;
  status: number;
}

/** Where audit events go. */
export interface AuditSink {
  /** Records one event; throws when it cannot be recorded (the caller fails closed). */
  record(event: AuditEvent): void;
  /** False while records cannot be written (e.g. a full disk); absent = always writable. */
  healthy?(): boolean;
}

/** Longest an audit record waits in memory before it is written (ms); see AuditLog. */
export const AUDIT_FLUSH_MS = 20;

/** The audit directory inside the state directory, and its files. */
export const AUDIT_DIR = "audit";
export const AUDIT_FILE = "audit.jsonl";
export const CHECKPOINT_FILE = "checkpoints.jsonl";
export const GENESIS = "0".repeat(64);

/** A rotated-out part of the log: `audit-<seq of its first record, 12 digits>.jsonl`. */
const ROTATED = /^audit-(\d{12})\.jsonl$/;

/** The seq of the first record a rotated part's name says, or undefined for any other name. */
export function rotatedFirstSeq(name: string): number | undefined {
  const m = ROTATED.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The file name a rotated part whose first record is `firstSeq` gets. */
export function rotatedFileName(firstSeq: number): string {
  return `audit-${String(firstSeq).padStart(12, "0")}.jsonl`;
}

/**
 * The log's files in chain order: rotated parts by their first seq, then audit.jsonl (the current one,
 * listed even when missing). Names that do not match are ignored.
 */
export function auditFiles(dir: string): string[] {
  const rotated = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .map(f => ROTATED.exec(f))
        .filter((m): m is RegExpExecArray => m !== null)
        .sort((a, b) => Number(a[1]) - Number(b[1]))
        .map(m => m[0])
    : [];
  return [...rotated, AUDIT_FILE];
}

/** One line of audit.jsonl. */
export interface AuditRecord {
  seq: number;
  ts: string;
  prev: string;
  event: AuditEvent;
  hash: string;
}

/** Options of AuditLog.open. */
export interface AuditLogOptions {
  /** Ed25519 key for checkpoints; null = no checkpoints (tests of the chain alone). */
  signingKey: KeyObject | null;
  now?: () => number;
  /** A checkpoint after this many records (default 1000)… */
  checkpointEvery?: number;
  /** …or this long after the first unsealed record (ms, default 10 000), and on close. */
  checkpointIntervalMs?: number;
  /** audit.jsonl is rotated out (sealed, renamed audit-<first seq>.jsonl) once it holds this many bytes (default 32 MiB)… */
  maxFileBytes?: number;
  /** …and only this many rotated parts are kept, the oldest deleted first (default 4: the log stays under ~160 MiB). */
  keepRotated?: number;
}

/**
 * Append-only JSONL audit log in `<stateDir>/audit/` (DESIGN §6): each line of audit.jsonl is
 * `{seq, ts, prev, event, hash}` with `hash = sha256(prev + "\n" + the line's text before ,"hash")`,
 * chaining every record to the one before it, so an edit, deletion or reorder breaks the chain.
 * checkpoints.jsonl holds Ed25519-signed `{seq, hash, ts, sig}` statements (checkpoint.ts), written
 * every `checkpointEvery` records, every `checkpointIntervalMs`, and on close: a truncation before the
 * last checkpoint is detected, and nobody without the key can rebuild a consistent chain.
 * Records are group-committed: written together with one synchronous write(2) at most
 * AUDIT_FLUSH_MS after the first of them; a kill -9 loses at most those, which a verifier sees as a
 * clean (unsealed) end, never as a broken chain.
 * On open, a torn last line (a write cut by a crash) is cut off and the chain continues from the
 * last whole record.
 * Rotation (so that the state directory, in a pod an emptyDir, cannot fill up): once audit.jsonl
 * reaches `maxFileBytes` it is sealed by a checkpoint, renamed `audit-<seq of its first record>.jsonl`,
 * and a new audit.jsonl continues the same chain; beyond `keepRotated` parts the oldest is deleted. A
 * verifier then starts at the first kept record, anchored by the signed checkpoint of the one before.
 */
export class AuditLog implements AuditSink {
  private pending = "";
  private flushScheduled = false;
  /** The last record's time (ms since the epoch) and its ISO 8601 text. */
  private tsMs = NaN;
  private ts = "";
  private readonly timer: NodeJS.Timeout | null;
  /** A background checkpoint's fdatasync is running. */
  private syncing = false;
  private closed = false;
  /** The last write's error, until a write succeeds (see flush). */
  private writeError: Error | null = null;
  /** Bytes of flushed records not yet in the file (after a failed or short write). */
  private unwritten: Buffer | null = null;

  private constructor(
    private readonly dir: string,
    private fd: number,
    /** Bytes in the current audit.jsonl. */
    private fileBytes: number,
    private readonly checkpointFd: number,
    private prev: string,
    private seq: number,
    /** seq of the last record a checkpoint vouches for (-1: none). */
    private sealedSeq: number,
    private readonly options: Required<AuditLogOptions>,
  ) {
    this.timer = options.signingKey ? setInterval(() => this.checkpointInBackground(), options.checkpointIntervalMs) : null;
    this.timer?.unref();
  }

  /**
   * Opens (creating) `<stateDir>/audit/` and finds the chain head (cutting a torn last line). Throws
   * on I/O errors and when `keepRotated` is below 1.
   */
  static open(stateDir: string, options: AuditLogOptions): AuditLog {
    if (options.keepRotated !== undefined && !(options.keepRotated >= 1)) throw new Error("audit log: keepRotated must be at least 1");
    const dir = path.join(stateDir, AUDIT_DIR);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, AUDIT_FILE);
    const cpFile = path.join(dir, CHECKPOINT_FILE);
    let prev = GENESIS;
    let seq = 0;
    // the chain head: audit.jsonl's last record, or, right after a rotation, the newest rotated part's
    const files = auditFiles(dir);
    let lastRecord: string | null = null;
    for (let i = files.length - 1; i >= 0 && lastRecord === null; i--) lastRecord = lastWholeLine(path.join(dir, files[i]));
    if (lastRecord) {
      const rec = JSON.parse(lastRecord) as AuditRecord;
      prev = rec.hash;
      seq = rec.seq + 1;
    }
    // the previous run's unsealed tail gets sealed by this run's first checkpoint
    const lastCheckpoint = lastWholeLine(cpFile);
    const sealedSeq = lastCheckpoint ? (JSON.parse(lastCheckpoint) as { seq: number }).seq : -1;
    const fd = fs.openSync(file, "a", 0o600);
    return new AuditLog(dir, fd, fs.fstatSync(fd).size, fs.openSync(cpFile, "a", 0o600), prev, seq, sealedSeq, {
      now: Date.now,
      checkpointEvery: 1000,
      checkpointIntervalMs: 10_000,
      maxFileBytes: 32 * 1024 * 1024,
      keepRotated: 4,
      ...options,
    });
  }

  /**
   * Appends one record (buffered: see the class). The body is `JSON.stringify({seq, ts, prev, event})`
   * byte for byte, built around the event's own JSON (seq is an integer, ts an ISO 8601 time and prev
   * hex: nothing in them to escape); ts is made once per millisecond.
   */
  record(event: AuditEvent): void {
    // after a failed write nothing more is accepted until the kept records are written: fail closed
    if (this.writeError) this.flush();
    const now = this.options.now();
    if (now !== this.tsMs) {
      this.tsMs = now;
      this.ts = new Date(now).toISOString();
    }
    const bodyText = `{"seq":${this.seq},"ts":"${this.ts}","prev":"${this.prev}","event":${JSON.stringify(event)}}`;
    const hash = auditHash(this.prev, bodyText);
    this.pending += `${withHash(bodyText, hash)}\n`;
    this.prev = hash;
    this.seq++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => {
        try {
          this.flush();
        } catch {
          return; // kept in memory; the next record() retries and reports it (a timer must not throw)
        }
        if (this.seq - 1 - this.sealedSeq >= this.options.checkpointEvery) this.checkpointInBackground();
      }, AUDIT_FLUSH_MS).unref();
    }
  }

  /**
   * Writes the buffered records now. Throws the write's error (ENOSPC, EIO…); the records stay buffered,
   * in order, and until a later flush writes them, `healthy()` is false and `record` throws.
   */
  flush(): void {
    this.flushScheduled = false;
    if (this.closed || (this.pending === "" && this.unwritten === null)) return;
    // bytes a failed or short write left behind go first, byte-exact (a short write may end mid-character)
    const fresh = Buffer.from(this.pending);
    const bytes = this.unwritten ? Buffer.concat([this.unwritten, fresh]) : fresh;
    this.pending = "";
    this.unwritten = null;
    let written = 0;
    try {
      while (written < bytes.length) written += fs.writeSync(this.fd, bytes, written);
    } catch (err) {
      this.unwritten = bytes.subarray(written);
      this.writeError = err as Error;
      this.fileBytes += written;
      throw err;
    }
    this.writeError = null;
    this.fileBytes += bytes.length;
    if (this.fileBytes >= this.options.maxFileBytes) this.rotate();
  }

  /** False while the last write failed (records are held back, new ones refused); see flush. */
  healthy(): boolean {
    return this.writeError === null;
  }

  /**
   * Seals audit.jsonl with a checkpoint (synchronously: once per `maxFileBytes`), renames it after its
   * first record and starts a new one; deletes the oldest rotated parts beyond `keepRotated`.
   * Throws on I/O errors (the caller's write fails, as any audit write failure does).
   */
  private rotate(): void {
    // on disk before the rename: a checkpoint syncs what it seals (sealed records were synced before)
    if (this.options.signingKey) this.checkpoint();
    else fs.fdatasyncSync(this.fd);
    const current = path.join(this.dir, AUDIT_FILE);
    const first = firstLine(current);
    const firstSeq = first === null ? this.seq : (JSON.parse(first) as AuditRecord).seq;
    fs.closeSync(this.fd);
    fs.renameSync(current, path.join(this.dir, rotatedFileName(firstSeq)));
    this.fd = fs.openSync(current, "a", 0o600);
    this.fileBytes = 0;
    const dirFd = fs.openSync(this.dir, "r");
    try {
      fs.fsyncSync(dirFd); // the rename and the new file survive a crash
    } finally {
      fs.closeSync(dirFd);
    }
    const rotated = auditFiles(this.dir).slice(0, -1);
    for (const old of rotated.slice(0, Math.max(0, rotated.length - this.options.keepRotated))) fs.rmSync(path.join(this.dir, old), { force: true });
  }

  /**
   * Signs and writes a checkpoint for the last record now, if any record is unsealed: flushes, then
   * fdatasync(2) so that the records it vouches for are on disk first. Blocks on the disk; the
   * periodic checkpoints use checkpointInBackground instead.
   */
  checkpoint(): void {
    const key = this.options.signingKey;
    if (!key || this.seq - 1 === this.sealedSeq) return;
    this.flush(); // may rotate, which seals everything itself
    if (this.seq - 1 <= this.sealedSeq) return;
    fs.fdatasyncSync(this.fd);
    this.writeCheckpoint(this.seq - 1, this.prev, key);
  }

  /**
   * The periodic checkpoint, off the event loop: flushes, runs fdatasync(2) on the thread pool, and
   * only when it succeeded signs and writes a checkpoint for the last record flushed before it (a
   * router under load would otherwise stall every request behind a disk flush, several times a
   * second). One at a time; records appended meanwhile are sealed by the next one. If the sync fails,
   * no checkpoint is written and the records stay unsealed until one succeeds (never vouched for
   * before they are on disk).
   */
  private checkpointInBackground(): void {
    const key = this.options.signingKey;
    if (!key || this.syncing || this.closed || this.seq - 1 === this.sealedSeq) return;
    try {
      this.flush(); // may rotate, which seals everything itself
    } catch {
      return; // nothing is sealed that is not written; record() reports the failure (a timer must not throw)
    }
    if (this.seq - 1 <= this.sealedSeq) return;
    const seq = this.seq - 1;
    const hash = this.prev;
    this.syncing = true;
    fs.fdatasync(this.fd, (err) => {
      this.syncing = false;
      // closed meanwhile (close sealed everything itself), or a later checkpoint already written
      if (err || this.closed || seq <= this.sealedSeq) return;
      this.writeCheckpoint(seq, hash, key);
    });
  }

  private writeCheckpoint(seq: number, hash: string, key: KeyObject): void {
    const c = signCheckpoint({ seq, hash, ts: new Date(this.options.now()).toISOString() }, key);
    fs.writeSync(this.checkpointFd, `${JSON.stringify(c)}\n`);
    this.sealedSeq = seq;
  }

  /** Seals everything (flush, checkpoint, fsync) and closes the files; later records are not written. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.checkpoint();
    this.flush();
    this.closed = true;
    fs.fsyncSync(this.fd);
    fs.fsyncSync(this.checkpointFd);
    fs.closeSync(this.fd);
    fs.closeSync(this.checkpointFd);
  }
}

/**
 * The chain hash of a record: hex SHA-256 of `prev + "\n" + bodyText`, where bodyText is the record's
 * JSON without its `hash` field, exactly as written. Hashing the written bytes (not a re-serialisation)
 * lets the verifier check a record without parsing its event.
 */
export function auditHash(prev: string, bodyText: string): string {
  return oneShotHash("sha256", `${prev}\n${bodyText}`, "hex"); // one-shot: ~3× faster than createHash per record
}

/** The record line: the body JSON with `"hash"` appended as its last field. */
export function withHash(bodyText: string, hash: string): string {
  return `${bodyText.slice(0, -1)},"hash":"${hash}"}`;
}

/** Length of the `,"hash":"<64 hex>"}` suffix of a record line. */
export const HASH_SUFFIX_LENGTH = 75;

