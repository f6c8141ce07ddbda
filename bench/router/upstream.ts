/**
 * Bench upstream: a minimal OpenAI-compatible chat completions server on 127.0.0.1 that answers every
 * POST at once with the same small body (so the measured time is the proxy's, not the model's).
 * Prints `LISTEN <port>` when ready. Run as its own process so it does not share an event loop with
 * the load generator.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

const body = JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1,
  model: "bench-model",
  choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "ok" } }],
  usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 },
});

const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    if (req.url?.endsWith("/models")) {
      res.writeHead(200, { "content-type": "application/json" }).end('{"object":"list","data":[{"id":"bench-model","object":"model"}]}');
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => console.log(`LISTEN ${(server.address() as AddressInfo).port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
