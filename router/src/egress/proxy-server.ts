// The egress proxy's network shell (DESIGN §6, 127.0.0.1:8444). One TCP listener takes three kinds
// of client, told apart by the first byte:
// - 0x16 (TLS handshake record): a transparently redirected TLS connection (iptables REDIRECT of
//   tcp/443, DESIGN §2); the host is the ClientHello's SNI, the port 443.
// - anything else goes to a node:http server that handles CONNECT (RFC 9110 §9.3.6), absolute-form
//   plain HTTP (RFC 9112 §3.2.2) and origin-form requests, which are redirected plain HTTP (tcp/80)
//   whose host is the Host header; a WebSocket handshake (RFC 6455) in either form is decided like the
//   plain request and, once the destination has switched protocols, relayed as a tunnel.
// Every decision comes from decideEgress (decision.ts); this file only reads requests, enforces
// limits, dials the one checked address and relays bytes. Fails closed: errors close the connection.

import { createServer as createHttpServer, request as httpRequest, type ClientRequest, type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from "node:http";
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { pipeline, type Duplex } from "node:stream";
import type { Logger } from "pino";
import { TLS_HANDSHAKE_RECORD, type ClientHelloResult } from "./client-hello";
import { readClientHello, type ClientHelloDone } from "./client-hello-wait";
import { parseConnectHead } from "./connect-head";
import { decideEgress, decideEgressNow, type DenyReason, type EgressDecision, type EgressPolicySnapshot, type EgressVia, type Resolver } from "./decision";
import { normaliseHost, splitAuthority } from "./host";
import { HALF_CLOSED_IDLE_MS, relay, type RelayDone } from "./relay";
import { awaitWebSocketAnswer } from "./upgrade-answer";
import type { EgressHotCounters, EgressMetrics } from "./metrics";

/** Limits (DESIGN §6 / issue 4): concurrent tunnels, tunnel lifetime, header size, timeouts (ms, bytes). */
export interface EgressLimits {
  /** Open tunnels + forwarded HTTP exchanges at once (default 256); more are refused with 503. */
  maxTunnels: number;
  /** A tunnel or forwarded HTTP exchange is closed after this long, whatever it is doing (default 1 h). */
  tunnelLifetimeMs: number;
  /** Largest request head accepted (default 16 KiB); larger gets 431. */
  maxHeaderBytes: number;
  /** Time allowed for a client's first bytes / request head / ClientHello (default 10 s). */
  firstBytesTimeoutMs: number;
  /** Time allowed to connect to the destination (default 10 s). */
  connectTimeoutMs: number;
  /** Accepted client connections at once, on all listeners together, idle keep-alive ones included (default 1024); more are dropped. */
  maxConnections: number;
  /** A tunnel whose client has half-closed ends once its destination sends nothing for this long (default 60 s; relay.ts). */
  halfClosedIdleMs: number;
}

/** Default limits. */
export const DEFAULT_LIMITS: EgressLimits = {
  maxTunnels: 256,
  tunnelLifetimeMs: 3600_000,
  maxHeaderBytes: 16 * 1024,
  firstBytesTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxConnections: 1024,
  halfClosedIdleMs: HALF_CLOSED_IDLE_MS,
};

/** One audited decision. `client` is the peer address of the agent's connection; `client` and `time` are computed on access. */
export interface EgressDecisionEvent {
  time: string;
  via: EgressVia;
  client: string;
  decision: EgressDecision;
}

/** What the shell needs; all I/O beyond sockets is passed in. */
export interface EgressProxyDeps {
  snapshot(): EgressPolicySnapshot;
  resolve: Resolver;
  now(): number;
  /** Called once per decision (allow or deny), for audit, metrics and Learn recording. */
  onDecision(event: EgressDecisionEvent): void;
  metrics: EgressMetrics;
  /** Per-tunnel numbers, kept as plain fields and read by the metrics at scrape time. */
  hot: EgressHotCounters;
  logger: Logger;
  limits: EgressLimits;
}

// Hop-by-hop and proxy-only headers (RFC 9110 §7.6.1) never forwarded in either direction.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const kDialDone = Symbol("kars.egress.dialDone");

/** A socket being dialled; `[kDialDone]` is called once, then cleared. */
type Dialling = Socket & { [kDialDone]?: (err: Error | undefined, upstream: Socket) => void };

/** 'error' listener of a dialled socket (shared): reports a failed dial once, and destroys the socket whenever. */
function dialFailed(this: Dialling, err: Error): void {
  const done = this[kDialDone];
  this[kDialDone] = undefined;
  done?.(err, this);
  this.destroy();
}

/** 'connect' listener of a dialled socket (shared). */
function dialConnected(this: Dialling): void {
  const done = this[kDialDone];
  if (!done) return;
  this[kDialDone] = undefined;
  this.setTimeout(0);
  done(undefined, this);
}

/** 'timeout' listener of a dialling socket (`this`). */
function timedOutConnect(this: Socket): void {
  this.destroy(new Error("connect timeout"));
}

const CONNECT_ESTABLISHED = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n", "latin1");

/** A listener that destroys the socket it is called on (`this`): one shared function instead of a closure per socket. */
function destroyThis(this: Duplex): void {
  this.destroy();
}

/** An audited decision; `time` and `client` are computed on access (a Date and a getpeername(2) only when read). */
class DecisionEvent implements EgressDecisionEvent {
  constructor(
    private readonly at: number,
    readonly via: EgressVia,
    private readonly peer: () => string,
    readonly decision: EgressDecision,
  ) {}

  get time(): string {
    return new Date(this.at).toISOString();
  }

  get client(): string {
    return this.peer();
  }
}

/** The running proxy: listeners plus the sockets it owns. */
export class EgressProxyServer {
  private readonly tcp: NetServer[] = [];
  private readonly http: ReturnType<typeof createHttpServer>;
  private readonly sockets = new Set<Duplex>();
  /** Accepted client connections open now, on every listener together (maxConnections bounds their sum). */
  private clients = 0;
  /** 'close' listener of every accepted client connection (shared). */
  private readonly clientClosed = (): void => void this.clients--;
  private active = 0;
  private readonly decisionSecondsAllow: { observe(seconds: number): void };
  private readonly decisionSecondsDeny: { observe(seconds: number): void };
  /** 'close' listener of every tracked socket (shared, `this` = the socket). */
  private readonly untrack: (this: Duplex) => void;
  /** End of every relay: counts its bytes and releases its slot. */
  private readonly relayDone: RelayDone;
  /** End of every CONNECT tunnel's ClientHello wait. */
  private readonly connectHelloDone: ClientHelloDone<PendingConnect>;
  /** The first 'data' listener of every accepted socket (shared, `this` = the socket). */
  private readonly firstBytes: (this: Socket, first: Buffer) => void;

  constructor(private readonly deps: EgressProxyDeps) {
    const sockets = this.sockets;
    const hot = deps.hot;
    this.untrack = function (this: Duplex) {
      sockets.delete(this);
      hot.openSockets--;
    };
    this.relayDone = (bytesUpstream, bytesDownstream) => {
      hot.bytesUpstream += bytesUpstream;
      hot.bytesDownstream += bytesDownstream;
      this.release();
    };
    this.connectHelloDone = (data, result, pending) => this.afterConnectHello(data, result, pending);
    const onFirstBytes = (socket: Socket, first: Buffer): void => {
      try {
        this.onFirstBytes(socket, first);
      } catch (err) {
        this.failed(socket, err);
      }
    };
    this.firstBytes = function (this: Socket, first: Buffer) {
      onFirstBytes(this, first);
    };
    // node:http enforces headersTimeout by a connection check every connectionsCheckingInterval (30 s
    // by default, too coarse for the first-bytes limit), and only on a server that emitted 'listening'.
    // This one never listens (connections are handed to it), so 'listening' is emitted here: without
    // it a request head that never completes held its connection for ever.
    this.http = createHttpServer({
      maxHeaderSize: deps.limits.maxHeaderBytes,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, deps.limits.firstBytesTimeoutMs / 2)),
    });
    // labelled children bound once, not looked up by label hash per request
    this.decisionSecondsAllow = deps.metrics.decisionSeconds.labels({ decision: "allow" });
    this.decisionSecondsDeny = deps.metrics.decisionSeconds.labels({ decision: "deny" });
    this.http.headersTimeout = deps.limits.firstBytesTimeoutMs;
    this.http.keepAliveTimeout = 5_000;
    this.http.emit("listening");
    this.http.on("request", (req, res) => this.onRequest(req, res).catch((err: unknown) => this.failed(req.socket, err)));
    this.http.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onConnectTarget(peer(req.socket), socket, req.url ?? "", head));
    this.http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.http.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) return socket.destroy();
      const status =
        err.code === "HPE_HEADER_OVERFLOW" ? "431 Request Header Fields Too Large" : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request";
      this.answerAndClose(socket, `HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    });
  }

  /** Listens on host:port (port 0 = any); resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    const server = createNetServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.onSocket(socket));
    server.maxConnections = this.deps.limits.maxConnections;
    this.tcp.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host, port }, () => {
        server.off("error", reject);
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  /** Stops listening and destroys every open connection. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.tcp.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    this.http.close();
  }

  /**
   * Sends a final answer (a refusal) and closes the connection. The client gets firstBytesTimeoutMs
   * to read it and hang up; what it sends meanwhile is read and dropped, so its FIN is seen. Then the
   * socket is destroyed whatever the client does: sockets are half-open, and a client that never
   * sends its FIN would otherwise hold the connection (and one of maxConnections) for ever.
   */
  private answerAndClose(socket: Duplex, answer: string): void {
    if (socket.destroyed) return;
    const linger = setTimeout(() => socket.destroy(), this.deps.limits.firstBytesTimeoutMs);
    linger.unref();
    socket.once("close", () => clearTimeout(linger));
    socket.end(answer);
    socket.resume();
  }

  /** A handler threw where it should not: the connection is closed (fail closed), never left to an unhandled rejection. */
  private failed(socket: Duplex, err: unknown): void {
    this.deps.logger.error({ err: (err as Error)?.message }, "egress proxy: unexpected error; connection closed");
    socket.destroy();
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    this.deps.hot.openSockets++;
    socket.on("close", this.untrack);
  }

  private onSocket(socket: Socket): void {
    // one limit for all listeners (127.0.0.1 and [::1]): each server's own maxConnections counts only its own
    if (this.clients >= this.deps.limits.maxConnections) return void socket.destroy();
    this.clients++;
    socket.once("close", this.clientClosed);
    this.track(socket);
    socket.on("error", destroyThis);
    socket.setTimeout(this.deps.limits.firstBytesTimeoutMs);
    socket.on("timeout", destroyThis);
    // half-open sockets: a client that closes before sending anything is closed at once
    socket.on("end", destroyThis);
    socket.on("data", this.firstBytes);
  }

  /** A client's first bytes: which kind of client it is (see the top of this file). */
  private onFirstBytes(socket: Socket, first: Buffer): void {
    socket.off("data", this.firstBytes);
    socket.pause();
    socket.off("end", destroyThis);
    socket.setTimeout(0);
    if (first[0] === TLS_HANDSHAKE_RECORD) return this.onTransparentTls(socket, first);
    const connectHead = parseConnectHead(first, this.deps.limits.maxHeaderBytes);
    if (connectHead) {
      // the common case: a complete, plain CONNECT head in the first bytes
      this.onConnectTarget(peer(socket), socket, connectHead.authority, first.subarray(connectHead.headLength));
    } else {
      socket.unshift(first);
      this.http.emit("connection", socket);
      socket.resume();
    }
  }

  /**
   * Decides, audits and counts; then calls `then` with the decision — synchronously when no DNS
   * lookup is needed (policy denial, IP literal, cached answer: the common case, with no promise on
   * the way), else once the lookup settles. An exception thrown by `then` goes to `failed(socket)`.
   */
  private decide(host: string, port: number, via: EgressVia, client: () => string, socket: Duplex, then: (decision: EgressDecision) => void): void {
    const started = performance.now();
    const req = { host, port, via };
    const snapshot = this.deps.snapshot();
    const now = this.deps.now();
    const immediate = decideEgressNow(req, snapshot, now, this.deps.resolve);
    if (!("resolveName" in immediate)) return this.decided(immediate, started, via, client, then);
    decideEgress(req, snapshot, now, this.deps.resolve)
      .then((decision) => this.decided(decision, started, via, client, then))
      .catch((err: unknown) => this.failed(socket, err));
  }

  /** A decision made (`started` = performance.now() when asked): timed, audited, counted, handed on. */
  private decided(decision: EgressDecision, started: number, via: EgressVia, client: () => string, then: (decision: EgressDecision) => void): void {
    (decision.allow ? this.decisionSecondsAllow : this.decisionSecondsDeny).observe((performance.now() - started) / 1e3);
    // Fails closed: a decision that cannot be audited (a full disk, a broken log pipe) is a refusal,
    // handed on like any other so that the tunnel slot is released on the usual path.
    if (!this.emit(via, client, decision)) return then({ allow: false, reason: "audit_failed", port: decision.port, ...(decision.host ? { host: decision.host } : {}) });
    then(decision);
  }

  /** {@link decide} as a promise, for the paths that are async anyway (plain HTTP). */
  private decideAsync(host: string, port: number, via: EgressVia, client: () => string, socket: Duplex): Promise<EgressDecision> {
    return new Promise((resolve) => this.decide(host, port, via, client, socket, resolve));
  }

  /**
   * Hands a decision to its consumers (audit, metrics, log, Learn recording); false when one of them
   * threw — then the failure is counted as `audit_failed` and logged if the log still works, and never
   * thrown on into a socket listener, where it would crash the router.
   */
  private emit(via: EgressVia, client: () => string, decision: EgressDecision): boolean {
    try {
      // the peer address costs a getpeername(2) and the ISO time a Date: only a consumer that needs
      // them (a written log line, Learn recording) pays for them
      this.deps.onDecision(new DecisionEvent(this.deps.now(), via, client, decision));
      return true;
    } catch (err) {
      this.deps.hot.countDecision(false, "audit_failed", via);
      try {
        this.deps.logger.error({ err: (err as Error)?.message, via }, "egress decision could not be recorded; refused");
      } catch {
        // the log itself is what failed
      }
      return false;
    }
  }

  private deny(via: EgressVia, client: () => string, reason: DenyReason, port: number, host?: string, detail?: string): void {
    this.emit(via, client, { allow: false, reason, port, ...(host ? { host } : {}), ...(detail ? { detail } : {}) });
  }

  /** Reserves a tunnel slot; false (and a denial event) when the limit is reached. */
  private acquire(via: EgressVia, client: () => string, port: number): boolean {
    if (this.active >= this.deps.limits.maxTunnels) {
      this.deny(via, client, "tunnel_limit", port, undefined, `${this.deps.limits.maxTunnels} tunnels open`);
      return false;
    }
    this.active++;
    this.deps.hot.activeTunnels = this.active;
    return true;
  }

  private release(): void {
    this.active--;
    this.deps.hot.activeTunnels = this.active;
  }

  /**
   * Dials the checked address; calls `done` once, with the connected socket or the error (a refused
   * or timed-out connect). The socket keeps an error listener from the start, so that a destination
   * resetting the connection before the relay begins (while the client's ClientHello is awaited)
   * closes it instead of crashing the router.
   */
  private dial(address: string, port: number, done: (err: Error | undefined, upstream: Socket) => void): void {
    const upstream: Dialling = netConnect({ host: address, port, noDelay: true, allowHalfOpen: true });
    this.track(upstream);
    upstream.setTimeout(this.deps.limits.connectTimeoutMs);
    upstream.on("timeout", timedOutConnect);
    upstream[kDialDone] = done;
    upstream.on("error", dialFailed);
    upstream.on("connect", dialConnected);
  }

  /** {@link dial} as a promise. */
  private dialAsync(address: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => this.dial(address, port, (err, upstream) => (err ? reject(err) : resolve(upstream))));
  }

  /** Relays bytes both ways until the destination ends, either side closes or the lifetime ends (relay.ts: a client's end is a half-close); releases the slot once. */
  private relay(client: Duplex, upstream: Socket, decision: { until?: number }): void {
    relay(client, upstream, this.lifetimeMs(decision), this.relayDone, this.deps.limits.halfClosedIdleMs);
  }

  /** How long a connection may last (ms): the tunnel lifetime, cut short by the expiry of the approval that allowed it. */
  private lifetimeMs(decision: { until?: number }): number {
    const max = this.deps.limits.tunnelLifetimeMs;
    return decision.until === undefined ? max : Math.max(0, Math.min(max, decision.until - this.deps.now()));
  }

  private onTransparentTls(socket: Socket, first: Buffer): void {
    const client = peer(socket);
    // A connection is not a tunnel until its ClientHello has named a host: waiting for one takes no
    // tunnel slot (the first-bytes timeout and maxConnections bound it), so silent connections cannot
    // hold every slot.
    readClientHello(socket, first, this.deps.limits.firstBytesTimeoutMs, undefined, (data, result) => {
      socket.pause(); // the decision and the dial are asynchronous
      if (result.kind !== "ok") {
        this.deny("tls", client, result.kind === "not_tls" ? "not_tls" : "bad_request", 443, undefined, result.kind === "malformed" ? result.why : undefined);
        return void socket.destroy();
      }
      if (result.serverName === null) {
        this.deny("tls", client, "sni_missing", 443);
        return void socket.destroy();
      }
      if (!this.acquire("tls", client, 443)) return void socket.destroy();
      this.tunnelTransparentTls(socket, client, result.serverName, result.encryptedClientHello, data).catch((err: unknown) => this.failed(socket, err));
    });
  }

  /**
   * The decision and dial of a redirected TLS connection whose ClientHello named `serverName` (and hid
   * its real name, `encrypted`): decided as the name says, then refused before any dial if the name is
   * only ECH's outer one and the profile refuses that.
   */
  private async tunnelTransparentTls(socket: Socket, client: () => string, serverName: string, encrypted: boolean, data: Buffer): Promise<void> {
    try {
      const decision = await this.decideAsync(serverName, 443, "tls", client, socket);
      if (!decision.allow || socket.destroyed) {
        this.release();
        return void socket.destroy();
      }
      const hidden = encrypted ? this.encryptedHelloProblem() : undefined;
      if (hidden) {
        this.deny("tls", client, hidden.reason, 443, decision.host, hidden.detail);
        this.release();
        return void socket.destroy();
      }
      const upstream = await this.dialAsync(decision.address, decision.port);
      upstream.write(data);
      if (encrypted) this.deps.hot.encryptedClientHellosAllowed++;
      this.relay(socket, upstream, decision); // the relay owns the slot now
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, "egress transparent tls failed");
      this.release();
      socket.destroy();
    }
  }

  /**
   * A CONNECT request (RFC 9110 §9.3.6) for `target` (raw authority-form); `head` = bytes after it.
   * Callback-driven (no promise on the way when the decision needs no lookup); an unexpected
   * exception closes the connection (fail closed).
   */
  private onConnectTarget(client: () => string, socket: Duplex, target: string, head: Buffer): void {
    try {
      socket.on("error", destroyThis);
      const authority = splitAuthority(target);
      if (!authority) {
        this.deny("connect", client, "bad_request", 0, undefined, "connect target is not host:port");
        return this.answerAndClose(socket, refusal(400, "bad_request"));
      }
      this.openTunnel("connect", client, socket, authority.host, authority.port, (decision, upstream) => this.connectEstablished(client, socket, upstream, decision, head));
    } catch (err) {
      this.failed(socket, err);
    }
  }

  /**
   * The way into a tunnel (CONNECT, WebSocket upgrade): a slot, the decision, the dial of the checked
   * address; each refusal is answered on `socket` (503 tunnel_limit, 403 with the reason, 502
   * dial_failed) and releases the slot. Then `established` owns the slot and both sockets; an
   * exception it throws closes them (fail closed). Callback-driven: synchronous up to the dial when the
   * decision needs no lookup.
   */
  private openTunnel(via: EgressVia, client: () => string, socket: Duplex, host: string, port: number, established: (decision: EgressDecision & { allow: true }, upstream: Socket) => void): void {
    if (!this.acquire(via, client, port)) return this.answerAndClose(socket, refusal(503, "tunnel_limit"));
    this.decide(host, port, via, client, socket, (decision) => {
      if (!decision.allow) {
        this.release();
        return this.answerAndClose(socket, refusal(403, decision.reason));
      }
      this.dial(decision.address, decision.port, (err, upstream) => {
        if (err) {
          this.release();
          return this.answerAndClose(socket, refusal(502, "dial_failed"));
        }
        try {
          established(decision, upstream);
        } catch (e) {
          upstream.destroy();
          this.failed(socket, e);
        }
      });
    });
  }

  /** A CONNECT tunnel whose destination answered: 200, then the relay (after the domain-fronting check on 443). */
  private connectEstablished(client: () => string, socket: Duplex, upstream: Socket, decision: EgressDecision & { allow: true }, head: Buffer): void {
    if (socket.destroyed) {
      upstream.destroy();
      return this.release();
    }
    socket.write(CONNECT_ESTABLISHED);
    // Domain-fronting check: the SNI inside the tunnel must name the CONNECT host — on 443, and on any
    // other port an endpoint names when the tunnel carries TLS. On those other ports a tunnel whose
    // first bytes are not TLS is relayed as it is, and what the destination sends before the client's
    // first bytes (a server-first protocol's greeting) reaches the client meanwhile. A tunnel that sends
    // nothing within firstBytesTimeoutMs is closed, on every port: TLS started later is checked too.
    // A destination that hangs up meanwhile ends the tunnel at once.
    const pending: PendingConnect = { client, socket, upstream, host: decision.host, port: decision.port, until: decision.until, upstreamGone: () => void socket.destroy() };
    upstream.on("close", pending.upstreamGone);
    if (decision.port !== 443) {
      // with backpressure: a destination that sends a lot before the client speaks is paused until the client reads
      const resume = (): void => void (pending.greeting && upstream.resume());
      pending.greeting = (chunk: Buffer) => {
        if (!socket.write(chunk)) {
          upstream.pause();
          socket.once("drain", resume);
        }
      };
      upstream.on("data", pending.greeting);
    }
    readClientHello(socket, head, this.deps.limits.firstBytesTimeoutMs, pending, this.connectHelloDone);
  }

  /** The first bytes inside a CONNECT tunnel arrived (or the wait ended): a ClientHello is checked against the CONNECT host, then the relay. */
  private afterConnectHello(data: Buffer, result: ClientHelloResult, p: PendingConnect): void {
    const { socket, upstream } = p;
    upstream.off("close", p.upstreamGone);
    // the relay (attached below, in this same turn) takes over the destination's bytes: none is lost in between
    if (p.greeting) upstream.off("data", p.greeting);
    p.greeting = undefined;
    if (upstream.destroyed || socket.destroyed) return this.abandon(p);
    // off 443, a tunnel whose first byte is not a TLS handshake record carries another protocol the endpoint allows
    const raw = p.port !== 443 && result.kind === "not_tls";
    const encrypted = result.kind === "ok" && result.encryptedClientHello;
    const problem = raw ? undefined : (frontingProblem(result, p.host) ?? (encrypted ? this.encryptedHelloProblem() : undefined));
    if (problem) {
      this.deny("connect", p.client, problem.reason, p.port, p.host, problem.detail);
      return this.abandon(p);
    }
    if (encrypted) this.deps.hot.encryptedClientHellosAllowed++;
    upstream.write(data);
    this.relay(socket, upstream, p);
  }

  /**
   * Why a ClientHello that hides its real server name (Encrypted Client Hello) is refused, or undefined
   * when the profile allows it. With no valid profile it is refused: fail closed.
   */
  private encryptedHelloProblem(): { reason: DenyReason; detail: string } | undefined {
    if (this.deps.snapshot().profile?.encryptedClientHello === "Allow") return undefined;
    return { reason: "encrypted_client_hello", detail: ECH_REFUSED_DETAIL };
  }

  /** A CONNECT tunnel given up after its ClientHello wait: both sockets closed, the slot released. */
  private abandon(p: PendingConnect): void {
    p.upstream.destroy();
    p.socket.destroy();
    this.release();
  }

  /**
   * A WebSocket opening handshake (RFC 6455 §4.1), absolute-form or redirected plain HTTP: decided
   * exactly as a plain HTTP request to the same host and port (and audited with its `via`); allowed,
   * it takes a tunnel slot, the checked address is dialled and sent the request head (upgradeHead:
   * hop-by-hop headers dropped but the upgrade's own, Host set to the request's authority). Only when
   * the destination answers 101 to websocket (upgrade-answer.ts) does the connection become a byte
   * relay, both ways, until either side closes or the tunnel lifetime ends; any other answer is a 502
   * bad_response and the end. Until then nothing more is read from the agent, and a handshake followed
   * by bytes before that answer is a 400: no request can ride on a handshake to reach the destination
   * undecided (another site on a shared address). Any other Upgrade (h2c, …) gets 501. An unexpected
   * exception closes the connection (fail closed).
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      socket.on("error", destroyThis);
      socket.pause(); // nothing more is read from the agent before the destination has switched protocols
      const client = peer(req.socket);
      const target = requestTarget(req);
      if (!isWebSocketUpgrade(req)) {
        // h2c and other upgrades are not relayed: refused, and audited like every decision
        const what = String(req.headers.upgrade ?? "").slice(0, 40);
        this.deny(target.via, client, "bad_request", target.ok ? target.port : 0, target.ok ? target.host : undefined, `${String(req.method).slice(0, 16)} upgrade to ${JSON.stringify(what)} is not supported (only a GET upgrade to websocket)`);
        return this.answerAndClose(socket, NOT_IMPLEMENTED);
      }
      if (!target.ok || head.length > 0) {
        // RFC 6455 §4.1: a client sends nothing after its handshake before the server's answer
        this.deny(target.via, client, "bad_request", 0, undefined, target.ok ? "bytes after the handshake before its answer" : target.detail);
        return this.answerAndClose(socket, refusal(400, "bad_request"));
      }
      const { via, host, port, authority, path } = target;
      this.openTunnel(via, client, socket, host, port, (decision, upstream) => {
        upstream.write(upgradeHead(req, path, authority), "latin1"); // node:http read the head as latin1
        const clientGone = (): void => void upstream.destroy(); // then the wait ends at once
        socket.once("close", clientGone);
        awaitWebSocketAnswer(upstream, this.deps.limits.maxHeaderBytes, this.deps.limits.firstBytesTimeoutMs, (answer) => {
          socket.off("close", clientGone);
          if (!answer.ok || socket.destroyed) {
            if (!answer.ok) this.deps.logger.info({ host, port, why: answer.why }, "egress websocket: the destination did not switch protocols; closed");
            upstream.destroy();
            this.release();
            return answer.ok ? undefined : this.answerAndClose(socket, refusal(502, "bad_response"));
          }
          socket.write(answer.bytes);
          this.relay(socket, upstream, decision); // the relay owns the slot now
        });
      });
    } catch (err) {
      this.failed(socket, err);
    }
  }

  /**
   * One plain HTTP exchange (absolute-form or redirected): decision, then the request forwarded to the
   * checked address and the answer relayed back, within tunnelLifetimeMs. The slot is held until the
   * agent's response closes; then the request to the destination is destroyed too, so nothing outlives
   * the slot. A destination
   * that breaks off its answer gets the agent's response destroyed (the agent sees the connection
   * close rather than waiting for the missing bytes); one whose answer cannot be relayed (a status
   * node:http refuses to send) gets a 502 — never an exception, which would crash the router.
   */
  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = peer(req.socket);
    const target = requestTarget(req);
    if (!target.ok) {
      this.deny(target.via, client, "bad_request", 0, undefined, target.detail);
      return sendRefusal(res, 400, "bad_request");
    }
    const { via, host, port, authority, path } = target;
    if (!this.acquire(via, client, port)) return sendRefusal(res, 503, "tunnel_limit");
    let released = false;
    let upstreamReq: ClientRequest | undefined;
    // like a tunnel, an exchange ends after tunnelLifetimeMs whatever it is doing (a trickled body)
    let lifetime = setTimeout(() => res.destroy(), this.deps.limits.tunnelLifetimeMs);
    lifetime.unref();
    const releaseOnce = (): void => {
      if (!released) {
        released = true;
        clearTimeout(lifetime);
        upstreamReq?.destroy();
        this.release();
      }
    };
    res.once("close", releaseOnce);
    try {
      const decision = await this.decideAsync(host, port, via, client, req.socket);
      if (!decision.allow) return sendRefusal(res, 403, decision.reason);
      if (decision.until !== undefined) {
        // an exchange an approval allowed ends when the approval does
        clearTimeout(lifetime);
        lifetime = setTimeout(() => res.destroy(), this.lifetimeMs(decision));
        lifetime.unref();
      }
      // the agent may have gone while the decision ran: then there is nothing to forward
      if (released) return;
      const headers: OutgoingHttpHeaders = {};
      const nominated = connectionOptions(req);
      for (const [name, value] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(name) && !nominated.has(name) && !FRAMING.has(name) && name !== "host" && value !== undefined) headers[name] = value;
      }
      Object.assign(headers, bodyFraming(req));
      headers.host = authority;
      headers.connection = "close";
      const outgoing = httpRequest({
        host: decision.address,
        port: decision.port,
        method: req.method,
        path,
        headers,
        setHost: false,
        agent: false,
        timeout: this.deps.limits.connectTimeoutMs,
      });
      upstreamReq = outgoing;
      outgoing.once("socket", (socket: Socket) => this.track(socket));
      outgoing.on("timeout", () => outgoing.destroy(new Error("upstream timeout")));
      outgoing.on("error", () => {
        if (!res.headersSent) sendRefusal(res, 502, "dial_failed");
        else res.destroy();
      });
      outgoing.on("response", (upstreamRes) => {
        const out: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
        }
        const status = upstreamRes.statusCode ?? 0;
        try {
          // 1xx never reach here but 101, which is no final answer to a request without Upgrade
          if (status < 200 || status > 999) throw new RangeError(`status ${status}`);
          res.writeHead(status, out);
        } catch (err) {
          this.deps.logger.debug({ err: (err as Error).message }, "egress http forward: answer not relayable");
          outgoing.destroy();
          if (!res.headersSent) {
            for (const name of res.getHeaderNames()) res.removeHeader(name); // none of the destination's
            return sendRefusal(res, 502, "bad_response");
          }
          return void res.destroy();
        }
        // a broken-off answer (reset, early close) destroys the agent's response instead of leaving it waiting
        pipeline(upstreamRes, res, (err) => {
          if (err) res.destroy();
        });
      });
      req.pipe(outgoing);
    } catch (err) {
      this.deps.logger.debug({ err: (err as Error).message }, "egress http forward failed");
      if (!res.headersSent) sendRefusal(res, 502, "dial_failed");
      releaseOnce();
    }
  }
}

const NOT_IMPLEMENTED = "HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/** The headers that frame a message body: set by bodyFraming only, never copied or dropped on the agent's say. */
const FRAMING = new Set(["content-length", "transfer-encoding"]);

/**
 * The framing of the body forwarded for `req` (RFC 9112 §6): `content-length` as the agent sent it, or
 * `transfer-encoding: chunked` when it sent a chunked body (node's parser has de-chunked it; node's
 * client chunks it again), else none (no body). Always explicit: node adds no framing of its own for a
 * GET, HEAD, DELETE, OPTIONS or TRACE body, which would otherwise reach the destination unframed — a
 * second request, for any Host, never decided. A `Connection` header cannot remove it either.
 */
function bodyFraming(req: IncomingMessage): OutgoingHttpHeaders {
  if (req.headers["transfer-encoding"] !== undefined) return { "transfer-encoding": "chunked" };
  const length = req.headers["content-length"];
  return length !== undefined ? { "content-length": length } : {};
}

/** Whether `req` is a WebSocket opening handshake (RFC 6455 §4.1: GET with `Upgrade: websocket`), the one Upgrade relayed. */
function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return req.method === "GET" && typeof upgrade === "string" && upgrade.trim().toLowerCase() === "websocket";
}

/** The header names a request's Connection header lists (RFC 9110 §7.6.1: hop-by-hop, not forwarded), lowercase. */
function connectionOptions(req: IncomingMessage): Set<string> {
  const connection = req.headers.connection;
  return new Set(connection ? connection.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean) : []);
}

/**
 * The head of a WebSocket opening handshake as sent on to the destination: `GET <path> HTTP/1.1`, Host
 * = the request's authority, `Connection: Upgrade` and `Upgrade: websocket`, then the agent's other
 * headers as it wrote them, but hop-by-hop ones (Proxy-Authorization, Keep-Alive, TE, …, and those its
 * Connection header lists). node:http has already refused header names and values with CR, LF or NUL.
 */
export function upgradeHead(req: IncomingMessage, path: string, authority: string): string {
  const nominated = connectionOptions(req);
  let head = `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (!HOP_BY_HOP.has(name) && !nominated.has(name) && name !== "host") head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return `${head}\r\n`;
}

