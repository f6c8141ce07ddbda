/**
 * Bench floor: the least a Node proxy in the router's place can add. A bare node:http server that
 * parses the agent's JSON body, re-encodes it, POSTs it to the upstream over a keep-alive undici
 * pool (as the router does) and answers with the upstream's body, parsed once (as the router reads
 * usage): no framework, no policy, no budget, no audit. Its overhead over calling the upstream
 * directly is the price of the extra loopback hop and the HTTP work on this box at this moment; the
 * router's overhead is read against it (bench/router/run.ts).
 * Usage: floor-proxy.ts <upstream origin>; prints `LISTEN <port>` when ready.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Agent, request } from "undici";

const upstream = process.argv[2];
const dispatcher = new Agent({ connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
    request(`${upstream}${req.url}`, { method: "POST", headers: { "content-type": "application/json", authorization: "Bearer sk-bench" }, body: JSON.stringify(body), dispatcher })
      .then(async r => {
        const text = await r.body.text();
        JSON.parse(text);
        res.writeHead(r.statusCode, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
      })
      .catch((err: Error) => res.writeHead(502).end(err.message));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => console.log(`LISTEN ${(server.address() as AddressInfo).port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
