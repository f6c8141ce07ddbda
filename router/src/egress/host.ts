// Host normalisation: one canonical spelling for every way an agent can write a destination, so that
// the blocklist, the allowlist and the dialer all compare the same string.
// Sources: WHATWG URL Standard "host parsing" (IPv4 number parsing: decimal, octal, hex and short
// dotted forms, the same forms glibc's inet_aton accepts; domain to ASCII with UTS #46), RFC 1035
// §2.3.4 (label/name lengths), RFC 4291 / RFC 5952 (IPv6 text forms), RFC 6874 (zone ids: refused).
//
// Attacker-controlled input (CONNECT authority, Host header, SNI). Fails closed: anything that is not
// clearly a DNS name or an IP literal is refused with a reason.

import { domainToASCII } from "node:url";
import { formatIPv4, formatIPv6, parseIPv6 } from "./ip-address";

/** A destination host in canonical form. `name` is lower-case ASCII (A-labels), no trailing dot. */
export type CanonicalHost =
  | { kind: "name"; name: string }
  | { kind: "ipv4"; name: string }
  | { kind: "ipv6"; name: string };

/** Why a host string was refused by {@link normaliseHost}; a bounded set. */
export type HostRefusal =
  | "empty"
  | "too_long"
  | "bad_character"
  | "zone_id"
  | "bad_ip_literal"
  | "bad_idna"
  | "bad_label";

/** Result of {@link normaliseHost}. */
export type NormaliseResult = { ok: true; host: CanonicalHost } | { ok: false; reason: HostRefusal };

const MAX_INPUT = 1024;
// Characters that would make the URL parser treat the input as more than a host, or that no host
// contains: whitespace and controls, userinfo/port/path/query/fragment delimiters, percent-encoding.
const FORBIDDEN = /[\u0000-\u0020\u007f/\\?#@%:<>^|[\]"'`{}]/;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Turns an attacker-supplied host (from a CONNECT authority, absolute URL, Host header or SNI; port
 * already removed; IPv6 may be bracketed) into its canonical form:
 * - IPv6 literals (bracketed or not) → RFC 5952 text; zone ids are refused.
 * - Anything whose last label is numeric is parsed the WHATWG/inet_aton way ("2130706433",
 *   "0x7f.1", "0177.0.0.1", "127.1" → "127.0.0.1"); an invalid number there is refused, never treated
 *   as a name, because resolvers would treat it as an address.
 * - Names: UTS #46 mapping and Punycode (url.domainToASCII), lower case, one trailing dot removed,
 *   labels 1..63 of [a-z0-9_-], total ≤ 253.
 * Never throws. Idempotent: normalising a canonical name returns it unchanged.
 */
export function normaliseHost(input: string): NormaliseResult {
  if (input.length === 0) return { ok: false, reason: "empty" };
  if (input.length > MAX_INPUT) return { ok: false, reason: "too_long" };
  let text = input;
  if (text.startsWith("[") || text.endsWith("]")) {
    if (!(text.startsWith("[") && text.endsWith("]"))) return { ok: false, reason: "bad_ip_literal" };
    text = text.slice(1, -1);
    if (text.includes("%")) return { ok: false, reason: "zone_id" };
    const groups = parseIPv6(text);
    if (!groups) return { ok: false, reason: "bad_ip_literal" };
    return { ok: true, host: { kind: "ipv6", name: formatIPv6(groups) } };
  }
  if (text.includes(":")) {
    if (text.includes("%")) return { ok: false, reason: "zone_id" };
    const groups = parseIPv6(text);
    if (!groups) return { ok: false, reason: "bad_character" };
    return { ok: true, host: { kind: "ipv6", name: formatIPv6(groups) } };
  }
  if (FORBIDDEN.test(text)) return { ok: false, reason: "bad_character" };

  // UTS #46 + Punycode. domainToASCII returns "" for names it refuses.
  const ascii = isPlainAscii(text) ? text.toLowerCase() : domainToASCII(text);
  if (ascii === "") return { ok: false, reason: "bad_idna" };
  // The mapping can produce new delimiters (e.g. fullwidth solidus → "/"): check again.
  if (FORBIDDEN.test(ascii)) return { ok: false, reason: "bad_character" };

  const labels = ascii.split(".");
  if (labels.length > 1 && labels[labels.length - 1] === "") labels.pop(); // one trailing dot
  const last = labels[labels.length - 1] ?? "";
  if (/^(?:0x[0-9a-f]*|[0-9]+)$/.test(last)) {
    const v4 = parseLenientIPv4(labels);
    if (v4 === undefined) return { ok: false, reason: "bad_ip_literal" };
    return { ok: true, host: { kind: "ipv4", name: formatIPv4(v4) } };
  }
  const name = labels.join(".");
  if (name.length > 253) return { ok: false, reason: "too_long" };
  for (const label of labels) {
    if (!LABEL.test(label)) return { ok: false, reason: "bad_label" };
  }
  return { ok: true, host: { kind: "name", name } };
}