type Target =
  | { ok: true; via: EgressVia; host: string; port: number; authority: string; path: string }
  | { ok: false; via: EgressVia; detail: string };

/** Where an HTTP request wants to go: absolute-form URL (proxy request) or Host header (redirected). */
function requestTarget(req: IncomingMessage): Target {
  const url = req.url ?? "";
  if (url.startsWith("/")) {
    const hostHeader = req.headers.host;
    if (!hostHeader) return { ok: false, via: "http_transparent", detail: "no host header" };
    const a = splitAuthority(hostHeader, 80);
    if (!a) return { ok: false, via: "http_transparent", detail: "bad host header" };
    return { ok: true, via: "http_transparent", host: a.host, port: a.port, authority: hostHeader, path: url };
  }
  const m = /^http:\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!m) return { ok: false, via: "http", detail: "request target must be http://host/path or /path (https goes through CONNECT)" };
  if (m[1].includes("@")) return { ok: false, via: "http", detail: "userinfo in request target" };
  const a = splitAuthority(m[1], 80);
  if (!a) return { ok: false, via: "http", detail: "bad authority in request target" };
  const path = m[2] === "" ? "/" : m[2].startsWith("/") ? m[2] : `/${m[2]}`;
  return { ok: true, via: "http", host: a.host, port: a.port, authority: m[1], path };
}

