import { once } from "node:events";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { createUndiciFetch } from "./upstream-fetch";

describe("createUndiciFetch close", () => {
  let server: http.Server;
  let origin: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === "/trickle") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const t = setInterval(() => res.write('data: {"choices":[]}\n\n'), 20);
        res.on("close", () => clearInterval(t));
        return;
      }
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}'));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  it("returns at once when every answer has been read", async () => {
    const u = createUndiciFetch();
    for (let i = 0; i < 3; i++) {
      const r = await u.fetch(`${origin}/x`, { headers: {}, body: "{}" });
      for await (const _ of r.body) void _;
    }
    const dumped = await u.fetch(`${origin}/x`, { headers: {}, body: "{}" });
    await dumped.dump();
    const t0 = Date.now();
    await u.close(10_000);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("aborts a stream still open after the grace: its body ends with an error", async () => {
    const u = createUndiciFetch();
    const r = await u.fetch(`${origin}/trickle`, { headers: {}, body: "{}" });
    const read = (async () => {
      let chunks = 0;
      for await (const _ of r.body) chunks++;
      return chunks;
    })();
    await u.close(150);
    await expect(read).rejects.toThrow(/destroyed/i);
  });

  it("waits for a call in flight that ends within the grace", async () => {
    const u = createUndiciFetch();
    const r = await u.fetch(`${origin}/x`, { headers: {}, body: "{}" });
    const closing = u.close(10_000);
    const text = (async () => {
      let s = "";
      for await (const c of r.body) s += Buffer.from(c).toString();
      return s;
    })();
    await closing;
    expect(await text).toBe('{"ok":true}');
  });
});
