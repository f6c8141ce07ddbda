import { createServer, connect, type Server, type Socket } from "node:net";
import { awaitWebSocketAnswer, switchesToWebSocket, type UpgradeAnswer } from "./upgrade-answer";

describe("switchesToWebSocket", () => {
  it.each<[string, string, boolean]>([
    ["101 to websocket", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade", true],
    ["101 with the field's name and value in other cases and spaces", "HTTP/1.1 101 Switching Protocols\r\nUPGRADE :\tWebSocket ", true],
    ["101 without a reason phrase", "HTTP/1.1 101\r\nUpgrade: websocket", true],
    ["200 (a server that ignores the Upgrade)", "HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nContent-Length: 2", false],
    ["101 to another protocol", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c", false],
    ["101 without an Upgrade field", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade", false],
    ["101 to websocket and something else", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, h2c", false],
    ["HTTP/1.0 101", "HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket", false],
    ["a status that starts with 101", "HTTP/1.1 1010 Odd\r\nUpgrade: websocket", false],
    ["the field inside another field's value", "HTTP/1.1 101 Switching Protocols\r\nX-Note: upgrade: websocket", false],
    ["not HTTP at all (a TLS server's alert)", "\u0015\u0003\u0003\u0000\u0002\u0002\u0032", false],
  ])("%s: %s", (_t, head, expected) => {
    expect(switchesToWebSocket(head)).toBe(expected);
  });
});

describe("awaitWebSocketAnswer", () => {
  let server: Server;
  let port: number;
  let serve: (s: Socket) => void;
  beforeEach(async () => {
    server = createServer((s) => serve(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  });
  afterEach(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** Connects, lets the destination behave as `behave`, and returns the answer and how many data listeners were left. */
  async function answerOf(behave: (s: Socket) => void, maxBytes = 1024, timeoutMs = 2000): Promise<{ answer: UpgradeAnswer; listenersLeft: number; paused: boolean }> {
    serve = behave;
    const upstream = connect(port, "127.0.0.1");
    upstream.on("error", () => undefined);
    await new Promise((r) => upstream.once("connect", r));
    const answer = await new Promise<UpgradeAnswer>((resolve) => awaitWebSocketAnswer(upstream, maxBytes, timeoutMs, resolve));
    const result = { answer, listenersLeft: upstream.listenerCount("data"), paused: upstream.isPaused() };
    upstream.destroy();
    return result;
  }

  it("passes on the 101 head and the WebSocket bytes that came with it, leaving the socket paused", async () => {
    const head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    const r = await answerOf((s) => {
      s.write(head.slice(0, 20));
      setTimeout(() => s.write(`${head.slice(20)}\u0081\u0002hi`, "latin1"), 20);
    });
    expect(r.answer).toEqual({ ok: true, bytes: Buffer.from(`${head}\u0081\u0002hi`, "latin1") });
    expect([r.listenersLeft, r.paused]).toEqual([0, true]);
  });

  it.each<[string, (s: Socket) => void, number, number, RegExp]>([
    ["a 200 (the Upgrade ignored)", (s) => void s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 1024, 2000, /answered "HTTP\/1\.1 200 OK", not 101 to websocket/],
    ["a head longer than the limit", (s) => void s.write(`HTTP/1.1 101 Switching Protocols\r\nX: ${"a".repeat(2000)}`), 1024, 2000, /no response head within 1024 bytes/],
    ["a close before the head's end", (s) => void s.end("HTTP/1.1 101 Switch"), 1024, 2000, /closed before answering/],
    ["silence", () => undefined, 1024, 200, /no answer within 200 ms/],
  ])("refuses %s", async (_t, behave, maxBytes, timeoutMs, why) => {
    const r = await answerOf(behave, maxBytes, timeoutMs);
    expect(r.answer).toEqual({ ok: false, why: expect.stringMatching(why) });
    expect(r.listenersLeft).toBe(0);
  });
});
