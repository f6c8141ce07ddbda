// Fast path for the commonest request the proxy sees: a complete `CONNECT host:port HTTP/1.1` head in
// the client's first bytes (RFC 9110 §9.3.6, RFC 9112 §3 and §5). Parsing it here skips node:http's
// per-connection machinery. Anything unusual — partial head, odd spacing, bare LF, obs-fold, a
// header line that is not `token ":" value` — returns undefined, and the connection goes to the
// node:http server, which parses it strictly. Only the authority is used; header values are ignored
// (a CONNECT tunnel carries no request semantics after the head).

const REQUEST_LINE = /^CONNECT ([^\s\u0000-\u001f\u007f]+) HTTP\/1\.[01]$/;

/** A parsed CONNECT head: the raw authority (attacker-controlled) and the head's length in bytes. */
export interface ConnectHead {
  authority: string;
  headLength: number;
}

/**
 * Parses a CONNECT request head at the start of `data` if it is complete, at most `maxBytes`
 * long and entirely plain; undefined otherwise (the caller then uses the strict parser).
 * Never throws.
 */
export function parseConnectHead(data: Uint8Array, maxBytes: number): ConnectHead | undefined {
  // "CONNECT "
  if (data.length < 8 || data[0] !== 0x43 || data[7] !== 0x20) return undefined;
  const limit = Math.min(data.length, maxBytes);
  let end = -1;
  for (let i = 3; i < limit; i++) {
    if (data[i] === 0x0a && data[i - 1] === 0x0d && data[i - 2] === 0x0a && data[i - 3] === 0x0d) {
      end = i + 1;
      break;
    }
  }
  // "CONNECT " and the head's final CRLF CRLF: an empty line that ends before byte 12 (possible,
  // only bytes 0 and 7 were looked at) is no CONNECT head, and the scan below must stop at end - 4
  if (end < 12) return undefined;
  // the request line, up to the first CRLF (at the latest the one at end - 4)
  let lineEnd = 8;
  while (lineEnd < end - 4 && (data[lineEnd] !== 0x0d || data[lineEnd + 1] !== 0x0a)) lineEnd++;
  const request = REQUEST_LINE.exec(Buffer.from(data.buffer, data.byteOffset, lineEnd).toString("latin1"));
  if (!request) return undefined;
  // each header line: a token, ":", then no CR, LF or NUL (the head ends with an empty line)
  let at = lineEnd + 2;
  while (at < end - 2) {
    const start = at;
    while (at < end && TOKEN[data[at]] === 1) at++;
    if (at === start || data[at] !== 0x3a) return undefined;
    at++;
    while (data[at] !== 0x0d) {
      if (data[at] === 0x0a || data[at] === 0x00) return undefined;
      at++;
    }
    if (data[at + 1] !== 0x0a) return undefined;
    at += 2;
  }
  return { authority: request[1], headLength: end };
}

/** RFC 9110 §5.6.2 tchar: 1 for the bytes a header name may hold. */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TOKEN[c.charCodeAt(0)] = 1;
