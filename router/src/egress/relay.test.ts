import { once } from "node:events";
import { createServer, connect, type Server, type Socket } from "node:net";
import { relay } from "./relay";

/** Two connected loopback TCP sockets (both half-open, as the proxy's are), with error listeners that destroy them. */
async function socketPair(server: Server): Promise<[Socket, Socket]> {
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const a = connect({ host: "127.0.0.1", port: (server.address() as { port: number }).port, allowHalfOpen: true });
  const [b] = await accepted;
  await once(a, "connect");
  for (const s of [a, b]) s.on("error", () => s.destroy());
  return [a, b];
}

/** Everything `s` receives until it ends or closes. */
function received(s: Socket): Promise<string> {
  let text = "";
  s.on("data", (d: Buffer) => (text += d.toString("latin1")));
  return new Promise((resolve) => {
    s.on("end", () => resolve(text));
    s.on("close", () => resolve(text));
  });
}

describe("relay", () => {
  let server: Server;
  beforeAll(async () => {
    server = createServer({ allowHalfOpen: true });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
  });
  afterAll(() => server.close());

  /** agent ⇄ [client | proxy | upstream] ⇄ destination */
  async function tunnel(lifetimeMs = 60_000, halfClosedIdleMs = 60_000) {
    const [agent, client] = await socketPair(server);
    const [upstream, destination] = await socketPair(server);
    const done = jest.fn();
    const finished = new Promise<[number, number]>((resolve) => done.mockImplementation((up: number, down: number) => resolve([up, down])));
    return { agent, client, upstream, destination, done, finished, start: () => relay(client, upstream, lifetimeMs, done, halfClosedIdleMs) };
  }

  it("carries bytes both ways, ends after the destination's last bytes have reached the agent, and reports once", async () => {
    const t = await tunnel();
    t.start();
    const atDestination = received(t.destination);
    const atAgent = received(t.agent);
    t.agent.write("hello");
    await new Promise((r) => t.destination.once("data", r));
    t.destination.end("world".repeat(20_000)); // more than one socket buffer: flushed before the close
    expect(await atAgent).toBe("world".repeat(20_000));
    expect(await atDestination).toBe("hello");
    expect(await t.finished).toEqual([5, 100_000]);
    await new Promise((r) => setImmediate(r));
    expect(t.done).toHaveBeenCalledTimes(1);
    expect(t.client.destroyed && t.upstream.destroyed).toBe(true);
  });

  it.each([
    ["the agent's side", "client"],
    ["the destination's side", "upstream"],
    ["both sides", "both"],
  ])("carries bytes after an explicit pause of %s while the tunnel was set up", async (_title, paused) => {
    const t = await tunnel();
    if (paused !== "upstream") t.client.pause();
    if (paused !== "client") t.upstream.pause();
    t.start();
    const atAgent = received(t.agent);
    const atDestination = received(t.destination);
    t.agent.end("ping");
    t.destination.end("pong");
    expect([await atAgent, await atDestination]).toEqual(["pong", "ping"]);
    await t.finished;
  });

  it("keeps backpressure: a slow reader pauses the other side and the bytes all arrive in order", async () => {
    const t = await tunnel();
    t.start();
    t.agent.pause();
    const big = Buffer.alloc(48 * 1024 * 1024, 7); // more than loopback socket buffers can hold
    t.destination.write(big);
    // the client side backs up once the kernel's buffers are full, and the proxy stops reading
    for (let waited = 0; !t.upstream.isPaused() && waited < 10_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(t.upstream.isPaused()).toBe(true);
    const atAgent = new Promise<number>((resolve) => {
      let n = 0;
      t.agent.on("data", (d: Buffer) => {
        n += d.length;
        if (n === big.length) resolve(n);
      });
    });
    t.agent.resume();
    expect(await atAgent).toBe(big.length);
    t.destination.end();
    await t.finished;
  });

  it.each([
    ["the agent resets", (t: Awaited<ReturnType<typeof tunnel>>) => t.agent.resetAndDestroy()],
    ["the destination resets", (t: Awaited<ReturnType<typeof tunnel>>) => t.destination.resetAndDestroy()],
    ["the agent ends first and the destination then ends", (t: Awaited<ReturnType<typeof tunnel>>) => {
      t.agent.end();
      t.destination.once("end", () => t.destination.end());
    }],
  ])("ends the tunnel when %s", async (_title, act) => {
    const t = await tunnel();
    t.start();
    act(t);
    await t.finished;
    expect(t.client.destroyed && t.upstream.destroyed).toBe(true);
  });

  it.each([
    ["during the tunnel", false],
    ["before the relay began", true],
  ])("relays a half-close by the agent %s: the destination gets the request and a FIN, and its whole answer still reaches the agent", async (_title, early) => {
    const t = await tunnel();
    const atDestination = received(t.destination);
    const atAgent = received(t.agent);
    if (early) {
      // as the proxy does with bytes it read before the relay (a ClientHello): it writes them on itself
      let head = "";
      const onData = (d: Buffer) => (head += d.toString("latin1"));
      t.client.on("data", onData);
      t.agent.end("GET / HTTP/1.0\r\n\r\n");
      await once(t.client, "end");
      t.client.off("data", onData);
      t.upstream.write(head);
    }
    t.start();
    if (!early) t.agent.end("GET / HTTP/1.0\r\n\r\n");
    expect(await atDestination).toBe("GET / HTTP/1.0\r\n\r\n"); // and its end: the FIN arrived
    await new Promise((r) => setTimeout(r, 50));
    t.destination.end("answer".repeat(30_000)); // the destination answers after the agent's FIN
    expect(await atAgent).toBe("answer".repeat(30_000));
    await t.finished;
  });

  it("ends a half-closed tunnel whose destination sends nothing for the idle time, however long its lifetime", async () => {
    const t = await tunnel(60_000, 150);
    t.start();
    t.agent.end("request");
    const t0 = Date.now();
    await t.finished;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(t.client.destroyed && t.upstream.destroyed).toBe(true);
  });

  it("keeps a half-closed tunnel open while its destination keeps sending", async () => {
    const t = await tunnel(60_000, 300);
    t.start();
    const atAgent = received(t.agent);
    t.agent.end("request");
    for (let i = 0; i < 8; i++) {
      t.destination.write(`part${i};`);
      await new Promise((r) => setTimeout(r, 100)); // 800 ms in all, each gap under the idle time
    }
    t.destination.end();
    expect(await atAgent).toBe(Array.from({ length: 8 }, (_, i) => `part${i};`).join(""));
    await t.finished;
  });

  it("ends at once when a side was already gone or ended before the relay began", async () => {
    const gone = await tunnel();
    gone.upstream.destroy();
    gone.start();
    await gone.finished;
    const ended = await tunnel();
    ended.destination.end();
    ended.upstream.resume();
    await once(ended.upstream, "end");
    ended.upstream.pause();
    ended.start();
    await ended.finished;
  });

  it("ends a tunnel whose lifetime is over, whatever it is doing", async () => {
    const t = await tunnel(50);
    t.start();
    t.agent.write("still talking");
    await t.finished;
    expect(t.client.destroyed && t.upstream.destroyed).toBe(true);
  });
});
