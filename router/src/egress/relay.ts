// The byte relay of an established egress tunnel (CONNECT or redirected TLS, DESIGN §6): bytes both
// ways with backpressure until either side ends or closes, or the tunnel's lifetime is over.
// One Relay object per tunnel; the sockets' listeners are shared module-level functions that find it
// through a symbol on the socket, so a tunnel allocates no closures (the proxy's hot path: fewer
// objects per tunnel, less garbage to collect).

import type { Socket } from "node:net";
import type { Duplex } from "node:stream";

const kRelay = Symbol("kars.egress.relay");

/** A socket taking part in a relay. */
type RelaySide = Duplex & { [kRelay]?: Relay };

/**
 * Called once when a relay ends, with the bytes written to and read from the destination (bytes,
 * from the upstream socket's own counters).
 */
export type RelayDone = (bytesUpstream: number, bytesDownstream: number) => void;

/** Default idle time (ms) of a tunnel whose client has ended (half-closed) while its destination still answers (see relay). */
export const HALF_CLOSED_IDLE_MS = 60_000;

class Relay {
  private done = false;
  /** The client ended first: the destination was sent a FIN after the client's bytes, and its answer still flows; ends when idle this long. */
  private halfClosed: NodeJS.Timeout | null = null;
  /** A 'drain' listener is on the client / the upstream (added the first time a write to it backs up). */
  private clientDrainWatched = false;
  private upstreamDrainWatched = false;
  private readonly lifetime: NodeJS.Timeout;

  constructor(
    readonly client: Duplex,
    readonly upstream: Socket,
    lifetimeMs: number,
    private readonly onDone: RelayDone,
    private readonly halfClosedIdleMs: number,
  ) {
    this.lifetime = setTimeout(finishRelay, lifetimeMs, this);
    this.lifetime.unref();
  }

  /** Makes sure a full `side` resumes the other side when it drains (one listener per side, added on first need). */
  watchDrain(side: Duplex): void {
    if (side === this.client) {
      if (this.clientDrainWatched) return;
      this.clientDrainWatched = true;
    } else {
      if (this.upstreamDrainWatched) return;
      this.upstreamDrainWatched = true;
    }
    side.on("drain", relayDrain);
  }

  /** The other side of `side`. */
  other(side: Duplex): Duplex {
    return side === this.client ? this.upstream : this.client;
  }

  /** Ends the tunnel (once): both sockets destroyed, the timers cleared, onDone called. */
  finish(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.lifetime);
    if (this.halfClosed !== null) clearTimeout(this.halfClosed);
    const { client, upstream } = this;
    const written = upstream.bytesWritten;
    const read = upstream.bytesRead;
    client.destroy();
    upstream.destroy();
    this.onDone(written, read);
  }

  /**
   * The client ended (its FIN) while the destination has not: a half-close, as a client does that
   * sends its whole request, shuts down its write side and reads the answer (`nc -N`, HTTP/1.0
   * clients). The destination gets the client's bytes, then a FIN of its own (shutdown(2) of the
   * write side), and its answer is still relayed until it ends too — or sends nothing for
   * `halfClosedIdleMs`, which ends the tunnel (a destination that ignores the FIN holds no slot for long).
   */
  clientEnded(): void {
    if (this.halfClosed !== null || this.done) return;
    this.halfClosed = setTimeout(finishRelay, this.halfClosedIdleMs, this);
    this.halfClosed.unref();
    this.upstream.end();
  }

  /** The destination sent bytes: a half-closed tunnel is not idle. */
  touched(): void {
    this.halfClosed?.refresh();
  }

  /**
   * One side ended: the tunnel ends once the bytes already read from it have reached `to` (as
   * Squid's tunnels do; a client's end is first relayed as a half-close, see clientEnded). Sockets are half-open (no automatic shutdown(2) on FIN), so the close is a
   * plain close(2) — a loopback shutdown costs as much as a write.
   */
  endAfterFlush(to: Duplex): void {
    if (to.writableLength === 0) return this.finish();
    to.on("finish", relayGone);
    to.end();
  }
}

function finishRelay(relay: Relay): void {
  relay.finish();
}

/** 'close' and (on the flushed side) 'finish' listener: the tunnel is over. */
function relayGone(this: RelaySide): void {
  this[kRelay]?.finish();
}

/** 'end' listener: this side will send nothing more (the client's end is relayed as a half-close while the destination goes on). */
function relayEnded(this: RelaySide): void {
  const relay = this[kRelay];
  if (!relay) return;
  if (this === relay.client && !relay.upstream.readableEnded) relay.clientEnded();
  else relay.endAfterFlush(relay.other(this));
}

/** 'data' listener: forward to the other side; stop reading while it cannot take more. */
function relayData(this: RelaySide, chunk: Buffer): void {
  const relay = this[kRelay];
  if (!relay) return;
  const to = relay.other(this);
  if (this === relay.upstream) relay.touched();
  if (!to.write(chunk)) {
    this.pause();
    relay.watchDrain(to);
  }
}

/** 'drain' listener: this side can take more again, so the other side may read again. */
function relayDrain(this: RelaySide): void {
  const relay = this[kRelay];
  relay?.other(this).resume();
}

function join(side: RelaySide, relay: Relay): void {
  side[kRelay] = relay;
  // no 'error' listener of its own: the caller's destroys the socket, and 'close' follows
  side.on("close", relayGone);
  side.on("end", relayEnded);
  side.on("data", relayData);
}

/**
 * Relays bytes between `client` and `upstream` until the destination ends (after flushing what it
 * sent to the client), either side errors or closes, or `lifetimeMs` has passed; then destroys both
 * and calls `onDone` exactly once. A client that ends first half-closes the tunnel: the destination
 * gets a FIN after the client's bytes and its answer is still relayed, until it ends too or is idle
 * for `halfClosedIdleMs` (ms, default HALF_CLOSED_IDLE_MS; smokescreen relays half-closes too, Squid
 * does not). Either socket may already be gone or ended (its event past) when this is called:
 * the tunnel then ends at once. Both sockets must already have an 'error' listener that destroys
 * them (the proxy adds one to every socket it accepts or dials): an error then ends the tunnel
 * through the 'close' that follows. Both sockets are resumed, paused or not. Fails closed: any error on either side ends the tunnel.
 */
export function relay(client: Duplex, upstream: Socket, lifetimeMs: number, onDone: RelayDone, halfClosedIdleMs = HALF_CLOSED_IDLE_MS): void {
  const r = new Relay(client, upstream, lifetimeMs, onDone, halfClosedIdleMs);
  // either side may have gone while the tunnel was being set up: its close event is past
  if (client.destroyed || upstream.destroyed) return r.finish();
  join(client, r);
  join(upstream, r);
  // A side may have ended before the relay began (read while the decision, the dial or the
  // ClientHello wait had no 'end' listener): its end event is past, so end the tunnel now.
  if (upstream.readableEnded) r.endAfterFlush(client);
  else if (client.readableEnded) r.clientEnded();
  // either side may have been paused explicitly while the tunnel was set up (a 'data' listener does not resume it then)
  client.resume();
  upstream.resume();
}
