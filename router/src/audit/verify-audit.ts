import { hash as oneShotHash, type KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isUtf8 } from "node:buffer";
import { AUDIT_FILE, auditFiles, CHECKPOINT_FILE, GENESIS, HASH_SUFFIX_LENGTH, rotatedFirstSeq } from "./audit-log";
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

/**
 * Thrown by readPieces when a file holds bytes that are not UTF-8. The writer only ever writes
 * UTF-8, and decoding would turn such bytes into U+FFFD — the same text as a record that held a
 * U+FFFD, so an edit that a text comparison cannot see. Everything before the line that holds them
 * has been yielded.
 */
class NotUtf8Error extends Error {}

/** Length of the prefix of `b` that ends on a UTF-8 sequence boundary (a sequence cut by the read is left out). */
function completeUtf8Length(b: Buffer): number {
  let i = b.length - 1;
  let continuation = 0;
  while (i >= 0 && continuation < 3 && (b[i] & 0xc0) === 0x80) {
    i--;
    continuation++;
  }
  if (i < 0) return b.length;
  const lead = b[i];
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return b.length - i >= need ? b.length : i;
}

/** Offset of the first line of `b` (a line ends after "\n") that is not UTF-8. */
function firstNonUtf8Line(b: Buffer): number {
  let start = 0;
  for (;;) {
    const nl = b.indexOf(0x0a, start);
    const end = nl < 0 ? b.length : nl + 1;
    if (!isUtf8(b.subarray(start, end))) return start;
    if (nl < 0) return b.length;
    start = end;
  }
}

/**
 * A file's text in pieces of about `bytes` (UTF-8 sequences are never split between pieces). Throws
 * NotUtf8Error at the first line holding bytes that are not UTF-8 (fails closed: they are never
 * decoded into U+FFFD).
 */
function* readPieces(file: string, bytes: number): Generator<string> {
  const fd = fs.openSync(file, "r");
  try {
    const buffer = Buffer.alloc(bytes);
    let pending: Buffer | undefined; // a sequence cut by the previous read
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, bytes, null);
      if (n === 0) break;
      const chunk = pending ? Buffer.concat([pending, buffer.subarray(0, n)]) : buffer.subarray(0, n);
      const complete = completeUtf8Length(chunk);
      pending = complete < chunk.length ? Buffer.from(chunk.subarray(complete)) : undefined;
      const body = chunk.subarray(0, complete);
      if (!isUtf8(body)) {
        const bad = firstNonUtf8Line(body);
        if (bad > 0) yield body.toString("utf8", 0, bad);
        throw new NotUtf8Error();
      }
      yield body.toString("utf8");
    }
    if (pending) throw new NotUtf8Error(); // the file ends inside a sequence
  } finally {
    fs.closeSync(fd);
  }
}

/** A checkpoint line parsed and its signature checked, or the problem with it. */
type CheckedCheckpoint = { ok: true; seq: number; hash: string } | { ok: false; problem: string };

/**
 * Walks the hash chain record by record (DESIGN §6), text piece by text piece: per record, the seq,
 * the link to the previous hash and the hash itself. Its methods are small and called per piece, so
 * the hot loop is optimised once and stays so (one large function's loop was deoptimised at each
 * piece boundary, a third of the records then running unoptimised).
 */
class ChainWalker {
  /** The previous record's hash. */
  prev = GENESIS;
  /** The seq the next record must have. */
  seq = 0;
  /** The first record present (null before any). */
  firstSeq: number | null = null;
  /** Lines read in the current file. */
  lineNo = 0;
  /** The first problem, with its place; undefined while the chain holds. */
  problem: string | undefined;

  constructor(
    /** seq → hash a valid checkpoint vouches for */
    private readonly signed: Map<number, string>,
    /** seq → the log's hash there, for those seqs (filled here) */
    private readonly seen: Map<number, string>,
  ) {}

