import type { KeyObject } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { isUtf8 } from "node:buffer";
import { AUDIT_FILE, auditFiles, CHECKPOINT_FILE, GENESIS, HASH_SUFFIX_LENGTH, rotatedFirstSeq } from "./audit-log";
import { isCheckpointSigned, type AuditCheckpoint } from "./checkpoint";
import { HashChecker } from "./hash-check";

/**
 * Outcome of verifying an audit directory. `firstSeq` is the first record present (0, or later when
 * older parts were rotated out); `records` counts the records present.
 */
export type AuditVerdict =
  | { ok: true; firstSeq: number; records: number; checkpoints: number; lastCheckpointSeq: number | null; unsealedRecords: number }
  | { ok: false; problem: string };

/**
 * One file of the log, read as consecutive pieces of whole lines (each ending with "\n"; a last line
 * without one gets it) into buffers from `alloc`; a rotated part's name says the seq of its first
 * record (`namedFirstSeq`).
 */
interface LogPart {
  name: string;
  namedFirstSeq?: number;
  pieces(alloc: (bytes: number) => Buffer): Iterable<Buffer>;
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
  const bytes = Buffer.from(logText === "" || logText.endsWith("\n") ? logText : `${logText}\n`);
  return verifyAudit([{ name: AUDIT_FILE, pieces: () => [bytes] }], checkpointText, publicKey, false);
}

/** Logs from this size on (bytes, all files) have their hashes checked on a second thread by default. */
const WORKER_MIN_BYTES = 16 * 1024 * 1024;

/**
 * verifyAuditLog on an audit directory: the rotated parts (audit-<seq>.jsonl, in order) then
 * audit.jsonl, with checkpoints.jsonl, each log file read in pieces of about `pieceBytes` (default
 * 8 MiB): memory stays flat whatever the log's size (a whole-file read fails past 2 GiB). The hashes of
 * a log of 16 MiB or more are checked on a worker thread (HashChecker) while this thread checks the
 * rest; `options.worker` forces that on or off. A line longer than `options.maxLineBytes` (default
 * 64 MiB; records are ~400 bytes) is refused unread. Synchronous. Throws when audit.jsonl is missing
 * or unreadable.
 */
export function verifyAuditDir(dir: string, publicKey: KeyObject, pieceBytes = 8 * 1024 * 1024, options: { worker?: boolean; maxLineBytes?: number } = {}): AuditVerdict {
  const cpFile = path.join(dir, CHECKPOINT_FILE);
  const checkpoints = fs.existsSync(cpFile) ? fs.readFileSync(cpFile, "utf8") : "";
  if (!fs.existsSync(path.join(dir, AUDIT_FILE))) throw new Error(`${path.join(dir, AUDIT_FILE)}: no such file`);
  const names = auditFiles(dir);
  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  const worker = options.worker ?? names.reduce((sum, name) => sum + fileSize(path.join(dir, name)), 0) >= WORKER_MIN_BYTES;
  const parts = names.map(name => ({ name, namedFirstSeq: rotatedFirstSeq(name), pieces: (alloc: (bytes: number) => Buffer) => readPieces(path.join(dir, name), pieceBytes, alloc, maxLineBytes) }));
  return verifyAudit(parts, checkpoints, publicKey, worker);
}

/** A file's size in bytes, 0 when it cannot be read (then reading it reports why). */
function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
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

/** Longest line readPieces reads (bytes): records are ~400 bytes; a longer line is not one. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** Thrown by readPieces at a line longer than its limit, after every line before it was yielded. */
class LineTooLongError extends Error {}

/**
 * A file's whole lines, in pieces of about `bytes` (a line the read cut is carried into the next
 * piece; a last line without "\n" gets one), each in a fresh buffer from `alloc`. Throws
 * LineTooLongError at a line longer than `maxLineBytes` (fails closed: the rest of the file is never
 * taken as checked).
 */
