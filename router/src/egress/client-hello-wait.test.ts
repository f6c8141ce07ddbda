import { PassThrough } from "node:stream";
import type { ClientHelloResult } from "./client-hello";
import { readClientHello } from "./client-hello-wait";

const u16 = (n: number): number[] => [(n >> 8) & 255, n & 255];
const u24 = (n: number): number[] => [(n >> 16) & 255, (n >> 8) & 255, n & 255];

/** A one-record ClientHello naming `host` (RFC 8446 §4.1.2, RFC 6066 §3). */
function clientHello(host: string): Buffer {
  const name = [...Buffer.from(host, "latin1")];
  const list = [0, ...u16(name.length), ...name];
  const sni = [0, 0, ...u16(list.length + 2), ...u16(list.length), ...list];
  const body = [3, 3, ...new Array<number>(32).fill(7), 0, ...u16(2), 0x13, 0x01, 1, 0, ...u16(sni.length), ...sni];
  const message = [1, ...u24(body.length), ...body];
  return Buffer.from([0x16, 3, 1, ...u16(message.length), ...message]);
}

/** Starts a wait on a fresh stream; resolves with what `done` got. */
function wait(initial: Buffer, timeoutMs = 1000) {
  const socket = new PassThrough();
  const result = new Promise<{ data: Buffer; result: ClientHelloResult; context: string }>((resolve) =>
    readClientHello(socket, initial, timeoutMs, "ctx", (data, result, context) => {
      socket.pause();
      resolve({ data, result, context });
    }),
  );
  return { socket, result };
}