/** A CONNECT tunnel to 443 whose destination answered, awaiting the client's ClientHello. */
interface PendingConnect {
  client: () => string;
  socket: Duplex;
  upstream: Socket;
  /** The decided (canonical) CONNECT host the SNI must name, and the port. */
  host: string;
  port: number;
  /** When the approval that allowed the tunnel expires (ms since the epoch), if one did. */
  until?: number;
  /** Off 443: passes the destination's bytes to the client while the client's first bytes are awaited. */
  greeting?: (chunk: Buffer) => void;
  /** 'close' listener on upstream while waiting: the client is closed with it. */
  upstreamGone: () => void;
}

/** The audit detail of an `encrypted_client_hello` refusal: what was seen, and the ways out. */
export const ECH_REFUSED_DETAIL =
  "the ClientHello carries Encrypted Client Hello, which hides its real destination from the SNI check; refused by networkPolicy.encryptedClientHello (Refuse, the Strict default). Chromium sends it too: --disable-features=EncryptedClientHello";

/** The peer address of a client connection, read (getpeername(2)) on first use only, then kept. */
function peer(socket: { remoteAddress?: string }): () => string {
  let address: string | undefined;
  return () => (address ??= socket.remoteAddress ?? "");
}

/** Why a tunnel's ClientHello does not match its CONNECT host, or undefined when it does. */
function frontingProblem(result: ClientHelloResult, connectHost: string): { reason: DenyReason; detail?: string } | undefined {
  if (result.kind === "not_tls") return { reason: "not_tls" };
  if (result.kind !== "ok") return { reason: "bad_request", detail: result.kind === "malformed" ? result.why : "incomplete clienthello" };
  if (result.serverName === null) {
    const connectIsName = normaliseHost(connectHost).ok && !/^[0-9.]+$/.test(connectHost) && !connectHost.includes(":");
    return connectIsName ? { reason: "sni_missing" } : undefined;
  }
  // connectHost is canonical already: an SNI spelled exactly the same needs no normalising
  if (result.serverName === connectHost) return undefined;
  const sni = normaliseHost(result.serverName);
  // the fronted name goes into the audit record and the log (cut short: it is the agent's text)
  if (!sni.ok || sni.host.name !== connectHost) return { reason: "sni_mismatch", detail: `SNI ${JSON.stringify((sni.ok ? sni.host.name : result.serverName).slice(0, 100))} is not the CONNECT host` };
  return undefined;
}

function refusal(status: number, reason: string): string {
  const text = STATUS_TEXT[status] ?? "Error";
  const body = `egress ${status === 403 ? "denied" : "failed"}: ${reason}\n`;
  return (
    `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nX-Kars-Egress-Reason: ${reason}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

function sendRefusal(res: ServerResponse, status: number, reason: string): void {
  const body = `egress ${status === 403 ? "denied" : "failed"}: ${reason}\n`;
  res.writeHead(status, { "content-type": "text/plain", "x-kars-egress-reason": reason, connection: "close" });
  res.end(body);
}

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable" };
