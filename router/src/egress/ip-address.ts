// IP address parsing and "is this a public destination?" classification for the egress proxy.
// Sources: RFC 6890 (special-purpose address registries) and the IANA IPv4/IPv6 special-purpose
// registries, RFC 1918, RFC 6598 (CGNAT), RFC 4291 (IPv6 addressing, IPv4-mapped), RFC 6052 (NAT64
// 64:ff9b::/96), RFC 8215 (64:ff9b:1::/48), RFC 3056 (6to4), RFC 4380 (Teredo), RFC 5737 / RFC 3849 /
// RFC 9637 (documentation), RFC 2544 (benchmarking), RFC 4193 (ULA).
//
// Fails closed: an address this module cannot parse is "not public", and for IPv6 only the global
// unicast block 2000::/3 minus its special-purpose sub-blocks is public at all.

import { isIPv4, isIPv6 } from "node:net";

/** Why an address is not a public destination; a bounded set (used as a metrics/audit reason). */
export type NonPublicReason =
  | "unparseable"
  | "unspecified"
  | "loopback"
  | "private"
  | "cgnat"
  | "link_local"
  | "multicast"
  | "broadcast"
  | "reserved"
  | "documentation"
  | "benchmarking"
  | "ipv4_mapped"
  | "nat64"
  | "6to4"
  | "teredo"
  | "unique_local";

/** Result of {@link classifyAddress}: `public` or the reason it is not. */
export type AddressClass = { public: true } | { public: false; reason: NonPublicReason };

/**
 * Parses a canonical dotted-quad IPv4 literal ("a.b.c.d", each 0..255, decimal) into an unsigned
 * 32-bit integer. Returns undefined for anything else: the lenient numeric spellings (decimal, octal,
 * hex, short forms) are turned into dotted quads by `normaliseHost`, never here.
 */
export function parseIPv4(text: string): number | undefined {
  if (!isIPv4(text)) return undefined;
  const parts = text.split(".");
  let value = 0;
  for (const part of parts) value = value * 256 + Number(part);
  return value >>> 0;
}

/**
 * Parses an IPv6 literal (RFC 4291 §2.2 text forms, including "::" and a trailing dotted IPv4, no
 * zone id, no brackets) into eight 16-bit groups. Returns undefined if the text is not IPv6.
 */
export function parseIPv6(text: string): number[] | undefined {
  if (!isIPv6(text) || text.includes("%")) return undefined;
  let head = text;
  const tailV4: number[] = [];
  const lastColon = head.lastIndexOf(":");
  const lastPart = head.slice(lastColon + 1);
  if (lastPart.includes(".")) {
    const v4 = parseIPv4(lastPart);
    if (v4 === undefined) return undefined;
    tailV4.push(v4 >>> 16, v4 & 0xffff);
    head = head.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::", "a::1.2.3.4" leaves "a::", "a:b:c:d:e:f:1.2.3.4" leaves "a:...:f:"
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const toGroups = (s: string): number[] => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)));
  let groups: number[];
  const gap = head.indexOf("::");
  if (gap >= 0) {
    const left = toGroups(head.slice(0, gap));
    const right = toGroups(head.slice(gap + 2)).concat(tailV4);
    const zeros = 8 - left.length - right.length;
    if (zeros < 0) return undefined;
    groups = left.concat(new Array<number>(zeros).fill(0), right);
  } else {
    groups = toGroups(head).concat(tailV4);
  }
  if (groups.length !== 8 || groups.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  return groups;
}

/** Formats eight 16-bit groups as the RFC 5952 canonical IPv6 text (lower case, longest zero run "::"). */
export function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Formats an unsigned 32-bit integer as a dotted quad. */
export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

type V4Block = readonly [base: string, prefix: number, reason: NonPublicReason];

// RFC 6890 / IANA IPv4 special-purpose registry: every block that is not "globally reachable", plus
// the deprecated 6to4 relay anycast block. Order matters only for the reason reported.
const V4_BLOCKS: readonly V4Block[] = [
  ["0.0.0.0", 8, "unspecified"], // "this network"; 0.0.0.0 itself is the unspecified address
  ["10.0.0.0", 8, "private"], // RFC 1918
  ["100.64.0.0", 10, "cgnat"], // RFC 6598 shared address space
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link_local"], // includes 169.254.169.254 (cloud metadata)
  ["172.16.0.0", 12, "private"], // RFC 1918
  ["192.0.0.0", 24, "reserved"], // IETF protocol assignments
  ["192.0.2.0", 24, "documentation"], // TEST-NET-1, RFC 5737
  ["192.88.99.0", 24, "6to4"], // 6to4 relay anycast, RFC 7526 (deprecated)
  ["192.168.0.0", 16, "private"], // RFC 1918
  ["198.18.0.0", 15, "benchmarking"], // RFC 2544
  ["198.51.100.0", 24, "documentation"], // TEST-NET-2
  ["203.0.113.0", 24, "documentation"], // TEST-NET-3
  ["224.0.0.0", 4, "multicast"],
  ["255.255.255.255", 32, "broadcast"],
  ["240.0.0.0", 4, "reserved"], // future use (checked after broadcast so that reason wins)
];