  /**
   * Walks every complete line of `text` (a line ends with "\n"); returns the offset after the last
   * one. Stops at the first problem (then in `problem`).
   */
  lines(text: string, part: LogPart): number {
    let start = 0;
    for (let end = text.indexOf("\n", start); end !== -1; end = text.indexOf("\n", start)) {
      this.lineNo++;
      const problem = this.record(text.slice(start, end), part, this.lineNo);
      if (problem) {
        this.problem = `${part.name} line ${this.lineNo}: ${problem}`;
        return start;
      }
      start = end + 1;
    }
    return start;
  }

  /** The problem with one record (without its place, which is built only for a problem), or undefined. */
  private record(line: string, part: LogPart, lineNo: number): string | undefined {
    // {"seq":N,"ts":"…","prev":"<64 hex>","event":{…},"hash":"<64 hex>"}: read by position, the event is
    // not parsed (the hash covers every byte of it); plain string ops keep this above 500k records/s
    const seqEnd = line.indexOf(",", 7);
    const prevAt = line.indexOf(',"prev":"', seqEnd) + 9;
    const len = line.length;
    if (!line.startsWith('{"seq":') || seqEnd < 0 || prevAt < 9 || len < prevAt + 64 + HASH_SUFFIX_LENGTH || line.slice(len - HASH_SUFFIX_LENGTH, len - 66) !== ',"hash":"' || !line.endsWith('"}')) {
      return `not an audit record`;
    }
    const seqText = line.slice(7, seqEnd);
    if (lineNo === 1 && part.namedFirstSeq !== undefined && seqText !== String(part.namedFirstSeq)) {
      return `starts with record ${seqText}, but its name says ${part.namedFirstSeq} (records deleted)`;
    }
    if (this.firstSeq === null) {
      // the first record present: record 0, or the one right after a signed checkpoint (rotation)
      this.firstSeq = /^(0|[1-9][0-9]{0,15})$/.test(seqText) ? Number(seqText) : -1;
      if (this.firstSeq !== 0 && part.namedFirstSeq === undefined) {
        return `seq ${seqText}, expected 0 (only a rotated part may start after record 0: records deleted)`;
      }
      if (this.firstSeq > 0) {
        const anchor = this.signed.get(this.firstSeq - 1);
        if (anchor === undefined || line.slice(prevAt, prevAt + 64) !== anchor) {
          return `the log starts at record ${seqText} and no signed checkpoint vouches for the record before it (records deleted)`;
        }
        this.seq = this.firstSeq;
        this.prev = anchor;
      }
    }
    if (seqText !== String(this.seq)) return `seq ${seqText}, expected ${this.seq} (record deleted or reordered)`;
    if (line.slice(prevAt, prevAt + 64) !== this.prev) return `prev does not match the previous record's hash (record deleted or reordered)`;
    const hash = line.slice(len - 66, len - 2);
    // auditHash (audit-log.ts) with its input built in one step: sha256(prev + "\n" + the line before ,"hash" + "}")
    if (oneShotHash("sha256", `${this.prev}\n${line.slice(0, len - HASH_SUFFIX_LENGTH)}}`, "hex") !== hash) return `hash mismatch (record edited)`;
    if (this.signed.has(this.seq)) this.seen.set(this.seq, hash);
    this.prev = hash;
    this.seq++;
    return undefined;
  }
}

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

  const chain = new ChainWalker(signed, seen);
  for (const part of parts) {
    let carry = "";
    try {
      for (const piece of part.pieces) {
        const text = carry === "" ? piece : carry + piece;
        const rest = chain.lines(text, part);
        if (chain.problem) return { ok: false, problem: chain.problem };
        carry = text.slice(rest);
      }
    } catch (err) {
      if (err instanceof NotUtf8Error) return { ok: false, problem: `${part.name} line ${chain.lineNo + 1}: bytes that are not UTF-8 (record edited)` };
      throw err;
    }
    if (carry !== "") {
      chain.lines(`${carry}\n`, part);
      if (chain.problem) return { ok: false, problem: chain.problem };
    }
    chain.lineNo = 0;
  }
  const { seq, firstSeq } = chain;

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
