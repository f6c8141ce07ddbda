import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** One inference decision as audited (no prompt text, no credentials). */
export interface AuditEvent {
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

export const AUDIT_FILE = "audit.jsonl";
const GENESIS = "0".repeat(64);

/**
 * Append-only JSONL audit log in the state directory (DESIGN §6): each line is
 * `{seq, ts, prev, event, hash}` where `hash = sha256(prev + "\n" + canonical {seq, ts, prev, event})`,
 * chaining every record to the one before it, so an edit, deletion or reorder breaks the chain.
 * Records of one event-loop turn are written together with one synchronous write(2) at the end of
 * the turn (group commit; a kill -9 can lose at most that turn's records, which a verifier then sees as
 * a clean end of the chain, never as a broken one). The chain head is recovered from the file's last
 * line on open. (Signed checkpoints: not implemented yet.)
 */
export class AuditLog implements AuditSink {
  private pending = "";
  private flushScheduled = false;

  private constructor(
    private readonly fd: number,
    private prev: string,
    private seq: number,
    private readonly now: () => number,
  ) {}

  /** Opens (creating) `<stateDir>/audit.jsonl` and finds the chain head. */
  static open(stateDir: string, now: () => number = Date.now): AuditLog {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const file = path.join(stateDir, AUDIT_FILE);
    let prev = GENESIS;
    let seq = 0;
    if (fs.existsSync(file)) {
      const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").filter(Boolean);
      const last = lines.at(-1);
      if (last) {
        const rec = JSON.parse(last) as { seq: number; hash: string };
        prev = rec.hash;
        seq = rec.seq + 1;
      }
    }
    return new AuditLog(fs.openSync(file, "a", 0o600), prev, seq, now);
  }

  record(event: AuditEvent): void {
    const body = { seq: this.seq, ts: new Date(this.now()).toISOString(), prev: this.prev, event };
    const hash = auditHash(this.prev, body);
    this.pending += `${JSON.stringify({ ...body, hash })}\n`;
    this.prev = hash;
    this.seq++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes the buffered records now. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending === "") return;
    const text = this.pending;
    this.pending = "";
    fs.writeSync(this.fd, text);
  }

  close(): void {
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }
}

/** The chain hash of a record body given the previous hash (hex SHA-256). */
export function auditHash(prev: string, body: { seq: number; ts: string; prev: string; event: AuditEvent }): string {
  return createHash("sha256").update(`${prev}\n${JSON.stringify(body)}`).digest("hex");
}

/**
 * Checks a whole audit log text; returns null when intact, else `line N: why` for the first bad record
 * (hash mismatch = edit, prev mismatch = deletion or reorder, seq gap).
 */
export function auditChainProblem(text: string): string | null {
  let prev = GENESIS;
  const lines = text.split("\n").filter(Boolean);
  for (let i = 0; i < lines.length; i++) {
    let rec: { seq: number; ts: string; prev: string; event: AuditEvent; hash: string };
    try {
      rec = JSON.parse(lines[i]);
    } catch {
      return `line ${i + 1}: not JSON`;
    }
    if (rec.seq !== i) return `line ${i + 1}: seq ${rec.seq}, expected ${i}`;
    if (rec.prev !== prev) return `line ${i + 1}: prev does not match the previous record's hash`;
    if (auditHash(prev, { seq: rec.seq, ts: rec.ts, prev: rec.prev, event: rec.event }) !== rec.hash) return `line ${i + 1}: hash mismatch (record edited)`;
    prev = rec.hash;
  }
  return null;
}