const V4_TABLE = V4_BLOCKS.map(([base, prefix, reason]) => {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { net: ((parseIPv4(base) as number) & mask) >>> 0, mask, reason };
});

/** Classifies an IPv4 address given as an unsigned 32-bit integer (see {@link classifyAddress}). */
export function classifyIPv4(value: number): AddressClass {
  for (const block of V4_TABLE) {
    if (((value & block.mask) >>> 0) === block.net) return { public: false, reason: block.reason };
  }
  return { public: true };
}

/** True when the first `bits` bits of `groups` equal those of `prefix` (both eight 16-bit groups). */
function inPrefix(groups: readonly number[], prefix: readonly number[], bits: number): boolean {
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((groups[i] & mask) !== (prefix[i] & mask)) return false;
  }
  return true;
}

type V6Block = readonly [prefix: number[], bits: number, reason: NonPublicReason];

// Non-global sub-blocks of 2000::/3 (IANA IPv6 special-purpose registry). Everything outside
// 2000::/3 is refused by classifyIPv6 before this table is consulted.
const V6_GLOBAL_EXCEPTIONS: readonly V6Block[] = [
  [[0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "teredo"], // RFC 4380
  [[0x2001, 0x0002, 0, 0, 0, 0, 0, 0], 48, "benchmarking"], // RFC 5180
  [[0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32, "documentation"], // RFC 3849
  [[0x2001, 0x0010, 0, 0, 0, 0, 0, 0], 28, "reserved"], // ORCHID (deprecated)
  [[0x2001, 0x0020, 0, 0, 0, 0, 0, 0], 28, "reserved"], // ORCHIDv2, RFC 7343
  [[0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "reserved"], // rest of the IETF protocol assignments block
  [[0x2002, 0, 0, 0, 0, 0, 0, 0], 16, "6to4"], // RFC 3056
  [[0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation"], // RFC 9637
];

/** Classifies an IPv6 address given as eight 16-bit groups (see {@link classifyAddress}). */
export function classifyIPv6(g: readonly number[]): AddressClass {
  const allZeroUpTo = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  if (allZeroUpTo(8)) return { public: false, reason: "unspecified" };
  if (allZeroUpTo(7) && g[7] === 1) return { public: false, reason: "loopback" };
  if (allZeroUpTo(5) && g[5] === 0xffff) return { public: false, reason: "ipv4_mapped" }; // ::ffff:a.b.c.d
  if (allZeroUpTo(4) && g[4] === 0xffff && g[5] === 0) return { public: false, reason: "ipv4_mapped" }; // SIIT ::ffff:0:a.b.c.d
  if (allZeroUpTo(6)) return { public: false, reason: "ipv4_mapped" }; // deprecated IPv4-compatible ::a.b.c.d
  if (inPrefix(g, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)) return { public: false, reason: "nat64" }; // RFC 6052
  if (inPrefix(g, [0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48)) return { public: false, reason: "nat64" }; // RFC 8215
  if (inPrefix(g, [0xff00, 0, 0, 0, 0, 0, 0, 0], 8)) return { public: false, reason: "multicast" };
  if (inPrefix(g, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10)) return { public: false, reason: "link_local" };
  if (inPrefix(g, [0xfec0, 0, 0, 0, 0, 0, 0, 0], 10)) return { public: false, reason: "reserved" }; // site-local
  if (inPrefix(g, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7)) return { public: false, reason: "unique_local" };
  if (!inPrefix(g, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)) return { public: false, reason: "reserved" };
  for (const [prefix, bits, reason] of V6_GLOBAL_EXCEPTIONS) {
    if (inPrefix(g, prefix, bits)) return { public: false, reason };
  }
  return { public: true };
}

/**
 * Classifies an IP address literal as a public destination or not (DESIGN §6: refuse loopback,
 * link-local incl. 169.254.169.254, RFC 1918, CGNAT, unspecified, multicast, NAT64/6to4/Teredo and
 * IPv4-mapped forms). Input: canonical text as returned by DNS resolution or `normaliseHost`
 * (dotted-quad IPv4, or IPv6 without brackets or zone). Anything unparseable is not public.
 * IPv6 forms that embed an IPv4 address are refused whatever the embedded address is: the proxy never
 * needs them to reach a public host, and an embedded address is an easy way to smuggle a private one.
 */
export function classifyAddress(address: string): AddressClass {
  const v4 = parseIPv4(address);
  if (v4 !== undefined) return classifyIPv4(v4);
  const v6 = parseIPv6(address);
  if (v6 !== undefined) return classifyIPv6(v6);
  return { public: false, reason: "unparseable" };
}