function* readPieces(file: string, bytes: number, alloc: (bytes: number) => Buffer, maxLineBytes: number): Generator<Buffer> {
  const fd = fs.openSync(file, "r");
  try {
    let carry: Buffer | undefined; // the start of a line the previous read cut
    for (;;) {
      const carried = carry?.length ?? 0;
      const buf = alloc(carried + Math.max(bytes, carried)); // grows geometrically for a long line
      if (carry) carry.copy(buf, 0);
      const n = fs.readSync(fd, buf, carried, buf.length - carried, null);
      const filled = carried + n;
      if (n === 0) {
        if (filled > 0) {
          buf[filled] = 0x0a; // the buffer is longer than what it holds
          yield buf.subarray(0, filled + 1);
        }
        return;
      }
      const lastNewline = buf.lastIndexOf(0x0a, filled - 1);
      if (lastNewline === -1) {
        if (filled > maxLineBytes) throw new LineTooLongError(`longer than ${maxLineBytes} bytes`);
        carry = buf.subarray(0, filled);
        continue;
      }
      carry = lastNewline + 1 < filled ? buf.subarray(lastNewline + 1, filled) : undefined;
      yield buf.subarray(0, lastNewline + 1);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A checkpoint line parsed and its signature checked, or the problem with it. */
type CheckedCheckpoint = { ok: true; seq: number; hash: string } | { ok: false; problem: string };

/** The bytes of `{"seq":`, `,"ts":"`, `,"prev":"` and `,"hash":"`, as records hold them. */
const SEQ_MARK = Buffer.from('{"seq":');
const TS_MARK = Buffer.from(',"ts":"');
const PREV_MARK = Buffer.from(',"prev":"');
const HASH_MARK = Buffer.from(',"hash":"');

/** Whether `buf` holds `mark` at `at` (compared in this function: a native call costs more than 9 bytes). */
function holds(buf: Buffer, at: number, mark: Buffer): boolean {
  for (let i = 0; i < mark.length; i++) if (buf[at + i] !== mark[i]) return false;
  return true;
}

/** Whether the 64 bytes of `a` at `aAt` are those of `b` at `bAt` (a hash in hex). */
function sameHash(a: Buffer, aAt: number, b: Buffer, bAt: number): boolean {
  for (let i = 0; i < 64; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}

/**
 * Offset of the first `,"prev":"` in `buf` from `seqEnd` (the end of a record's seq), or -1. In every
 * record the log writes it follows `,"ts":"<24 characters without a quote>"` and is checked there in
 * place (a native search per record costs more than the rest of its walk); otherwise it is searched
 * for. hash-check.ts finds it by the same rule.
 */
function firstPrevMark(buf: Buffer, seqEnd: number): number {
  if (buf[seqEnd + 31] === 0x22 && holds(buf, seqEnd, TS_MARK) && holds(buf, seqEnd + 32, PREV_MARK)) {
    let quoteFree = true;
    for (let i = seqEnd + 7; i < seqEnd + 31; i++) if (buf[i] === 0x22) quoteFree = false;
    if (quoteFree) return seqEnd + 32;
  }
  return buf.indexOf(PREV_MARK, seqEnd);
}

/**
 * Walks the hash chain's structure record by record (DESIGN §6), on the log's bytes, piece by piece:
 * per record its layout, its seq, and its `prev` against the previous record's `hash` field (the hash
 * fields themselves are checked against the records by hash-check.ts). Nothing is decoded but for a
 * checkpointed hash or a problem's message. Its methods are small and called per piece, so the hot
 * loop is optimised once and stays so (one large function's loop was deoptimised at each piece
 * boundary, a third of the records then running unoptimised).
 */
class ChainWalker {
  /** Where the previous record's hash is (in hex): prevBuf at prevAt. */
  private prevBuf: Buffer = Buffer.from(GENESIS, "latin1");
  private prevAt = 0;
  /** The seq the next record must have. */
  seq = 0;
  /** The first record present (null before any). */
  firstSeq: number | null = null;
  /** Lines read in the current file. */
  lineNo = 0;
  /** The first problem, with its place; undefined while the chain holds. */
  problem: string | undefined;
  /** The line (in its file) of `problem`. */
  problemLineNo: number | undefined;

  constructor(
    /** seq → hash a valid checkpoint vouches for */
    private readonly signed: Map<number, string>,
    /** seq → the log's hash there, for those seqs (filled here) */
    private readonly seen: Map<number, string>,
  ) {}

  /** Walks the lines of buf[from, to) (each ends with "\n"). Stops at the first problem (then in `problem`). */
  lines(buf: Buffer, from: number, to: number, part: LogPart): void {
    for (let start = from; start < to; ) {
      const end = buf.indexOf(0x0a, start);
      this.lineNo++;
      const problem = this.record(buf, start, end, part, this.lineNo);
      if (problem) {
        this.problem = `${part.name} line ${this.lineNo}: ${problem}`;
        this.problemLineNo = this.lineNo;
        return;
      }
      start = end + 1;
    }
  }

  /** The problem with the record buf[start, end) (without its place, built only for a problem), or undefined. */
  private record(buf: Buffer, start: number, end: number, part: LogPart, lineNo: number): string | undefined {
    // {"seq":N,"ts":"…","prev":"<64 hex>","event":{…},"hash":"<64 hex>"}: read by position, the event is
    // not parsed (the hash covers every byte of it)
    const seqAt = start + 7;
    let seqEnd = seqAt;
    while (seqEnd < end && buf[seqEnd] >= 0x30 && buf[seqEnd] <= 0x39) seqEnd++;
    const prevMark = firstPrevMark(buf, seqEnd);
    const prevAt = prevMark + 9;
    const hashAt = end - 66;
    if (!holds(buf, start, SEQ_MARK) || seqEnd === seqAt || buf[seqEnd] !== 0x2c || prevMark === -1 || prevAt + 64 > end - HASH_SUFFIX_LENGTH || !holds(buf, end - HASH_SUFFIX_LENGTH, HASH_MARK) || buf[end - 2] !== 0x22 || buf[end - 1] !== 0x7d) {
      return `not an audit record`;
    }
    const digits = seqEnd - seqAt;
    // canonical: no leading zero, at most 15 digits (exact as a number); anything else matches no seq
    let seq = digits < 1 || digits > 15 || (digits > 1 && buf[seqAt] === 0x30) ? -1 : 0;
    for (let i = seqAt; i < seqEnd && seq >= 0; i++) seq = seq * 10 + buf[i] - 0x30;
    if (lineNo === 1 && part.namedFirstSeq !== undefined && seq !== part.namedFirstSeq) {
      return `starts with record ${buf.toString("latin1", seqAt, seqEnd)}, but its name says ${part.namedFirstSeq} (records deleted)`;
    }
    if (this.firstSeq === null) {
      // the first record present: record 0, or the one right after a signed checkpoint (rotation)
      this.firstSeq = seq;
      if (seq !== 0 && part.namedFirstSeq === undefined) {
        return `seq ${buf.toString("latin1", seqAt, seqEnd)}, expected 0 (only a rotated part may start after record 0: records deleted)`;
      }
      if (seq > 0) {
        const anchor = this.signed.get(seq - 1);
        if (anchor === undefined || buf.toString("latin1", prevAt, prevAt + 64) !== anchor) {
          return `the log starts at record ${seq} and no signed checkpoint vouches for the record before it (records deleted)`;
        }
        this.seq = seq;
        this.prevBuf = Buffer.from(anchor, "latin1");
        this.prevAt = 0;
      }
    }
    if (seq !== this.seq) return `seq ${buf.toString("latin1", seqAt, seqEnd)}, expected ${this.seq} (record deleted or reordered)`;
    if (!sameHash(buf, prevAt, this.prevBuf, this.prevAt)) return `prev does not match the previous record's hash (record deleted or reordered)`;
    if (this.signed.has(seq)) this.seen.set(seq, buf.toString("latin1", hashAt, hashAt + 64));
    this.prevBuf = buf; // pieces are never reused: the reference stays valid
    this.prevAt = hashAt;
    this.seq++;
    return undefined;
  }
}

/**
 * The verification over a log given as files of consecutive text pieces. Checkpoints are read first,
 * so that only the hashes they name are kept while the chain is walked: memory is one record plus one
 * hash per checkpoint, not one per record.
 */
function verifyAudit(parts: Iterable<LogPart>, checkpointText: string, publicKey: KeyObject, useWorker: boolean): AuditVerdict {
  const hashes = new HashChecker(useWorker);
  try {
    return verifyWith(hashes, parts, checkpointText, publicKey);
  } finally {
    hashes.stopWorker();
  }
}

/** A problem found by the walk: the piece it is in (an index into the submitted pieces), its line, and the message. */
interface WalkProblem {
  piece: number;
  lineNo: number;
  text: string;
}

/**
 * Reads one file of the log piece by piece: each piece's hashes go to `hashes` (noted in
 * `submitted`: its file and first line), its structure to `chain`. Returns the first problem the walk
 * finds, or undefined. Throws LineTooLongError from readPieces.
 */
function walkPart(part: LogPart, chain: ChainWalker, hashes: HashChecker, submitted: { file: string; firstLineNo: number }[]): WalkProblem | undefined {
  for (const piece of part.pieces(bytes => hashes.allocPiece(bytes))) {
    // bytes that are not UTF-8 are refused (fails closed): the writer only writes UTF-8, and a text
    // decoder would read them back as U+FFFD, the same text as a record that held one
    const good = isUtf8(piece) ? piece.length : firstNonUtf8Line(piece);
    submitted.push({ file: part.name, firstLineNo: chain.lineNo + 1 });
    hashes.submit(piece, 0, good);
    chain.lines(piece, 0, good, part);
    if (!chain.problem && good < piece.length) chain.problem = `${part.name} line ${chain.lineNo + 1}: bytes that are not UTF-8 (record edited)`;
    if (chain.problem) return { piece: submitted.length - 1, lineNo: chain.problemLineNo ?? chain.lineNo + 1, text: chain.problem };
  }
  return undefined;
}

/** verifyAudit's work, the record hashes checked by `hashes`. */
function verifyWith(hashes: HashChecker, parts: Iterable<LogPart>, checkpointText: string, publicKey: KeyObject): AuditVerdict {
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

  // the chain's structure is walked here while the hashes are checked by `hashes` (perhaps on another
  // thread); the verdict names whichever problem comes first in the log
  const chain = new ChainWalker(signed, seen);
  const submitted: { file: string; firstLineNo: number }[] = []; // per piece given to `hashes`
  let problem: WalkProblem | undefined;
  for (const part of parts) {
    try {
      problem = walkPart(part, chain, hashes, submitted);
    } catch (err) {
      if (!(err instanceof LineTooLongError)) throw err;
      problem = { piece: submitted.length, lineNo: chain.lineNo + 1, text: `${part.name} line ${chain.lineNo + 1}: ${err.message} (not an audit record)` };
    }
    if (problem) break;
    chain.lineNo = 0;
  }
  const mismatch = hashes.finish();
  if (mismatch) {
    const at = submitted[mismatch.piece];
    const lineNo = at.firstLineNo + mismatch.line;
    if (!problem || mismatch.piece < problem.piece || (mismatch.piece === problem.piece && lineNo < problem.lineNo)) {
      return { ok: false, problem: `${at.file} line ${lineNo}: hash mismatch (record edited)` };
    }
  }
  if (problem) return { ok: false, problem: problem.text };
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
