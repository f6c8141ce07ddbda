import { PassThrough, Readable } from "node:stream";
import type { UpstreamResponse } from "../upstream/upstream-fetch";
import { readUpstreamBody } from "./upstream-answer";

const response = (body: AsyncIterable<Uint8Array>): UpstreamResponse => ({ status: 200, contentType: "application/json", body, dump: async () => undefined });

describe("readUpstreamBody", () => {
  it("joins a Node stream's chunks as UTF-8 (a character split across chunks included)", async () => {
    const euro = Buffer.from("€");
    const body = Readable.from([Buffer.from('{"a":"'), euro.subarray(0, 1), euro.subarray(1), Buffer.from('"}')], { objectMode: false });
    await expect(readUpstreamBody(response(body))).resolves.toBe('{"a":"€"}');
  });

  it("reads an empty stream as an empty string", async () => {
    const body = new PassThrough();
    body.end();
    await expect(readUpstreamBody(response(body))).resolves.toBe("");
  });

  it("refuses a stream larger than the limit and destroys it", async () => {
    const body = new PassThrough();
    const reading = readUpstreamBody(response(body), 10);
    body.write(Buffer.alloc(6));
    body.write(Buffer.alloc(6));
    await expect(reading).rejects.toThrow("larger than 10 bytes");
    expect(body.destroyed).toBe(true);
  });

  it("rejects when the stream fails or closes before its end", async () => {
    const failing = new PassThrough();
    const a = readUpstreamBody(response(failing));
    failing.write("{");
    failing.destroy(new Error("socket hang up"));
    await expect(a).rejects.toThrow("socket hang up");

    const cut = new PassThrough();
    const b = readUpstreamBody(response(cut));
    cut.write("{");
    cut.destroy();
    await expect(b).rejects.toThrow("closed before its end");
  });

  it("reads any other async iterable (test seams) with the same limit", async () => {
    async function* chunks() {
      yield new TextEncoder().encode("ab");
      yield new TextEncoder().encode("cd");
    }
    await expect(readUpstreamBody(response(chunks()))).resolves.toBe("abcd");
    await expect(readUpstreamBody(response(chunks()), 3)).rejects.toThrow("larger than 3 bytes");
  });
});
