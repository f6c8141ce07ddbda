/**
 * The destination of `bench:egress` tunnels: a TCP server on ADDR:443 that, once it has received the
 * client's first bytes (the ClientHello sent through the tunnel), answers with a tiny HTTP response
 * and closes. Not real TLS: proxies relay bytes, so the same workload fits kars, Squid and smokescreen.
 * Usage: upstream.ts ADDR PORT; prints "READY".
 */
import { createServer } from "node:net";

const [addr, port] = process.argv.slice(2);
const reply = Buffer.from("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
const server = createServer((socket) => {
  socket.on("error", () => socket.destroy());
  socket.once("data", () => socket.end(reply));
});
server.listen({ host: addr, port: Number(port), backlog: 4096 }, () => process.stdout.write("READY\n"));
