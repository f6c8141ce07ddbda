import { hash as oneShotHash, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { signCheckpoint } from "./checkpoint";
import { lastWholeLine } from "./last-line";

/** One audited decision: an inference call or an egress connection. */
export type AuditEvent = InferenceAuditEvent | EgressAuditEvent;

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
  record(event: AuditEvent): void;
}

/** Longest an audit record waits in memory before it is written (ms); see AuditLog. */
export const AUDIT_FLUSH_MS = 20;

/** The audit directory inside the state directory, and its files. */
export const AUDIT_DIR = "audit";
export const AUDIT_FILE = "audit.jsonl";
export const CHECKPOINT_FILE = "checkpoints.jsonl";
export const GENESIS = "0".repeat(64);

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
 */
export class AuditLog implements AuditSink {
  private pending = "";
  private flushScheduled = false;
  private readonly timer: NodeJS.Timeout | null;
  /** A background checkpoint's fdatasync is running. */
  private syncing = false;
  private closed = false;

  private constructor(
    private readonly fd: number,
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

  /** Opens (creating) `<stateDir>/audit/` and finds the chain head (cutting a torn last line). */
  static open(stateDir: string, options: AuditLogOptions): AuditLog {
    const dir = path.join(stateDir, AUDIT_DIR);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, AUDIT_FILE);
    const cpFile = path.join(dir, CHECKPOINT_FILE);
    let prev = GENESIS;
    let seq = 0;
    const lastRecord = lastWholeLine(file);
    if (lastRecord) {
      const rec = JSON.parse(lastRecord) as AuditRecord;
      prev = rec.hash;
      seq = rec.seq + 1;
    }
    // the previous run's unsealed tail gets sealed by this run's first checkpoint
    const lastCheckpoint = lastWholeLine(cpFile);
    const sealedSeq = lastCheckpoint ? (JSON.parse(lastCheckpoint) as { seq: number }).seq : -1;
    return new AuditLog(fs.openSync(file, "a", 0o600), fs.openSync(cpFile, "a", 0o600), prev, seq, sealedSeq, {
      now: Date.now,
      checkpointEvery: 1000,
      checkpointIntervalMs: 10_000,
      ...options,
    });
  }

  record(event: AuditEvent): void {
    const bodyText = JSON.stringify({ seq: this.seq, ts: new Date(this.options.now()).toISOString(), prev: this.prev, event });
    const hash = auditHash(this.prev, bodyText);
    this.pending += `${withHash(bodyText, hash)}\n`;
    this.prev = hash;
    this.seq++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setTimeout(() => {
        this.flush();
        if (this.seq - 1 - this.sealedSeq >= this.options.checkpointEvery) this.checkpointInBackground();
      }, AUDIT_FLUSH_MS).unref();
    }
  }

  /** Writes the buffered records now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.pending === "") return;
    const text = this.pending;
    this.pending = "";
    fs.writeSync(this.fd, text);
  }

  /**
   * Signs and writes a checkpoint for the last record now, if any record is unsealed: flushes, then
   * fdatasync(2) so that the records it vouches for are on disk first. Blocks on the disk; the
   * periodic checkpoints use checkpointInBackground instead.
   */
  checkpoint(): void {
    const key = this.options.signingKey;
    if (!key || this.seq - 1 === this.sealedSeq) return;
    this.flush();
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
    this.flush();
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

