import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { AUDIT_FILE, auditHash, CHECKPOINT_FILE, GENESIS, HASH_SUFFIX_LENGTH } from "./audit-log";
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
  let start = 0;
  for (let i = 0; start < logText.length; i++) {
    let end = logText.indexOf("\n", start);
    if (end === -1) end = logText.length;
    const line = logText.slice(start, end);
    start = end + 1;
    // {"seq":N,"ts":"…","prev":"<64 hex>","event":{…},"hash":"<64 hex>"}: read by position, the event is
    // not parsed (the hash covers every byte of it); plain string ops keep this above 500k records/s
    const seqEnd = line.indexOf(",", 7);
    const prevAt = line.indexOf(',"prev":"', seqEnd) + 9;
    const len = line.length;
    if (!line.startsWith('{"seq":') || seqEnd < 0 || prevAt < 9 || len < prevAt + 64 + HASH_SUFFIX_LENGTH || line.slice(len - HASH_SUFFIX_LENGTH, len - 66) !== ',"hash":"' || !line.endsWith('"}')) {
      return { ok: false, problem: `${AUDIT_FILE} line ${i + 1}: not an audit record` };
    }
    const seqText = line.slice(7, seqEnd);
    if (seqText !== String(i)) return { ok: false, problem: `${AUDIT_FILE} line ${i + 1}: seq ${seqText}, expected ${i} (record deleted or reordered)` };
    if (line.slice(prevAt, prevAt + 64) !== prev) return { ok: false, problem: `${AUDIT_FILE} line ${i + 1}: prev does not match the previous record's hash (record deleted or reordered)` };
    const hash = line.slice(len - 66, len - 2);
    if (auditHash(prev, `${line.slice(0, len - HASH_SUFFIX_LENGTH)}}`) !== hash) return { ok: false, problem: `${AUDIT_FILE} line ${i + 1}: hash mismatch (record edited)` };
    hashes.push(hash);
    prev = hash;
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
