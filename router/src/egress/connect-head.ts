// Fast path for the commonest request the proxy sees: a complete `CONNECT host:port HTTP/1.1` head in
// the client's first bytes (RFC 9110 §9.3.6, RFC 9112 §3 and §5). Parsing it here skips node:http's
// per-connection machinery. Anything unusual — partial head, odd spacing, bare LF, obs-fold, a
// header line that is not `token ":" value` — returns undefined, and the connection goes to the
// node:http server, which parses it strictly. Only the authority is used; header values are ignored
// (a CONNECT tunnel carries no request semantics after the head).

const TOKEN_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\u0000]*$/;
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
  if (end < 0) return undefined;
  const text = Buffer.from(data.buffer, data.byteOffset, end - 4).toString("latin1");
  const lines = text.split("\r\n");
  const request = REQUEST_LINE.exec(lines[0]);
  if (!request) return undefined;
  for (let i = 1; i < lines.length; i++) {
    if (!TOKEN_LINE.test(lines[i])) return undefined;
  }
  return { authority: request[1], headLength: end };
}
