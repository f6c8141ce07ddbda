import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { StringDecoder } from "node:string_decoder";
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
 * error (they are the tail a crash may leave). Returns the first problem, naming the file and line
 * (a broken chain is reported before a bad checkpoint).
 */
export function verifyAuditLog(logText: string, checkpointText: string, publicKey: KeyObject): AuditVerdict {
  return verifyAudit([logText], checkpointText, publicKey);
}

/**
 * verifyAuditLog on a directory holding audit.jsonl and checkpoints.jsonl, reading the log in pieces
 * of `pieceBytes` (default 8 MiB): memory stays flat whatever the log's size (a whole-file read fails
 * past 2 GiB). Throws when audit.jsonl is missing or unreadable.
 */
export function verifyAuditDir(dir: string, publicKey: KeyObject, pieceBytes = 8 * 1024 * 1024): AuditVerdict {
  const cpFile = path.join(dir, CHECKPOINT_FILE);
  const checkpoints = fs.existsSync(cpFile) ? fs.readFileSync(cpFile, "utf8") : "";
  const fd = fs.openSync(path.join(dir, AUDIT_FILE), "r");
  try {
    return verifyAudit(readPieces(fd, pieceBytes), checkpoints, publicKey);
  } finally {
    fs.closeSync(fd);
  }
}

/** The file's text in pieces of about `bytes` (UTF-8 sequences are never split between pieces). */
function* readPieces(fd: number, bytes: number): Generator<string> {
  const buffer = Buffer.alloc(bytes);
  const decoder = new StringDecoder("utf8");
  for (;;) {
    const n = fs.readSync(fd, buffer, 0, bytes, null);
    if (n === 0) break;
    yield decoder.write(buffer.subarray(0, n));
  }
  const rest = decoder.end();
  if (rest) yield rest;
}

/** A checkpoint line parsed and its signature checked, or the problem with it. */
type CheckedCheckpoint = { ok: true; seq: number; hash: string } | { ok: false; problem: string };

/**
 * The verification over a log given as consecutive text pieces (lines may span pieces). Checkpoints
 * are read first, so that only the hashes they name are kept while the chain is walked: memory is
 * one record plus one hash per checkpoint, not one per record.
 */
function verifyAudit(logPieces: Iterable<string>, checkpointText: string, publicKey: KeyObject): AuditVerdict {
  const lines = checkpointText.split("\n").filter(l => l !== "");
  const checked: CheckedCheckpoint[] = [];
  const wanted = new Map<number, string | undefined>(); // seq → the log's hash there, once walked
  let lastSeq: number | null = null;
  for (let i = 0; i < lines.length; i++) {
    const where = `${CHECKPOINT_FILE} line ${i + 1}`;
    let c: AuditCheckpoint;
    try {
      c = JSON.parse(lines[i]) as AuditCheckpoint;
    } catch {
      checked.push({ ok: false, problem: `${where}: not JSON` });
      break;
    }
    if (!isCheckpointSigned(c, publicKey)) {
      checked.push({ ok: false, problem: `${where}: signature does not verify with the given public key` });
      break;
    }
    if (lastSeq !== null && c.seq <= lastSeq) {
      checked.push({ ok: false, problem: `${where}: seq ${c.seq} not after the previous checkpoint's ${lastSeq}` });
      break;
    }
    checked.push({ ok: true, seq: c.seq, hash: c.hash });
    wanted.set(c.seq, undefined);
    lastSeq = c.seq;
  }

  let prev = GENESIS;
  let i = 0;
  let carry = "";
  const walk = (line: string): string | undefined => {
    // {"seq":N,"ts":"…","prev":"<64 hex>","event":{…},"hash":"<64 hex>"}: read by position, the event is
    // not parsed (the hash covers every byte of it); plain string ops keep this above 500k records/s
    const seqEnd = line.indexOf(",", 7);
    const prevAt = line.indexOf(',"prev":"', seqEnd) + 9;
    const len = line.length;
    if (!line.startsWith('{"seq":') || seqEnd < 0 || prevAt < 9 || len < prevAt + 64 + HASH_SUFFIX_LENGTH || line.slice(len - HASH_SUFFIX_LENGTH, len - 66) !== ',"hash":"' || !line.endsWith('"}')) {
      return `${AUDIT_FILE} line ${i + 1}: not an audit record`;
    }
    const seqText = line.slice(7, seqEnd);
    if (seqText !== String(i)) return `${AUDIT_FILE} line ${i + 1}: seq ${seqText}, expected ${i} (record deleted or reordered)`;
    if (line.slice(prevAt, prevAt + 64) !== prev) return `${AUDIT_FILE} line ${i + 1}: prev does not match the previous record's hash (record deleted or reordered)`;
    const hash = line.slice(len - 66, len - 2);
    if (auditHash(prev, `${line.slice(0, len - HASH_SUFFIX_LENGTH)}}`) !== hash) return `${AUDIT_FILE} line ${i + 1}: hash mismatch (record edited)`;
    if (wanted.has(i)) wanted.set(i, hash);
    prev = hash;
    i++;
    return undefined;
  };
  for (const piece of logPieces) {
    const text = carry === "" ? piece : carry + piece;
    let start = 0;
    for (let end = text.indexOf("\n", start); end !== -1; end = text.indexOf("\n", start)) {
      const problem = walk(text.slice(start, end));
      if (problem) return { ok: false, problem };
      start = end + 1;
    }
    carry = text.slice(start);
  }
  if (carry !== "") {
    const problem = walk(carry);
    if (problem) return { ok: false, problem };
  }

  const records = i;
  for (let k = 0; k < checked.length; k++) {
    const c = checked[k];
    if (!c.ok) return { ok: false, problem: c.problem };
    const where = `${CHECKPOINT_FILE} line ${k + 1}`;
    if (c.seq >= records) return { ok: false, problem: `${where}: vouches for record ${c.seq} but the log ends at ${records - 1} (log truncated)` };
    if (wanted.get(c.seq) !== c.hash) return { ok: false, problem: `${where}: record ${c.seq} has another hash than the signed one (log rewritten)` };
  }
  return { ok: true, records, checkpoints: lines.length, lastCheckpointSeq: lastSeq, unsealedRecords: records - (lastSeq === null ? 0 : lastSeq + 1) };
}