describe("readClientHello", () => {
  const hello = clientHello("allowed.example");

  it("answers at once, with the caller's context, when the bytes already read hold the ClientHello", async () => {
    const w = wait(hello);
    expect(await w.result).toEqual({ data: hello, result: { kind: "ok", serverName: "allowed.example", bytes: hello.length, encryptedClientHello: false }, context: "ctx" });
    expect(w.socket.listenerCount("data") + w.socket.listenerCount("end") + w.socket.listenerCount("close")).toBe(0);
  });

  it("gathers a ClientHello trickled in pieces, keeping every byte read", async () => {
    const w = wait(Buffer.alloc(0));
    for (let i = 0; i < hello.length; i += 7) w.socket.write(hello.subarray(i, i + 7));
    w.socket.write("after");
    const got = await w.result;
    expect(got.result).toMatchObject({ kind: "ok", serverName: "allowed.example" });
    expect(got.data.subarray(0, hello.length)).toEqual(hello);
  });

  it("parses a ClientHello sent a byte at a time once per record, not once per byte (no quadratic work), and keeps the bytes whole", async () => {
    const big = clientHello(`${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.example`);
    const parse = jest.spyOn(jest.requireActual<typeof import("./client-hello")>("./client-hello"), "parseClientHello");
    const w = wait(Buffer.alloc(0));
    for (let i = 0; i < big.length; i++) w.socket.write(big.subarray(i, i + 1));
    const got = await w.result;
    expect(got.result).toMatchObject({ kind: "ok", serverName: expect.stringMatching(/^a{60}\.b{60}\.c{60}\.example$/) });
    expect(got.data).toEqual(big);
    expect(parse).toHaveBeenCalledTimes(1);
    parse.mockRestore();
  });

  it.each([
    ["a record length over 16 KiB", [0x16, 3, 1, 0x40, 1]],
    ["a zero record length", [0x16, 3, 1, 0, 0]],
    ["a record version that is not 3.x", [0x16, 2, 0, 0, 4]],
  ])("answers at once, before any more bytes, for %s (malformed)", async (_title, bytes) => {
    const w = wait(Buffer.alloc(0), 5000);
    w.socket.write(Buffer.from([0x16])); // a lone first byte: wait
    w.socket.write(Buffer.from(bytes.slice(1)));
    expect((await w.result).result).toMatchObject({ kind: "malformed" });
  });

  // helper-23's fuzzing of the wait: each case answers as parseClientHello does on the same bytes, at once
  it.each<[string, Buffer[], ClientHelloResult["kind"]]>([
    ["a ClientHello with the first byte of another record in the same read", [Buffer.concat([hello, Buffer.from([0x16])])], "ok"],
    ["a ClientHello, then part of another record's header", [hello.subarray(0, 1), Buffer.concat([hello.subarray(1), Buffer.from([0x16, 3, 1, 0])])], "ok"],
    ["a ClientHello in the same read as more than 17 KiB of other bytes", [Buffer.concat([hello, Buffer.alloc(17_500)])], "ok"],
    ["17 KiB of bytes that are not TLS", [Buffer.alloc(17_500, 0x41)], "not_tls"],
  ])("answers at once for %s", async (_title, chunks, kind) => {
    const w = wait(Buffer.alloc(0), 5000);
    for (const c of chunks) w.socket.write(c);
    expect((await w.result).result.kind).toBe(kind);
  });

  it("a connection that ends with bytes that already say 'malformed' gets that reason, not 'closed before clienthello'", async () => {
    const w = wait(Buffer.alloc(0), 5000);
    w.socket.write(Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0, 0x16, 3]));
    w.socket.end();
    expect((await w.result).result).toEqual({ kind: "malformed", why: "first handshake message is not a clienthello" });
  });

  it("parses a ClientHello split into a record per byte, sent a byte at a time, once (RFC 8446 §5.1 allows it; re-parsing per record was quadratic)", async () => {
    const tiny = Buffer.concat([...hello.subarray(5)].map(b => Buffer.from([0x16, 3, 1, 0, 1, b])));
    const parse = jest.spyOn(jest.requireActual<typeof import("./client-hello")>("./client-hello"), "parseClientHello");
    const w = wait(Buffer.alloc(0), 5000);
    for (let i = 0; i < tiny.length; i++) w.socket.write(tiny.subarray(i, i + 1));
    const got = await w.result;
    expect([got.result.kind, got.data]).toEqual(["ok", tiny]);
    expect(parse).toHaveBeenCalledTimes(1);
    parse.mockRestore();
  });

  it("reassembles a ClientHello split into a few records, sent a byte at a time", async () => {
    const body = hello.subarray(5);
    const records = Buffer.concat([0, 10, 20, 30].map((from, i, all) => {
      const part = body.subarray(from, i + 1 < all.length ? all[i + 1] : body.length);
      return Buffer.concat([Buffer.from([0x16, 3, 1, part.length >> 8, part.length & 255]), part]);
    }));
    const w = wait(Buffer.alloc(0), 5000);
    for (let i = 0; i < records.length; i++) w.socket.write(records.subarray(i, i + 1));
    const got = await w.result;
    expect([got.result.kind, got.data]).toEqual(["ok", records]);
  });

  it("an alert record before the ClientHello is malformed, not 'not TLS' (it would be relayed unchecked off 443)", async () => {
    expect((await wait(Buffer.concat([Buffer.from([0x15, 3, 1, 0, 2, 1, 0x5a]), hello])).result).result).toEqual({ kind: "malformed", why: "another tls record before the clienthello" });
  });

  it.each([
    ["a client that ends first", (s: PassThrough) => s.end(), "connection closed before clienthello"],
    ["a client that closes first", (s: PassThrough) => s.destroy(), "connection closed before clienthello"],
    ["a client that never completes it", () => undefined, "timeout waiting for clienthello"],
    ["a ClientHello over the size limit", (s: PassThrough) => s.write(Buffer.concat([Buffer.from([0x16, 3, 1, 0x40, 0]), Buffer.alloc(20_000, 1)])), "clienthello too large"],
  ])("reports %s as malformed (fails closed)", async (_title, act, why) => {
    const w = wait(Buffer.alloc(0), 100);
    act(w.socket);
    expect((await w.result).result).toEqual({ kind: "malformed", why });
  });

  it("reports bytes that are not TLS as not_tls", async () => {
    expect((await wait(Buffer.from("GET / HTTP/1.1\r\n")).result).result).toEqual({ kind: "not_tls" });
  });
});
