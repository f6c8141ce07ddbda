import { hash as oneShotHash } from "node:crypto";
import { Worker } from "node:worker_threads";

/**
 * Index (0-based, among the lines of `buf[from, to)`) of the first line whose `hash` field is not the
 * audit chain hash of that line (audit-log.ts auditHash): hex SHA-256 of the line's own `prev` field,
 * "\n", and the line's bytes before `,"hash":"` followed by "}"; -1 when every line's hash holds.
 * `buf[from, to)` is whole lines, each ending with "\n". A line too short to hold a prev and a hash, or
 * without `,"prev":"`, counts as a mismatch (fails closed; verify-audit names its real problem).
 * Together with verify-audit's check that each `prev` field is the previous line's `hash` field, this
 * is the whole chain check; every line is independent of the others, so pieces of a log can be checked
 * on another thread.
 * Self-contained on purpose (only its parameters and the global Buffer): its source text is also run
 * in the hashing worker. `hash` is node:crypto's one-shot hash; `scratch` is reused between calls.
 */
/* istanbul ignore next -- its source also runs in the worker, where coverage counters do not exist */
export function firstHashMismatch(hash: typeof oneShotHash, buf: Buffer, from: number, to: number, scratch: HashScratch): number {
  const SUFFIX = 75; // HASH_SUFFIX_LENGTH: ,"hash":"<64 hex>"}
  const PREV = Buffer.from(',"prev":"');
  const TS = Buffer.from(',"ts":"');
  let index = 0;
  for (let start = from; start < to; index++) {
    const end = buf.indexOf(0x0a, start);
    if (end === -1 || end >= to) return index;
    // the first `,"prev":"` (as verify-audit's walk finds it): in every record the log writes, right
    // after `,"ts":"<24 characters without a quote>"`, checked in place; otherwise searched for (a
    // native search per line costs more than the hash's own work)
    let seqEnd = start + 7;
    while (seqEnd < end && buf[seqEnd] >= 0x30 && buf[seqEnd] <= 0x39) seqEnd++;
    let prevAt = -1;
    if (buf[seqEnd + 31] === 0x22) {
      prevAt = seqEnd + 41;
      for (let i = 0; i < 7; i++) if (buf[seqEnd + i] !== TS[i]) prevAt = -1;
      for (let i = 0; i < 9; i++) if (buf[seqEnd + 32 + i] !== PREV[i]) prevAt = -1;
      for (let i = seqEnd + 7; i < seqEnd + 31; i++) if (buf[i] === 0x22) prevAt = -1;
    }
    if (prevAt === -1) prevAt = buf.indexOf(PREV, start) + 9;
    const bodyLength = end - start - SUFFIX;
    if (prevAt < 9 || prevAt + 64 > end - SUFFIX || bodyLength < 0) return index;
    // input: prev (64) "\n" body "}", built in the scratch buffer; a view per input length is kept
    const length = 66 + bodyLength;
    if (length > scratch.buf.length) {
      scratch.buf = Buffer.allocUnsafe(length * 2);
      scratch.views = [];
    }
    const input = scratch.buf;
    buf.copy(input, 0, prevAt, prevAt + 64);
    input[64] = 0x0a;
    buf.copy(input, 65, start, start + bodyLength);
    input[65 + bodyLength] = 0x7d;
    let view = scratch.views[length];
    if (view === undefined) view = scratch.views[length] = input.subarray(0, length);
    const computed = hash("sha256", view, "hex");
    for (let i = 0, at = end - 66; i < 64; i++) if (buf[at + i] !== computed.charCodeAt(i)) return index;
    start = end + 1;
  }
  return -1;
}

/** The buffer firstHashMismatch builds each hash input in, and its views by length. */
export interface HashScratch {
  buf: Buffer;
  views: Buffer[];
}

/** A new HashScratch (records are ~400 bytes; it grows for longer lines). */
export function newHashScratch(): HashScratch {
  return { buf: Buffer.allocUnsafe(4096), views: [] };
}

/** Where a line whose hash does not hold is: the submission it came in and its index among its lines. */
export interface HashMismatch {
  piece: number;
  line: number;
}

/**
 * Checks the hashes of a log's pieces (firstHashMismatch) as they are submitted, and reports the first
 * mismatch in submission order. With `useWorker`, pieces (which must then live in SharedArrayBuffer
 * memory: allocPiece) are hashed on one worker thread while the caller walks the chain on its own,
 * and the caller hashes a piece itself whenever HELP_BACKLOG pieces are already waiting for the
 * worker: verification uses two cores. Synchronous for the caller: it blocks (Atomics.wait) only in
 * finish(). Fails closed: a worker that does not answer within
 * WORKER_TIMEOUT_MS (it could not start, or died), or that says it failed, is stopped and every piece
 * it has not reported is hashed on the calling thread, so a verdict never depends on a worker having run.
 */
export class HashChecker {
  /** Pieces posted to the worker and not yet reported, in the order posted. */
  private inFlight: { piece: number; buf: Buffer; from: number; to: number }[] = [];
  /** Pieces the worker has reported and that were taken off inFlight. */
  private acknowledged = 0;
  /** [0] pieces reported by the worker, [1] first bad piece (or NONE), [2] its bad line, [3] 1 once the worker failed. */
  private readonly state: Int32Array;
  private worker: Worker | undefined;
  private submitted = 0;
  private first: HashMismatch | undefined;
  private readonly scratch = newHashScratch();
  private readonly timeoutMs: number;
  /** Pieces hashed by the worker and on this thread (for tests and benchmarks). */
  readonly hashed = { byWorker: 0, here: 0 };

