// The proxy shell on loopback: request parsing, refusals, limits and audit events. Every request here
// is refused before any dial (loopback and the test's names are never dialled); tunnels and relaying
// are exercised on a real kernel in tests/integration/egress-proxy.spec.ts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import type { IncomingMessage } from "node:http";
import { startEgressProxy, type EgressDecisionEvent, type EgressProxy } from "./index";
import { upgradeHead } from "./proxy-server";
import { profileJson } from "../test-support/profile-json";

let dir: string;
let proxy: EgressProxy;
let events: EgressDecisionEvent[];

async function start(limits = {}): Promise<void> {
  proxy = await startEgressProxy({
    configDir: path.join(dir, "config"),
    stateDir: path.join(dir, "state"),
    port: 0,
    logger: pino({ level: "silent" }),
    audit: (e) => events.push(e),
    // names never reach real DNS in unit tests
    resolve: async (name) => (name === "private.example" ? ["10.1.2.3"] : Promise.reject(Object.assign(new Error("nx"), { code: "ENOTFOUND" }))),
    limits,
  });
}

/** Sends raw bytes to the proxy and returns everything it answers until it closes. */
function exchange(bytes: string | Buffer): Promise<string> {
  const [host, port] = proxy.address.split(":");
  return new Promise((resolve) => {
    const s = connect({ host, port: Number(port) });
    let out = "";
    s.on("data", (d) => (out += d.toString("latin1")));
    s.on("close", () => resolve(out));
    s.on("error", () => resolve(out));
    s.write(bytes);
    setTimeout(() => s.destroy(), 3000).unref();
  });
}

/** The proxy's open sockets (kars_egress_open_sockets). */
async function openSockets(): Promise<number> {
  return Number(/^kars_egress_open_sockets (\S+)$/m.exec(await proxy.registry.metrics())?.[1]);
}

/**
 * A client that sends `bytes`, reads everything and never closes its side (half-open, no FIN): resolves
 * with what it got, after how many ms the proxy ended the connection (null if not within `waitMs`), and
 * the still open socket (the caller destroys it).
 */
