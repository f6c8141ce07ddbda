import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { StringDecoder } from "node:string_decoder";
import { AUDIT_FILE, auditFiles, auditHash, CHECKPOINT_FILE, GENESIS, HASH_SUFFIX_LENGTH, rotatedFirstSeq } from "./audit-log";
import { isCheckpointSigned, type AuditCheckpoint } from "./checkpoint";

/**
 * Outcome of verifying an audit directory. `firstSeq` is the first record present (0, or later when
 * older parts were rotated out); `records` counts the records present.
 */
export type AuditVerdict =
  | { ok: true; firstSeq: number; records: number; checkpoints: number; lastCheckpointSeq: number | null; unsealedRecords: number }
  | { ok: false; problem: string };

/**
 * One file of the log, as consecutive text pieces (lines may span pieces, never files); a rotated
 * part's name says the seq of its first record (`namedFirstSeq`).
 */
interface LogPart {
  name: string;
  namedFirstSeq?: number;
  pieces: Iterable<string>;
}

/**
 * Verifies an audit log text and its checkpoints (DESIGN §6): the hash chain from the genesis hash
 * (detects an edit, deletion or reorder), then every checkpoint: Ed25519 signature under `publicKey`,
 * in increasing order, naming a record that exists with exactly that hash (a checkpoint past the end
 * means the log was truncated). A log whose first record is not record 0 (older parts rotated out)
 * must start with a rotated part (audit-<seq>.jsonl, beginning with record <seq>) right after a signed
 * checkpoint: its first record's `prev` must be that checkpoint's hash. Deleting records from the head
 * of a file is detected; deleting whole oldest parts is what rotation does, and shows as `firstSeq`.
 * Records after the last checkpoint are reported as unsealed, not as an error (they are the tail a
 * crash may leave). Returns the first problem, naming the file and line (a broken chain is reported
 * before a bad checkpoint).
 */
export function verifyAuditLog(logText: string, checkpointText: string, publicKey: KeyObject): AuditVerdict {
  return verifyAudit([{ name: AUDIT_FILE, pieces: [logText] }], checkpointText, publicKey);
}

/**
 * verifyAuditLog on an audit directory: the rotated parts (audit-<seq>.jsonl, in order) then
 * audit.jsonl, with checkpoints.jsonl, each log file read in pieces of `pieceBytes` (default 8 MiB):
 * memory stays flat whatever the log's size (a whole-file read fails past 2 GiB). Throws when
 * audit.jsonl is missing or unreadable.
 */
export function verifyAuditDir(dir: string, publicKey: KeyObject, pieceBytes = 8 * 1024 * 1024): AuditVerdict {
  const cpFile = path.join(dir, CHECKPOINT_FILE);
  const checkpoints = fs.existsSync(cpFile) ? fs.readFileSync(cpFile, "utf8") : "";
  if (!fs.existsSync(path.join(dir, AUDIT_FILE))) throw new Error(`${path.join(dir, AUDIT_FILE)}: no such file`);
  const parts = auditFiles(dir).map(name => ({ name, namedFirstSeq: rotatedFirstSeq(name), pieces: readPieces(path.join(dir, name), pieceBytes) }));
  return verifyAudit(parts, checkpoints, publicKey);
}

/** A file's text in pieces of about `bytes` (UTF-8 sequences are never split between pieces). */
function* readPieces(file: string, bytes: number): Generator<string> {
  const fd = fs.openSync(file, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    const decoder = new StringDecoder("utf8");
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, bytes, null);
      if (n === 0) break;
      yield decoder.write(buffer.subarray(0, n));
    }
    const rest = decoder.end();
    if (rest) yield rest;
  } finally {
    fs.closeSync(fd);
  }
}

/** A checkpoint line parsed and its signature checked, or the problem with it. */
type CheckedCheckpoint = { ok: true; seq: number; hash: string } | { ok: false; problem: string };

/**
 * The verification over a log given as files of consecutive text pieces. Checkpoints are read first,
 * so that only the hashes they name are kept while the chain is walked: memory is one record plus one
 * hash per checkpoint, not one per record.
 */
