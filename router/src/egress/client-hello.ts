// TLS ClientHello parser: extracts the server_name (SNI) from the first bytes a client sends.
// Sources: RFC 8446 §5.1 (record layer, handshake messages may be fragmented across records),
// §4.1.2 (ClientHello layout), §4.2 (at most one extension of each type); RFC 6066 §3 (server_name:
// one host_name, no trailing dot, ASCII); RFC 5246 §7.4.1.2 (same layout for TLS 1.2 and earlier).
//
// Attacker-controlled input. Never throws; every length is bounds-checked against what was received.
// Fails closed: anything unusual is "malformed", and callers refuse the connection.

/** Content type of a TLS handshake record (RFC 8446 §5.1). */
export const TLS_HANDSHAKE_RECORD = 0x16;
/** Largest ClientHello handshake message we reassemble, in bytes (post-quantum key shares fit easily). */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;

/** Result of {@link parseClientHello}. */
export type ClientHelloResult =
  /** More bytes are needed; call again with a longer buffer. */
  | { kind: "incomplete" }
  /** The first bytes are not a TLS record: not TLS at all. */
  | { kind: "not_tls" }
  /** TLS, but not a well-formed ClientHello; `why` is a short lower-case description. */
  | { kind: "malformed"; why: string }
  /**
   * A complete ClientHello. `serverName` is the raw host_name (not normalised), or null if absent.
   * `encryptedClientHello` is true when it carries an extension that hides the real server name
   * (isEncryptedHelloType): `serverName` is then only the outer, public name.
   */
  | { kind: "ok"; serverName: string | null; bytes: number; encryptedClientHello: boolean };

/**
 * Whether an extension type carries an encrypted server name, so that the SNI a proxy reads is not the
 * destination: `encrypted_client_hello` 0xfe0d (TLS Encrypted Client Hello, draft-ietf-tls-esni-13
 * and later, as deployed by Chromium, Firefox and Cloudflare; Chromium's GREASE ECH uses the same
 * type and cannot be told apart on the wire, by design) and the earlier drafts' 0xfe08–0xfe0c, and
 * `encrypted_server_name` 0xffce (ESNI, draft-ietf-tls-esni-01..06, as Firefox once sent it).
 */
const isEncryptedHelloType = (type: number): boolean => (type >= 0xfe08 && type <= 0xfe0d) || type === 0xffce;

/**
 * Parses the ClientHello at the start of `data` (the client's first bytes on a TLS connection),
 * reassembling the handshake message across records. `bytes` in the result is how many bytes of
 * `data` the records holding the ClientHello span. Never throws.
 */
export function parseClientHello(data: Uint8Array): ClientHelloResult {
  if (data.length === 0) return { kind: "incomplete" };
  if (data[0] !== TLS_HANDSHAKE_RECORD) {
    // another TLS record first (change_cipher_spec, alert, application_data, heartbeat: RFC 8446 §5.1
    // content types 20-24, version 3.x) is TLS all the same: some servers skip a warning alert before
    // the handshake, so letting it pass as "not TLS" would relay the ClientHello behind it unchecked
    if (data[0] >= 0x14 && data[0] <= 0x18) {
      if (data.length < 2) return { kind: "incomplete" };
      if (data[1] === 0x03) return { kind: "malformed", why: "another tls record before the clienthello" };
    }
    return { kind: "not_tls" };
  }

  // The common case: one record holding exactly the ClientHello, parsed in place (no copy).
  if (data.length >= 9 && data[1] === 0x03 && data[5] === 0x01) {
    const recordLength = (data[3] << 8) | data[4];
    const messageLength = (data[6] << 16) | (data[7] << 8) | data[8];
    if (recordLength === 4 + messageLength && recordLength <= 16384 && 4 + messageLength <= MAX_CLIENT_HELLO_BYTES && data.length >= 5 + recordLength) {
      return bodyResult(parseClientHelloBody(data, 9, 5 + recordLength), 5 + recordLength);
    }
  }

  // Reassemble the handshake message from consecutive handshake records.
  const chunks: Uint8Array[] = [];
  let have = 0;
  let need = -1; // total handshake message length incl. its 4-byte header, once known
  let offset = 0;
  while (need < 0 || have < need) {
    if (data.length < offset + 5) return { kind: "incomplete" };
    if (data[offset] !== TLS_HANDSHAKE_RECORD) return { kind: "malformed", why: "non-handshake record inside clienthello" };
    if (data[offset + 1] !== 0x03) return { kind: "malformed", why: "record version is not 3.x" };
    const recordLength = (data[offset + 3] << 8) | data[offset + 4];
    if (recordLength === 0 || recordLength > 16384) return { kind: "malformed", why: "bad record length" };
    if (data.length < offset + 5 + recordLength) return { kind: "incomplete" };
    chunks.push(data.subarray(offset + 5, offset + 5 + recordLength));
    have += recordLength;
    offset += 5 + recordLength;
    if (need < 0 && have >= 4) {
      const head = concat(chunks, 4);
      if (head[0] !== 0x01) return { kind: "malformed", why: "first handshake message is not a clienthello" };
      need = 4 + ((head[1] << 16) | (head[2] << 8) | head[3]);
      if (need > MAX_CLIENT_HELLO_BYTES) return { kind: "malformed", why: "clienthello too large" };
    }
  }
  // Trailing bytes of another handshake message in the same record would be odd for a client's
  // first flight; refuse rather than guess.
  if (have !== need) return { kind: "malformed", why: "data after clienthello in its records" };
  const message = concat(chunks, need);
  return bodyResult(parseClientHelloBody(message, 4, message.length), offset);
}