function isPlainAscii(text: string): boolean {
  return /^[A-Za-z0-9._-]+$/.test(text) && !/(^|\.)xn--/i.test(text);
}

/**
 * WHATWG "IPv4 parser": 1-4 parts, each decimal, octal (leading 0) or hex (0x); all parts but the
 * last < 256, the last fills the remaining bytes. Returns undefined when invalid.
 */
function parseLenientIPv4(parts: string[]): number | undefined {
  if (parts.length === 0 || parts.length > 4) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = parseIPv4Number(part);
    if (n === undefined) return undefined;
    numbers.push(n);
  }
  for (let i = 0; i < numbers.length - 1; i++) if (numbers[i] > 255) return undefined;
  const lastValue = numbers[numbers.length - 1];
  if (lastValue >= 256 ** (5 - numbers.length)) return undefined;
  let value = lastValue;
  for (let i = 0; i < numbers.length - 1; i++) value += numbers[i] * 256 ** (3 - i);
  return value >>> 0;
}

function parseIPv4Number(part: string): number | undefined {
  if (part === "") return undefined;
  let digits = part;
  let radix = 10;
  if (/^0x/.test(digits)) {
    digits = digits.slice(2);
    radix = 16;
    if (digits === "") return 0; // WHATWG: "0x" alone is zero
    if (!/^[0-9a-f]+$/.test(digits)) return undefined;
  } else if (digits.length > 1 && digits.startsWith("0")) {
    digits = digits.slice(1);
    radix = 8;
    if (!/^[0-7]+$/.test(digits)) return undefined;
  } else if (!/^[0-9]+$/.test(digits)) {
    return undefined;
  }
  if (digits.length > 40) return undefined; // far beyond 2^32 in any radix; avoid huge numbers
  const n = parseInt(digits, radix);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Splits an authority ("host:port", "[v6]:port", or bare host) into host text and port. Used for
 * CONNECT request targets (RFC 9110 §9.3.6, authority-form) and Host headers (RFC 9110 §7.2).
 * Returns undefined if the port is present but not 1..65535 decimal, or the form is malformed.
 */
export function splitAuthority(authority: string, defaultPort?: number): { host: string; port: number } | undefined {
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    if (end < 0) return undefined;
    host = authority.slice(0, end + 1);
    const rest = authority.slice(end + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      if (authority.indexOf(":") !== colon) return undefined; // bare IPv6 without brackets
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    } else {
      host = authority;
    }
  }
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
  }
  if (port === undefined || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/**
 * The canonical form of an allowlist entry's host (profile.json `allowedEndpoints[].host`, approvals):
 * a host normaliseHost accepts, or `*.` + a domain name (every subdomain of it, not the name itself).
 * Both readers of profile.json (the inference side's parseProfile and the egress proxy) judge entries
 * with this one function, so that they accept exactly the same files. Never throws.
 */
export function canonicalEndpointHost(text: string): { ok: true; host: string } | { ok: false; reason: string } {
  const wildcard = text.startsWith("*.");
  const n = normaliseHost(wildcard ? text.slice(2) : text);
  if (!n.ok) return { ok: false, reason: `not a valid host (${n.reason}): ${JSON.stringify(text)}` };
  if (wildcard && n.host.kind !== "name") return { ok: false, reason: "a wildcard needs a domain name" };
  return { ok: true, host: wildcard ? `*.${n.host.name}` : n.host.name };
}
