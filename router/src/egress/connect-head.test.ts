import { parseConnectHead } from "./connect-head";

const b = (s: string): Buffer => Buffer.from(s, "latin1");

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
});