  /**
   * `useWorker`: hash on a worker thread (pieces from allocPiece). `worker` overrides the worker's
   * source and how long to wait for it (ms): tests of the fallback give one that never answers.
   */
  constructor(useWorker: boolean, worker: { source: string; timeoutMs: number } = { source: WORKER_SOURCE, timeoutMs: WORKER_TIMEOUT_MS }) {
    this.state = new Int32Array(new SharedArrayBuffer(16));
    this.state[1] = NONE;
    this.timeoutMs = worker.timeoutMs;
    if (useWorker) {
      try {
        this.worker = new Worker(worker.source, { eval: true, workerData: { state: this.state } });
        this.worker.unref();
        this.worker.on("error", () => {}); // a dead worker is noticed by its silence (timeout), then replaced
      } catch {
        this.worker = undefined;
      }
    }
  }

  /** A buffer for a piece of `bytes`, in memory the worker can read when there is one. */
  allocPiece(bytes: number): Buffer {
    return this.worker ? Buffer.from(new SharedArrayBuffer(bytes)) : Buffer.allocUnsafe(bytes);
  }

  /** Hashes the whole lines of buf[from, to) (now, or on the worker); `buf` must not change afterwards. */
  submit(buf: Buffer, from: number, to: number): void {
    const piece = this.submitted++;
    if (this.first !== undefined) return; // an earlier piece already has a mismatch
    if (this.worker) this.collect(Atomics.load(this.state, 0));
    if (!this.worker || this.inFlight.length >= HELP_BACKLOG) {
      // no worker, or it is behind: this thread hashes the piece (keeps both threads busy)
      this.hashHere(piece, buf, from, to);
      return;
    }
    this.inFlight.push({ piece, buf, from, to });
    this.worker.postMessage({ piece, buf: buf.buffer, offset: buf.byteOffset + from, length: to - from });
  }

  /** Waits for every submitted piece; returns the first mismatch, or undefined when every hash holds. Stops the worker. */
  finish(): HashMismatch | undefined {
    while (this.inFlight.length > 0 && this.worker) this.waitForWorker();
    this.stopWorker();
    for (const p of this.inFlight) this.hashHere(p.piece, p.buf, p.from, p.to); // the worker gave up on these
    this.inFlight = [];
    return this.first;
  }

  /** Stops the worker (when verification ends early); safe to call more than once. */
  stopWorker(): void {
    if (this.worker) void this.worker.terminate().catch(() => {});
    this.worker = undefined;
  }

  private hashHere(piece: number, buf: Buffer, from: number, to: number): void {
    if (this.first !== undefined && this.first.piece < piece) return;
    this.hashed.here++;
    const line = firstHashMismatch(oneShotHash, buf, from, to, this.scratch);
    if (line >= 0 && (this.first === undefined || piece < this.first.piece)) this.first = { piece, line };
  }

  /** Blocks until the worker reports another piece (or says it failed, or times out: then it is given up). */
  private waitForWorker(): void {
    const reported = Atomics.load(this.state, 0);
    const before = this.inFlight.length;
    this.collect(reported);
    if (this.inFlight.length < before) return;
    const timedOut = Atomics.load(this.state, 3) === 0 && Atomics.wait(this.state, 0, reported, this.timeoutMs) === "timed-out";
    this.collect(Atomics.load(this.state, 0));
    if (Atomics.load(this.state, 3) === 1 || (timedOut && this.inFlight.length === before)) this.stopWorker();
  }

  /** Takes in the worker's reports: it reports pieces in the order posted, `reported` of them so far. */
  private collect(reported: number): void {
    const done = reported - this.acknowledged;
    if (done > 0) {
      this.inFlight.splice(0, done);
      this.hashed.byWorker += done;
      this.acknowledged = reported;
    }
    const bad = Atomics.load(this.state, 1);
    if (bad !== NONE && (this.first === undefined || bad < this.first.piece)) this.first = { piece: bad, line: Atomics.load(this.state, 2) };
  }
}

/** No mismatch (state[1]). */
const NONE = 0x7fffffff;
/** Pieces the worker may have waiting before the calling thread hashes the next one itself (so at most this many are held for it). */
const HELP_BACKLOG = 2;
/** How long the caller waits for the worker to report one piece before hashing without it (ms). */
const WORKER_TIMEOUT_MS = 10_000;

/**
 * The worker: hashes each piece it is sent (firstHashMismatch, the same function's source) and reports
 * in state: the first bad piece and line, then the count of pieces done (notified). Pieces come in
 * submission order and are reported in it. When it cannot (a code instrumenter's counters in the
 * function's source, say), it says so in state[3] at once, and the caller hashes without it.
 */
const WORKER_SOURCE = `
"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const state = workerData.state;
const failed = () => {
  Atomics.store(state, 3, 1);
  Atomics.notify(state, 0);
};
try {
  const { hash } = require("node:crypto");
  const firstHashMismatch = ${firstHashMismatch.toString()};
  const scratch = { buf: Buffer.allocUnsafe(4096), views: [] };
  parentPort.on("message", m => {
    try {
      const line = firstHashMismatch(hash, Buffer.from(m.buf, m.offset, m.length), 0, m.length, scratch);
      if (line >= 0 && m.piece < Atomics.load(state, 1)) {
        Atomics.store(state, 2, line);
        Atomics.store(state, 1, m.piece);
      }
      Atomics.add(state, 0, 1);
      Atomics.notify(state, 0);
    } catch {
      failed();
    }
  });
} catch {
  failed();
}
`;
