// Waiting for a client's TLS ClientHello (RFC 8446 §4.1.2) on an egress connection: inside a CONNECT
// tunnel to 443 (the domain-fronting check, DESIGN §6) and on a redirected TLS connection (the host is
// its SNI). One wait object per connection; the socket listeners are shared module-level functions
// that find it through a symbol on the socket, so a wait allocates no closures (the proxy's hot path).

import type { Duplex } from "node:stream";
import { MAX_CLIENT_HELLO_BYTES, parseClientHello, TLS_HANDSHAKE_RECORD, type ClientHelloResult } from "./client-hello";

const kWait = Symbol("kars.egress.clientHelloWait");

/** What the shared listeners and the timer need of a wait, whatever its context type. */
interface Wait {
  add(chunk: Buffer): void;
  finish(result: ClientHelloResult): void;
  giveUp(why: ClientHelloResult): void;
}

/** A socket whose ClientHello is awaited. */
type Waiting = Duplex & { [kWait]?: Wait };

/**
 * Called once with every byte read so far (`data`, ClientHello first), the parse result (`malformed`
 * for a timeout, an early end or close, or a ClientHello over the size limit) and the caller's context.
 */
export type ClientHelloDone<C> = (data: Buffer, result: ClientHelloResult, context: C) => void;

const EARLY_END: ClientHelloResult = Object.freeze({ kind: "malformed", why: "connection closed before clienthello" });
const TIMED_OUT: ClientHelloResult = Object.freeze({ kind: "malformed", why: "timeout waiting for clienthello" });
const TOO_LARGE: ClientHelloResult = Object.freeze({ kind: "malformed", why: "clienthello too large" });

/** Most bytes kept while waiting: a ClientHello of MAX_CLIENT_HELLO_BYTES in records of 16 KiB, headers included, and some slack. */
const MAX_WAIT_BYTES = MAX_CLIENT_HELLO_BYTES + 1024;

class ClientHelloWait<C> implements Wait {
  private settled = false;
  private readonly timer: NodeJS.Timeout;
  /** Bytes read so far are buf[0, length): the first chunk as it came, then a buffer grown by doubling (no copy of everything per chunk). */
  private buf: Buffer;
  private length: number;
  /** `buf` was allocated here (else it is the socket's first chunk). */
  private owned = false;
  /** Where the first TLS record not yet whole starts (the ones before it are whole and never change). */
  private wholeEnd = 0;
  /** Payload bytes of the whole records so far, and the first 4 of them (the handshake header: type, length). */
  private payload = 0;
  private readonly head: number[] = [];

  constructor(
    private readonly socket: Waiting,
    initial: Buffer,
    private readonly context: C,
    private readonly done: ClientHelloDone<C>,
    timeoutMs: number,
  ) {
    this.buf = initial;
    this.length = initial.length;
    this.timer = setTimeout(timedOut, timeoutMs, this);
  }

  /**
   * Bytes arrived: keep them and look again when that can tell more: the whole records hold the
   * handshake message the header announces, or the bytes are not (or no longer) well-formed (the
   * parser judges those at once), or the size limit is passed. However the client splits its
   * ClientHello (a byte per TCP segment, a byte per TLS record), it is parsed about once.
   */
  add(chunk: Buffer): void {
    if (this.length === 0) {
      this.buf = chunk;
      this.length = chunk.length;
      this.owned = false;
    } else {
      if (!this.owned || this.length + chunk.length > this.buf.length) this.grow(this.length + chunk.length);
      chunk.copy(this.buf, this.length);
      this.length += chunk.length;
    }
    if (this.worthParsing() || this.length > MAX_WAIT_BYTES) this.check();
  }

  /**
   * Walks the TLS records (RFC 8446 §5.1: a 5-byte header, then its length) that became whole since the
   * last call, keeping the handshake header from their payload; true once the payload holds the whole
   * handshake message it announces, or as soon as anything is off (not a handshake record, a bad record
   * header, not a ClientHello, a message over the limit).
   */
  private worthParsing(): boolean {
    const { buf, length, head } = this;
    while (this.wholeEnd < length) {
      const at = this.wholeEnd;
      if (buf[at] !== TLS_HANDSHAKE_RECORD) return true;
      if (length - at < 2) break;
      if (buf[at + 1] !== 0x03) return true;
      if (length - at < 5) break;
      const recordLength = (buf[at + 3] << 8) | buf[at + 4];
      if (recordLength === 0 || recordLength > 16384) return true;
      if (length - at < 5 + recordLength) break;
      for (let i = at + 5; head.length < 4 && i < at + 5 + recordLength; i++) head.push(buf[i]);
      this.payload += recordLength;
      this.wholeEnd = at + 5 + recordLength;
    }
    if (head.length > 0 && head[0] !== 0x01) return true;
    if (head.length < 4) return false;
    const need = 4 + ((head[1] << 16) | (head[2] << 8) | head[3]);
    return need > MAX_CLIENT_HELLO_BYTES || this.payload >= need;
  }

  /** Moves the bytes into a buffer of our own with room for `need` bytes, doubling (a socket's chunk is never written into). */
  private grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(need, Math.min(MAX_WAIT_BYTES + 1, Math.max(2 * this.buf.length, 4096))));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
    this.owned = true;
  }

  check(): void {
    const result = parseClientHello(this.data);
    if (result.kind !== "incomplete") return this.finish(result);
    if (this.length > MAX_WAIT_BYTES) this.finish(TOO_LARGE);
  }

  /** The wait ends without a verdict (timeout, end, close): the bytes' own verdict if they have one, else `why`. */
  giveUp(why: ClientHelloResult): void {
    if (this.settled) return;
    const result = parseClientHello(this.data);
    this.finish(result.kind !== "incomplete" ? result : why);
  }

  /** Every byte read so far. */
  private get data(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  finish(result: ClientHelloResult): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    socket.off("data", helloData);
    socket.off("end", helloEnded);
    socket.off("close", helloEnded);
    socket[kWait] = undefined;
    this.done(this.data, result, this.context);
  }

  get isSettled(): boolean {
    return this.settled;
  }
}

function timedOut(wait: Wait): void {
  wait.giveUp(TIMED_OUT);
}

function helloData(this: Waiting, chunk: Buffer): void {
  this[kWait]?.add(chunk);
}

function helloEnded(this: Waiting): void {
  this[kWait]?.giveUp(EARLY_END);
}

/**
 * Reads the client's ClientHello from `socket` (starting with `initial`, bytes already read) within
 * `timeoutMs`, then calls `done` once — synchronously from the read that completed it, or from the
 * timeout, end or close — with all bytes read and the parse result. The socket is left flowing with
 * no data listener: `done` must attach one (the relay) or destroy the socket before returning.
 * Fails closed: anything but a complete, well-formed ClientHello is reported as `malformed`.
 */
export function readClientHello<C>(socket: Duplex, initial: Buffer, timeoutMs: number, context: C, done: ClientHelloDone<C>): void {
  const waiting = socket as Waiting;
  const wait = new ClientHelloWait(waiting, initial, context, done, timeoutMs);
  waiting[kWait] = wait;
  socket.on("data", helloData);
  socket.on("end", helloEnded);
  socket.on("close", helloEnded);
  if (initial.length > 0) wait.check();
  // a client that ended while the decision and the dial ran: its end event is past
  if (!wait.isSettled && socket.readableEnded) wait.giveUp(EARLY_END);
  if (!wait.isSettled) socket.resume();
}
