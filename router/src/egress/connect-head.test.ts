import fc from "fast-check";
import { parseConnectHead } from "./connect-head";

/** The plain definition the parser implements (RFC 9112 §3 request line, §5 field lines), as regular expressions: the oracle. */
function reference(data: Buffer, maxBytes: number): { authority: string; headLength: number } | undefined {
  const text = data.subarray(0, Math.min(data.length, maxBytes)).toString("latin1");
  if (!text.startsWith("CONNECT ")) return undefined;
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = text.slice(0, end).split("\r\n");
  const request = /^CONNECT ([^\s\u0000-\u001f\u007f]+) HTTP\/1\.[01]$/.exec(lines[0]);
  if (!request) return undefined;
  if (!lines.slice(1).every((l) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\u0000]*$/.test(l))) return undefined;
  return { authority: request[1], headLength: end + 4 };
}

const b = (s: string): Buffer => Buffer.from(s, "latin1");

/** `data` behind a guard: reading an index past its end throws (instead of a scan running on over undefined bytes for ever). */
function guarded(data: Buffer): Uint8Array {
  return new Proxy(data, {
    get(target, key) {
      if (typeof key === "string" && /^[0-9]+$/.test(key) && Number(key) >= target.length) throw new RangeError(`read past the buffer at ${key}`);
      return Reflect.get(target, key, target) as unknown;
    },
  });
}

describe("parseConnectHead", () => {
  it.each([
    ["a minimal head", "CONNECT a.example:443 HTTP/1.1\r\n\r\n", { authority: "a.example:443", headLength: 34 }],
    ["a head with headers and tunnel bytes after it", "CONNECT [::1]:443 HTTP/1.0\r\nHost: x\r\nProxy-Connection: keep-alive\r\n\r\n\u0016\u0003\u0001", { authority: "[::1]:443", headLength: 69 }],
  ])("parses %s", (_title, text, expected) => {
    expect(parseConnectHead(b(text), 16384)).toEqual(expected);
    expect(expected.headLength).toBe(text.indexOf("\r\n\r\n") + 4);
  });

  it.each([
    ["a head that is not complete yet", "CONNECT a.example:443 HTTP/1.1\r\nHost: a"],
    ["another method", "GET http://a.example/ HTTP/1.1\r\n\r\n"],
    ["a lower-case method", "connect a.example:443 HTTP/1.1\r\n\r\n"],
    ["two spaces", "CONNECT  a.example:443 HTTP/1.1\r\n\r\n"],
    ["HTTP/2 in the request line", "CONNECT a.example:443 HTTP/2\r\n\r\n"],
    ["a bare LF line ending", "CONNECT a.example:443 HTTP/1.1\nHost: a\r\n\r\n"],
    ["an obs-fold continuation line", "CONNECT a.example:443 HTTP/1.1\r\nX: a\r\n b\r\n\r\n"],
    ["a header without a colon", "CONNECT a.example:443 HTTP/1.1\r\nnonsense\r\n\r\n"],
    ["a space before the colon", "CONNECT a.example:443 HTTP/1.1\r\nHost : a\r\n\r\n"],
    ["a NUL in a header value", "CONNECT a.example:443 HTTP/1.1\r\nX: a\u0000b\r\n\r\n"],
    ["a head longer than the limit", `CONNECT a.example:443 HTTP/1.1\r\nX: ${"a".repeat(100)}\r\n\r\n`],
  ])("leaves %s to the strict parser", (_title, text) => {
    expect(parseConnectHead(b(text), 64)).toBeUndefined();
  });

  it("agrees with the regular-expression definition on heads built from hostile pieces (fuzz)", () => {
    const piece = fc.constantFrom("CONNECT ", "a.example:443", " HTTP/1.1", " HTTP/1.0", "\r\n", "\r", "\n", "Host", ": ", ":", " ", "x", "\u0000", "\t", "(", "é", "\u007f", "\r\n\r\n", "-", "[::1]:443");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 14 }), fc.integer({ min: 8, max: 120 }), (pieces, max) => {
        const data = b(`CONNECT ${pieces.join("")}`);
        expect(parseConnectHead(data, max)).toEqual(reference(data, max));
      }),
      { numRuns: 20000 },
    );
  });

  // "C", then an empty line ending before byte 8, then a space at byte 7: the first-byte checks pass,
  // and the request line's end must not be looked for beyond the head (nor beyond the buffer)
  it.each([
    ["an empty line inside what would be the method", "C\r\n\r\nAB "],
    ["an empty line right after the first byte", "C\r\n\r\n\r\n ab"],
    ["an empty line before byte 8, a line after it", "CO\r\n\r\nX abc\r\n\r\n"],
  ])("refuses %s without reading past the buffer", (_title, text) => {
    expect(parseConnectHead(guarded(b(text)), 64)).toBeUndefined();
  });

  it("agrees with the regular-expression definition on any first bytes, reading none past the buffer (fuzz)", () => {
    const piece = fc.constantFrom("C", "CONNECT", "CONNECT ", "a:443", " HTTP/1.1", "\r\n", "\r", "\n", "X", ": ", " ", "\u0000", "\r\n\r\n");
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 10 }), fc.integer({ min: 8, max: 80 }), (pieces, max) => {
        const data = b(pieces.join(""));
        expect(parseConnectHead(guarded(data), max)).toEqual(reference(data, max));
      }),
      { numRuns: 5000 },
    );
  });
});
