// The "internet" of the egress tests: run as root inside the internet network namespace.
// For each address given, serves HTTP on :80 and :8080 and HTTPS on :443 (certificate from argv), each
// answering "hello from <local address> host=<Host header>" (and N bytes for GET /big?bytes=N). Prints "READY" when all listen.
// An argument `reset:ADDR` instead serves ADDR:443 with a server that resets every connection.
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
let pending = 0;
const ready = () => {
  if (--pending === 0) process.stdout.write("READY\n");
};
for (const arg of addrs) {
  if (arg.startsWith("reset:")) {
    // a hostile destination: accepts on :443 and answers with a TCP reset
    const addr = arg.slice("reset:".length);
    pending++;
    const server = net.createServer((socket) => socket.resetAndDestroy());
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
    server.on("error", (e) => {
      process.stderr.write(`listen ${addr}:${port}: ${e.message}\n`);
      process.exit(1);
    });
    server.listen({ host: addr, port }, ready);
  }
}