function halfOpenClient(bytes: string, waitMs: number): Promise<{ answer: string; endedAfterMs: number | null; socket: Socket }> {
  const [host, port] = proxy.address.split(":");
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host, port: Number(port), allowHalfOpen: true });
    let answer = "";
    const done = (endedAfterMs: number | null): void => {
      clearTimeout(timer);
      resolve({ answer, endedAfterMs, socket });
    };
    const timer = setTimeout(() => done(null), waitMs);
    socket.on("data", (d) => (answer += d.toString("latin1")));
    socket.on("end", () => done(Date.now() - started));
    socket.on("error", () => done(Date.now() - started));
    socket.write(bytes);
  });
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "kars-egress-proxy-"));
  mkdirSync(path.join(dir, "config"));
  writeFileSync(path.join(dir, "config", "profile.json"), profileJson({ egressMode: "Strict", allowedEndpoints: [{ host: "private.example" }] }));
  writeFileSync(path.join(dir, "config", "approvals.json"), "[]");
  events = [];
});
afterEach(async () => {
  await proxy.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("egress proxy shell", () => {
  it.each([
    ["CONNECT to a host outside the allowlist", "CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n", 403, "not_allowlisted"],
    ["CONNECT to an allowed name that resolves privately", "CONNECT private.example:443 HTTP/1.1\r\n\r\n", 403, "non_public_address"],
    ["CONNECT to port 22", "CONNECT other.example:22 HTTP/1.1\r\n\r\n", 403, "port_not_allowed"],
    ["CONNECT without a port", "CONNECT other.example HTTP/1.1\r\n\r\n", 400, "bad_request"],
    ["absolute-form https (must use CONNECT)", "GET https://other.example/ HTTP/1.1\r\nHost: other.example\r\n\r\n", 400, "bad_request"],
    ["absolute-form with userinfo", "GET http://u:p@other.example/ HTTP/1.1\r\nHost: other.example\r\n\r\n", 400, "bad_request"],
    ["absolute-form http outside the allowlist", "GET http://other.example/x HTTP/1.1\r\nHost: other.example\r\n\r\n", 403, "not_allowlisted"],
    ["origin-form (redirected) http to the metadata address", "GET /latest/meta-data HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n", 403, "not_allowlisted"],
    ["origin-form without Host", "GET / HTTP/1.0\r\n\r\n", 400, "bad_request"],
  ])("answers %s with %d %s", async (_title, request, status, reason) => {
    await start();
    const answer = await exchange(request);
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(answer).toMatch(new RegExp(`x-kars-egress-reason: ${reason}`, "i"));
    expect(events.map((e) => e.decision.reason)).toContain(reason);
  });

  it("refuses an oversized request head with 431 (header size limit)", async () => {
    await start({ maxHeaderBytes: 1024 });
    const answer = await exchange(`GET http://other.example/ HTTP/1.1\r\nHost: other.example\r\nX-Big: ${"a".repeat(4096)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(events).toHaveLength(0);
  });

  it("lets no redirected TLS connection awaiting its ClientHello hold a tunnel slot", async () => {
    await start({ maxTunnels: 1 });
    const [host, port] = proxy.address.split(":");
    // a TLS record header and nothing more: the proxy waits for the rest of the ClientHello
    const silent = connect({ host, port: Number(port) });
    silent.on("error", () => undefined);
    await new Promise<void>((resolve) => silent.on("connect", () => silent.write(Buffer.from([0x16, 3, 1, 0, 200]), () => resolve())));
    await new Promise((r) => setTimeout(r, 50));
    // the one slot is still free: this CONNECT reaches the policy (and is refused there), not the limit
    expect(await exchange("CONNECT other.example:443 HTTP/1.1\r\n\r\n")).toMatch(/x-kars-egress-reason: not_allowlisted/i);
    // the silent connection ends refused (so that its event does not land in the next test)
    silent.destroy();
    for (let waited = 0; !events.some((e) => e.via === "tls") && waited < 2000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    expect(events.find((e) => e.via === "tls")?.decision).toMatchObject({ allow: false, reason: "bad_request" });
  });

  it("refuses, fail closed, a request whose decision cannot be audited, and keeps no tunnel slot for it", async () => {
    await start({ maxTunnels: 1 });
    const audit = events;
    let broken = true;
    events = new Proxy(audit, { get: (t, k) => (k === "push" && broken ? () => { throw new Error("ENOSPC: no space left on device"); } : Reflect.get(t, k)) });
    // allowed by policy (IP literal, public) but not auditable: refused; the one slot must come back each time
    for (let i = 0; i < 3; i++) {
      const answer = await exchange("CONNECT 198.51.100.7:443 HTTP/1.1\r\n\r\n");
      expect(answer).toMatch(/^HTTP\/1\.1 403 /);
      expect(answer).toMatch(/x-kars-egress-reason: audit_failed/i);
    }
    // a refusal that cannot be audited is still answered (nothing thrown into the socket's listeners)
    expect(await exchange("CONNECT other.example HTTP/1.1\r\n\r\n")).toMatch(/^HTTP\/1\.1 400 [^]*x-kars-egress-reason: bad_request/i);
    broken = false;
    events = audit;
    expect(await exchange("CONNECT other.example:443 HTTP/1.1\r\n\r\n")).toMatch(/x-kars-egress-reason: not_allowlisted/i);
    expect(await proxy.registry.metrics()).toMatch(/kars_egress_decisions_total\{[^}]*reason="audit_failed"[^}]*\} 4/);
  });

  it("refuses tunnels beyond the limit with 503 and reason tunnel_limit", async () => {
    await start({ maxTunnels: 0 });
    const answer = await exchange("CONNECT other.example:443 HTTP/1.1\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(events[0].decision).toMatchObject({ allow: false, reason: "tunnel_limit" });
  });

  it("closes a redirected TLS connection without SNI, and one that is not a ClientHello", async () => {
    await start();
    // A minimal ClientHello with no extensions (so no SNI).
    const body = [3, 3, ...new Array(32).fill(1), 0, 0, 2, 0x13, 0x01, 1, 0];
    const hello = Buffer.from([0x16, 3, 1, 0, body.length + 4, 1, 0, 0, body.length, ...body]);
    expect(await exchange(hello)).toBe("");
    expect(await exchange(Buffer.from([0x16, 3, 3, 0, 2, 2, 40]))).toBe("");
    expect(events.map((e) => [e.via, e.decision.reason])).toEqual([
      ["tls", "sni_missing"],
      ["tls", "bad_request"],
    ]);
  });

  it("holds at most maxConnections client connections on its listeners together (127.0.0.1 and [::1])", async () => {
    await start({ maxConnections: 2 });
    const port = Number(proxy.address.split(":")[1]);
    const open = (host: string) =>
      new Promise<{ closed: () => boolean; destroy: () => void }>((resolve) => {
        let closed = false;
        const s = connect({ host, port }, () => resolve({ closed: () => closed, destroy: () => s.destroy() }));
        s.on("close", () => (closed = true));
        s.on("error", () => resolve({ closed: () => true, destroy: () => s.destroy() }));
      });
    const held = [await open("127.0.0.1"), await open("::1")];
    const third = await open("127.0.0.1");
    const fourth = await open("::1");
    for (let i = 0; i < 40 && !(third.closed() && fourth.closed()); i++) await new Promise((r) => setTimeout(r, 25));
    expect([...held, third, fourth].map((c) => c.closed())).toEqual([false, false, true, true]);
    held[0].destroy(); // a slot frees: the next one is taken
    await new Promise((r) => setTimeout(r, 100));
    const fifth = await open("127.0.0.1");
    await new Promise((r) => setTimeout(r, 100));
    expect(fifth.closed()).toBe(false);
    for (const c of [...held, fifth]) c.destroy();
  });

  // Sockets are half-open: after a refusal the proxy must close the connection itself, also when the
  // client never sends its FIN. Before, each such connection stayed open for ever and counted toward
  // maxConnections, until the proxy accepted no connection at all.
  it.each([
    ["a denied CONNECT (403)", "CONNECT other.example:443 HTTP/1.1\r\n\r\n", {}, /^HTTP\/1\.1 403 /],
    ["a malformed CONNECT (400)", "CONNECT other.example HTTP/1.1\r\n\r\n", {}, /^HTTP\/1\.1 400 /],
    ["a CONNECT beyond the tunnel limit (503)", "CONNECT other.example:443 HTTP/1.1\r\n\r\n", { maxTunnels: 0 }, /^HTTP\/1\.1 503 /],
    ["a denied CONNECT split across writes (node:http)", "CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\nX: y\n\r\n", {}, /^HTTP\/1\.1 (400|403) /],
    ["an Upgrade request (501)", "GET / HTTP/1.1\r\nHost: a.example\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n", {}, /^HTTP\/1\.1 501 /],
    ["a denied WebSocket upgrade (403)", "GET / HTTP/1.1\r\nHost: other.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", {}, /^HTTP\/1\.1 403 /],
    ["a malformed request (400)", "FOO BAR BAZ\r\n\r\n", {}, /^HTTP\/1\.1 400 /],
    ["an oversized request head (431)", `GET http://other.example/ HTTP/1.1\r\nX-Big: ${"a".repeat(4096)}\r\n\r\n`, { maxHeaderBytes: 1024 }, /^HTTP\/1\.1 431 /],
    ["a request head that never completes (408)", "GET http://other.example/ HTTP/1.1\r\nHost: other.example\r\n", {}, /^(HTTP\/1\.1 408 |$)/],
  ])("closes the connection after %s although the client never closes its side", async (_title, request, limits, status) => {
    await start({ firstBytesTimeoutMs: 300, ...limits });
    const { answer, endedAfterMs, socket } = await halfOpenClient(request, 3000);
    try {
      expect(answer).toMatch(status);
      expect(endedAfterMs).not.toBeNull();
      // while the client still holds its side, the proxy's socket goes (a FIN alone leaves it half-open)
      for (let i = 0; i < 40 && (await openSockets()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await openSockets()).toBe(0);
    } finally {
      socket.destroy();
    }
  });

  it("denies everything while profile.json is missing (fail closed) and reports not ready", async () => {
    rmSync(path.join(dir, "config", "profile.json"));
    await start();
    expect(proxy.status()).toEqual({ ready: false, reasons: ["profile.json: missing"] });
    expect(await exchange("CONNECT private.example:443 HTTP/1.1\r\n\r\n")).toMatch(/x-kars-egress-reason: no_config/i);
  });

  it("counts decisions by reason in kars_egress_decisions_total", async () => {
    await start();
    await exchange("CONNECT other.example:443 HTTP/1.1\r\n\r\n");
    const text = await proxy.registry.metrics();
    expect(text).toMatch(/kars_egress_decisions_total\{decision="deny",reason="not_allowlisted",via="connect"\} 1/);
  });
});

describe("WebSocket upgrades", () => {
  it.each<[string, string, RegExp, Record<string, unknown> | undefined]>([
    ["redirected, to a host off the allowlist", "GET /chat HTTP/1.1\r\nHost: other.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", /^HTTP\/1\.1 403 [^]*x-kars-egress-reason: not_allowlisted/i, { via: "http_transparent", host: "other.example", port: 80, allow: false, reason: "not_allowlisted" }],
    ["absolute-form, to a port its allowed endpoint does not name", "GET http://private.example:80/ws HTTP/1.1\r\nHost: private.example\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n", /^HTTP\/1\.1 403 [^]*x-kars-egress-reason: not_allowlisted/i, { via: "http", host: "private.example", port: 80, allow: false, reason: "not_allowlisted" }],
    ["absolute-form https (goes through CONNECT)", "GET https://a.example/ HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", /^HTTP\/1\.1 400 [^]*x-kars-egress-reason: bad_request/i, { via: "http", allow: false, reason: "bad_request" }],
    ["with bytes after the handshake before its answer (a request riding on it)", "GET / HTTP/1.1\r\nHost: other.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /x HTTP/1.1\r\nHost: blocked.example\r\n\r\n", /^HTTP\/1\.1 400 [^]*x-kars-egress-reason: bad_request/i, { via: "http_transparent", allow: false, reason: "bad_request", detail: "bytes after the handshake before its answer" }],
    ["an upgrade that is not a GET", "POST / HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n", /^HTTP\/1\.1 501 /, { via: "http_transparent", host: "a.example", port: 80, allow: false, reason: "bad_request", detail: 'POST upgrade to "websocket" is not supported (only a GET upgrade to websocket)' }],
    ["an upgrade to another protocol (h2c)", "GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", /^HTTP\/1\.1 501 /, { via: "http", host: "evil.example", port: 80, allow: false, reason: "bad_request", detail: 'GET upgrade to "h2c" is not supported (only a GET upgrade to websocket)' }],
  ])("decides a WebSocket upgrade %s like the plain request it is, and audits it", async (_title, request, answer, decision) => {
    await start();
    expect(await exchange(request)).toMatch(answer);
    if (decision === undefined) expect(events).toEqual([]);
    else expect(events.map((e) => ({ via: e.via, ...e.decision }))).toEqual([expect.objectContaining(decision)]);
    for (let i = 0; i < 40 && (await openSockets()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await openSockets()).toBe(0);
  });

  it.each<[string, string[], string[]]>([
    [
      "keeps the handshake's own headers, sets Host to the authority",
      ["Host", "ws.example", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", "Origin", "http://ws.example"],
      ["GET /chat?room=1 HTTP/1.1", "Host: ws.example:8080", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", "Origin: http://ws.example"],
    ],
    [
      "drops hop-by-hop headers and those the Connection header names",
      ["Host", "x", "Proxy-Authorization", "Basic c2VjcmV0", "Proxy-Connection", "keep-alive", "Keep-Alive", "timeout=5", "TE", "trailers", "Connection", "Upgrade, X-Hop", "X-Hop", "1", "Upgrade", "websocket", "X-Kept", "2"],
      ["GET /chat?room=1 HTTP/1.1", "Host: ws.example:8080", "Connection: Upgrade", "Upgrade: websocket", "X-Kept: 2"],
    ],
  ])("upgradeHead %s", (_title, rawHeaders, lines) => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i].toLowerCase()] = rawHeaders[i + 1];
    const req = { headers, rawHeaders } as unknown as IncomingMessage;
    expect(upgradeHead(req, "/chat?room=1", "ws.example:8080")).toBe(`${lines.join("\r\n")}\r\n\r\n`);
  });
});