function verifyAudit(parts: Iterable<LogPart>, checkpointText: string, publicKey: KeyObject): AuditVerdict {
  const lines = checkpointText.split("\n").filter(l => l !== "");
  const checked: CheckedCheckpoint[] = [];
  const signed = new Map<number, string>(); // seq → hash a valid checkpoint vouches for
  const seen = new Map<number, string>(); // seq → the log's hash there, for those seqs
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
    signed.set(c.seq, c.hash);
    lastSeq = c.seq;
  }

  let prev = GENESIS;
  let seq = 0; // the seq the next record must have
  let firstSeq: number | null = null;
  const walk = (line: string, where: string, part: LogPart, lineNo: number): string | undefined => {
    // {"seq":N,"ts":"…","prev":"<64 hex>","event":{…},"hash":"<64 hex>"}: read by position, the event is
    // not parsed (the hash covers every byte of it); plain string ops keep this above 500k records/s
    const seqEnd = line.indexOf(",", 7);
    const prevAt = line.indexOf(',"prev":"', seqEnd) + 9;
    const len = line.length;
    if (!line.startsWith('{"seq":') || seqEnd < 0 || prevAt < 9 || len < prevAt + 64 + HASH_SUFFIX_LENGTH || line.slice(len - HASH_SUFFIX_LENGTH, len - 66) !== ',"hash":"' || !line.endsWith('"}')) {
      return `${where}: not an audit record`;
    }
    const seqText = line.slice(7, seqEnd);
    if (lineNo === 1 && part.namedFirstSeq !== undefined && seqText !== String(part.namedFirstSeq)) {
      return `${where}: starts with record ${seqText}, but its name says ${part.namedFirstSeq} (records deleted)`;
    }
    if (firstSeq === null) {
      // the first record present: record 0, or the one right after a signed checkpoint (rotation)
      firstSeq = /^(0|[1-9][0-9]{0,15})$/.test(seqText) ? Number(seqText) : -1;
      if (firstSeq !== 0 && part.namedFirstSeq === undefined) {
        return `${where}: seq ${seqText}, expected 0 (only a rotated part may start after record 0: records deleted)`;
      }
      if (firstSeq > 0) {
        const anchor = signed.get(firstSeq - 1);
        if (anchor === undefined || line.slice(prevAt, prevAt + 64) !== anchor) {
          return `${where}: the log starts at record ${seqText} and no signed checkpoint vouches for the record before it (records deleted)`;
        }
        seq = firstSeq;
        prev = anchor;
      }
    }
    if (seqText !== String(seq)) return `${where}: seq ${seqText}, expected ${seq} (record deleted or reordered)`;
    if (line.slice(prevAt, prevAt + 64) !== prev) return `${where}: prev does not match the previous record's hash (record deleted or reordered)`;
    const hash = line.slice(len - 66, len - 2);
    if (auditHash(prev, `${line.slice(0, len - HASH_SUFFIX_LENGTH)}}`) !== hash) return `${where}: hash mismatch (record edited)`;
    if (signed.has(seq)) seen.set(seq, hash);
    prev = hash;
    seq++;
    return undefined;
  };
  for (const part of parts) {
    let lineNo = 0;
    let carry = "";
    for (const piece of part.pieces) {
      const text = carry === "" ? piece : carry + piece;
      let start = 0;
      for (let end = text.indexOf("\n", start); end !== -1; end = text.indexOf("\n", start)) {
        lineNo++;
        const problem = walk(text.slice(start, end), `${part.name} line ${lineNo}`, part, lineNo);
        if (problem) return { ok: false, problem };
        start = end + 1;
      }
      carry = text.slice(start);
    }
    if (carry !== "") {
      lineNo++;
      const problem = walk(carry, `${part.name} line ${lineNo}`, part, lineNo);
      if (problem) return { ok: false, problem };
    }
  }

  const first: number = firstSeq ?? 0;
  const records = seq - first;
  for (let k = 0; k < checked.length; k++) {
    const c = checked[k];
    if (!c.ok) return { ok: false, problem: c.problem };
    if (c.seq < first) continue; // vouches for a rotated-out record (its signature was checked)
    const where = `${CHECKPOINT_FILE} line ${k + 1}`;
    if (c.seq >= seq) return { ok: false, problem: `${where}: vouches for record ${c.seq} but the log ends at ${seq - 1} (log truncated)` };
    if (seen.get(c.seq) !== c.hash) return { ok: false, problem: `${where}: record ${c.seq} has another hash than the signed one (log rewritten)` };
  }
  const unsealed = lastSeq === null || lastSeq < first ? records : seq - 1 - lastSeq;
  return { ok: true, firstSeq: first, records, checkpoints: lines.length, lastCheckpointSeq: lastSeq, unsealedRecords: unsealed };
}