function bodyResult(serverName: string | null | Malformed, bytes: number): ClientHelloResult {
  if (typeof serverName === "object" && serverName !== null) return serverName;
  return { kind: "ok", serverName, bytes, encryptedClientHello: encryptedSeen };
}

/** Whether the ClientHello parseClientHelloBody last parsed carried an encrypted-name extension (read at once by bodyResult; parsing is synchronous). */
let encryptedSeen = false;

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    if (at >= length) break;
    const take = Math.min(chunk.length, length - at);
    out.set(chunk.subarray(0, take), at);
    at += take;
  }
  return out;
}

type Malformed = { kind: "malformed"; why: string };
const malformed = (why: string): Malformed => ({ kind: "malformed", why });

/**
 * Extension types seen in the ClientHello being parsed: a bitmap over the 16-bit type space, set
 * while parsing and cleared again (from `seenTypes`) before returning, so that finding a duplicate
 * costs O(1) and no allocation. Safe because parsing is synchronous.
 */
const seenBitmap = new Uint8Array(65536 / 8);
/** The types set in seenBitmap; a ClientHello of at most MAX_CLIENT_HELLO_BYTES holds fewer than this many extensions. */
const seenTypes = new Uint16Array(MAX_CLIENT_HELLO_BYTES / 4 + 1);

/**
 * Parses a ClientHello body, `b[start..end)` (after the 4-byte handshake header); returns the SNI,
 * null, or malformed.
 */
function parseClientHelloBody(b: Uint8Array, start: number, end: number): string | null | Malformed {
  let p = start;
  if (end - p < 2 + 32 + 1) return malformed("clienthello too short");
  p += 2; // legacy_version
  p += 32; // random
  const sessionIdLength = b[p++];
  if (sessionIdLength > 32 || end - p < sessionIdLength) return malformed("bad session id");
  p += sessionIdLength;
  if (end - p < 2) return malformed("truncated cipher suites");
  const suitesLength = (b[p] << 8) | b[p + 1];
  p += 2;
  if (suitesLength < 2 || suitesLength % 2 !== 0 || end - p < suitesLength) return malformed("bad cipher suites");
  p += suitesLength;
  if (end - p < 1) return malformed("truncated compression methods");
  const compressionLength = b[p++];
  if (compressionLength < 1 || end - p < compressionLength) return malformed("bad compression methods");
  p += compressionLength;
  encryptedSeen = false;
  if (end === p) return null; // no extensions at all (pre-TLS-1.2 style): no SNI
  if (end - p < 2) return malformed("truncated extensions");
  const extensionsLength = (b[p] << 8) | b[p + 1];
  p += 2;
  if (extensionsLength !== end - p) return malformed("extensions length mismatch");
  let seen = 0;
  try {
    let serverName: string | null = null;
    while (end > p) {
      if (end - p < 4) return malformed("truncated extension header");
      const type = (b[p] << 8) | b[p + 1];
      const length = (b[p + 2] << 8) | b[p + 3];
      p += 4;
      if (end - p < length) return malformed("truncated extension");
      const bit = 1 << (type & 7);
      if (seenBitmap[type >> 3] & bit) return malformed("duplicate extension");
      seenBitmap[type >> 3] |= bit;
      seenTypes[seen++] = type;
      if (type === 0) {
        const parsed = parseServerNameExtension(b, p, p + length);
        if (typeof parsed !== "string") return parsed;
        serverName = parsed;
      } else if (isEncryptedHelloType(type)) encryptedSeen = true;
      p += length;
    }
    return serverName;
  } finally {
    for (let i = 0; i < seen; i++) seenBitmap[seenTypes[i] >> 3] = 0;
  }
}

/** RFC 6066 §3: ServerNameList (`e[start..end)`) with exactly one host_name entry, ASCII, no trailing dot. */
function parseServerNameExtension(e: Uint8Array, start: number, end: number): string | Malformed {
  if (end - start < 2) return malformed("truncated server_name list");
  const listLength = (e[start] << 8) | e[start + 1];
  if (listLength !== end - start - 2 || listLength === 0) return malformed("server_name list length mismatch");
  let p = start + 2;
  let hostName: string | undefined;
  while (p < end) {
    if (end - p < 3) return malformed("truncated server_name entry");
    const nameType = e[p];
    const nameLength = (e[p + 1] << 8) | e[p + 2];
    p += 3;
    if (end - p < nameLength) return malformed("truncated server_name");
    if (nameType === 0) {
      if (hostName !== undefined) return malformed("more than one host_name");
      if (nameLength === 0) return malformed("empty host_name");
      for (let i = p; i < p + nameLength; i++) {
        const c = e[i];
        if (c <= 0x20 || c >= 0x7f) return malformed("host_name is not printable ascii");
      }
      hostName = Buffer.from(e.buffer, e.byteOffset + p, nameLength).toString("latin1");
    }
    p += nameLength;
  }
  if (hostName === undefined) return malformed("server_name without host_name");
  return hostName;
}
