// The "internet" of the egress tests: run as root inside the internet network namespace.
// For each address given, serves HTTP on :80 and :8080 and HTTPS on :443 (certificate from argv), each
// answering "hello from <local address> host=<Host header>" (and N bytes for GET /big?bytes=N), and
// WebSocket handshakes with 101 and an echo of every byte after (webSocketEcho). Prints "READY" when all listen.
// An argument `reset:ADDR` instead serves ADDR:443 with a server that resets every connection (100 ms after accepting it).
// An argument `hostile:ADDR` serves ADDR with hostile behaviours, by port:
//   :443, :9002  half-close at once (FIN, keep reading, never close)
//   :9001        silent: accept, read, never answer, never close
//   :9003        server-first: greets at once ("220 greetings from hostile"), then echoes
//   :80          HTTP by path: /status099 (a status node's parser accepts but no server may send),
//                /reset-mid-body and /close-mid-body (Content-Length 100000, 1000 bytes, then a reset
//                or a FIN), /hang (never answers); anything else: 200 "ok", keep-alive
//   internet-servers.js CERT KEY ADDR [ADDR...]
"use strict";
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const fs = require("node:fs");

const [certFile, keyFile, ...addrs] = process.argv.slice(2);
const cert = fs.readFileSync(certFile);
const key = fs.readFileSync(keyFile);
const handler = (req, res) => {
  const big = /^\/big\?bytes=(\d+)$/.exec(req.url);
  if (big) {
    // N bytes, then the server closes at once: a tunnel must deliver them all before it closes
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": big[1], connection: "close" });
    return void res.end(Buffer.alloc(Number(big[1]), 0x61));
  }
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(`hello from ${req.socket.localAddress} host=${req.headers.host}\n`);
};
/**
 * A WebSocket opening handshake (RFC 6455 §4.2.2) answered with 101, Sec-WebSocket-Accept and, for
 * the tests, X-Seen-Host / X-Seen-Headers (the request's Host and header names as they arrived);
 * from then on every byte received is echoed back (no framing: the proxy only relays bytes).
 */
function webSocketEcho(req, socket, head) {
  socket.on("error", () => undefined);
  const key = req.headers["sec-websocket-key"];
  if (req.headers.upgrade?.toLowerCase() !== "websocket" || !key) return void socket.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  const accept = require("node:crypto").createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  const names = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) names.push(req.rawHeaders[i].toLowerCase());
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Seen-Host: ${req.headers.host}\r\nX-Seen-Headers: ${names.join(",")}\r\n\r\n`);
  if (head.length > 0) socket.write(head);
  socket.pipe(socket);
}

let pending = 0;
const ready = () => {
  if (--pending === 0) process.stdout.write("READY\n");
};
/**
 * Reads request heads off `socket` and calls `answer(path, socket)` for each. A request for /echo-raw
 * ends the parsing: everything the connection carries from its head on, for 300 ms, is answered back
 * in an X-Received header (JSON-escaped), so a test sees the bytes exactly as they arrived (framing
 * included).
 */
function rawHttp(socket, answer) {
  let buf = "";
  const onData = (d) => {
    buf += d.toString("latin1");
    for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
      const head = buf.slice(0, end);
      const path = head.split(" ")[1] || "/";
      if (path === "/echo-raw") {
        socket.off("data", onData);
        let raw = buf;
        socket.on("data", (more) => (raw += more.toString("latin1")));
        return void setTimeout(() => socket.write(`HTTP/1.1 200 OK\r\nX-Received: ${JSON.stringify(raw)}\r\nContent-Length: 2\r\n\r\nok`), 300);
      }
      buf = buf.slice(end + 4);
      answer(path, socket);
    }
  };
  socket.on("data", onData);
}

function hostileHttp(path, socket) {
  const partial = () => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n${"a".repeat(1000)}`);
  if (path === "/status099") return void socket.write("HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok");
  if (path === "/reset-mid-body") return void (partial(), setTimeout(() => socket.resetAndDestroy(), 100));
  if (path === "/close-mid-body") return void (partial(), setTimeout(() => socket.end(), 100));
  if (path === "/hang") return;
  socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

function listenOrExit(server, addr, port) {
  pending++;
  server.on("error", (e) => {
    process.stderr.write(`listen ${addr}:${port}: ${e.message}\n`);
    process.exit(1);
  });
  server.listen({ host: addr, port }, ready);
}

for (const arg of addrs) {
  if (arg.startsWith("hostile:")) {
    const addr = arg.slice("hostile:".length);
    const halfClose = () =>
      net.createServer({ allowHalfOpen: true }, (socket) => {
        socket.on("error", () => undefined);
        socket.resume();
        socket.end();
      });
    listenOrExit(halfClose(), addr, 443);
    listenOrExit(halfClose(), addr, 9002);
    listenOrExit(net.createServer({ allowHalfOpen: true }, (socket) => void socket.on("error", () => undefined).resume()), addr, 9001);
    // a server-first protocol (SMTP-like): greets at once, then echoes what it gets
    const greeter = net.createServer((socket) => {
      socket.on("error", () => undefined);
      socket.write("220 greetings from hostile\r\n");
      socket.pipe(socket);
    });
    listenOrExit(greeter, addr, 9003);
    listenOrExit(net.createServer((socket) => void rawHttp(socket.on("error", () => undefined), hostileHttp)), addr, 80);
    continue;
  }
  if (arg.startsWith("reset:")) {
    // a hostile destination: accepts on :443 and answers with a TCP reset
    const addr = arg.slice("reset:".length);
    pending++;
    // 100 ms after accepting: a reset racing the proxy's connect completion would make its dial fail
    // (502) now and then instead of exercising the tunnel that awaits the ClientHello
    const server = net.createServer((socket) => void setTimeout(() => socket.resetAndDestroy(), 100));
    server.on("error", (e) => {
      process.stderr.write(`listen ${addr}:443: ${e.message}\n`);
      process.exit(1);
    });
    server.listen({ host: addr, port: 443 }, ready);
    continue;
  }
  const addr = arg;
  for (const [make, port] of [[() => http.createServer(handler), 80], [() => http.createServer(handler), 8080], [() => https.createServer({ cert, key }, handler), 443]]) {
    pending++;
    const server = make();
    server.on("upgrade", webSocketEcho);
    server.on("error", (e) => {
      process.stderr.write(`listen ${addr}:${port}: ${e.message}\n`);
      process.exit(1);
    });
    server.listen({ host: addr, port }, ready);
  }
}
