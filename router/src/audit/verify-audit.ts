import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { AUDIT_FILE, auditHash, CHECKPOINT_FILE, GENESIS, type AuditRecord } from "./audit-log";
import { isCheckpointSigned, type AuditCheckpoint } from "./checkpoint";

/** Outcome of verifying an audit directory. */
export type AuditVerdict =
  | { ok: true; records: number; checkpoints: number; lastCheckpointSeq: number | null; unsealedRecords: number }
  | { ok: false; problem: string };

/**
 * Verifies an audit log text and its checkpoints (DESIGN §6): the hash chain from the genesis hash
 * (detects an edit, deletion or reorder), then every checkpoint: Ed25519 signature under `publicKey`,
 * in increasing order, naming a record that exists with exactly that hash (a checkpoint past the end
 * means the log was truncated). Records after the last checkpoint are reported as unsealed, not as an
 * error (they are the tail a crash may leave). Returns the first problem, naming the file and line.
 */
export function verifyAuditLog(logText: string, checkpointText: string, publicKey: KeyObject): AuditVerdict {
  const hashes: string[] = [];
  let prev = GENESIS;
  const lines = logText.split("\n").filter(l => l !== "");
  for (let i = 0; i < lines.length; i++) {
    const where = `${AUDIT_FILE} line ${i + 1}`;
    let rec: AuditRecord;
    try {
      rec = JSON.parse(lines[i]) as AuditRecord;
    } catch {
      return { ok: false, problem: `${where}: not JSON` };
    }
    if (rec.seq !== i) return { ok: false, problem: `${where}: seq ${rec.seq}, expected ${i} (record deleted or reordered)` };
    if (rec.prev !== prev) return { ok: false, problem: `${where}: prev does not match the previous record's hash (record deleted or reordered)` };
    if (auditHash(prev, { seq: rec.seq, ts: rec.ts, prev: rec.prev, event: rec.event }) !== rec.hash) {
      return { ok: false, problem: `${where}: hash mismatch (record edited)` };
    }
    hashes.push(rec.hash);
    prev = rec.hash;
  }
  const cps = checkpointText.split("\n").filter(l => l !== "");
  let lastSeq: number | null = null;
  for (let i = 0; i < cps.length; i++) {
    const where = `${CHECKPOINT_FILE} line ${i + 1}`;
    let c: AuditCheckpoint;
    try {
      c = JSON.parse(cps[i]) as AuditCheckpoint;
    } catch {
      return { ok: false, problem: `${where}: not JSON` };
    }
    if (!isCheckpointSigned(c, publicKey)) return { ok: false, problem: `${where}: signature does not verify with the given public key` };
    if (lastSeq !== null && c.seq <= lastSeq) return { ok: false, problem: `${where}: seq ${c.seq} not after the previous checkpoint's ${lastSeq}` };
    if (c.seq >= hashes.length) return { ok: false, problem: `${where}: vouches for record ${c.seq} but the log ends at ${hashes.length - 1} (log truncated)` };
    if (hashes[c.seq] !== c.hash) return { ok: false, problem: `${where}: record ${c.seq} has another hash than the signed one (log rewritten)` };
    lastSeq = c.seq;
  }
  return { ok: true, records: hashes.length, checkpoints: cps.length, lastCheckpointSeq: lastSeq, unsealedRecords: hashes.length - (lastSeq === null ? 0 : lastSeq + 1) };
}

/** verifyAuditLog on a directory holding audit.jsonl and checkpoints.jsonl. Throws when audit.jsonl is missing. */
export function verifyAuditDir(dir: string, publicKey: KeyObject): AuditVerdict {
  const log = fs.readFileSync(path.join(dir, AUDIT_FILE), "utf8");
  const cpFile = path.join(dir, CHECKPOINT_FILE);
  return verifyAuditLog(log, fs.existsSync(cpFile) ? fs.readFileSync(cpFile, "utf8") : "", publicKey);
}
