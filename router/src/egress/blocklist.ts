// In-memory blocklist: exact hosts and "domain + all subdomains" entries, looked up by canonical host.
//
// Layout: entries are not kept as strings. Each is reduced to a 64-bit fingerprint (two independent
// 32-bit polynomial hashes computed right to left over its characters) stored in an open-addressing
// table of typed arrays. Because the hash runs right to left, one pass over a host yields the
// fingerprint of every parent-domain suffix at its label boundary, so a lookup is one loop over the
// host's characters plus one table probe per label — no allocation, well under 1 µs for 350k entries
// (bench/egress measures it), ~10 MiB of tables.
//
// Correctness direction: a blocklisted host always matches (equal strings have equal fingerprints).
// The only possible error is a 64-bit fingerprint collision making an unlisted host match, which
// fails closed (a denial) and is vanishingly rare for real names.

import type { BlocklistHeader, ParsedBlocklist } from "./blocklist-parse";

/** Why a host matched, for the audit record. */
export type BlocklistMatch = { matched: false } | { matched: true; entry: string; kind: "exact" | "wildcard" };

/** Summary of what was loaded from one source (a seed file or a refreshed URL). */
export interface BlocklistSourceInfo {
  /** File path or URL; configuration, never attacker-controlled. */
  source: string;
  entries: number;
  unparsedLines: number;
  header: BlocklistHeader;
}

/** One list reduced to fingerprints: `[h1, h2, h1, h2, …]` per kind. Keeps no strings alive. */
export interface HashedHosts {
  exact: Uint32Array;
  wildcard: Uint32Array;
}

const B1 = 0x01000193; // FNV prime
const B2 = 0x5bd1e995; // MurmurHash2 multiplier

/** Fingerprints every entry of a parsed list (see the module comment). */
export function hashHosts(parsed: ParsedBlocklist): HashedHosts {
  const toPairs = (hosts: readonly string[]): Uint32Array => {
    const out = new Uint32Array(hosts.length * 2);
    for (let i = 0; i < hosts.length; i++) {
      const host = hosts[i];
      let h1 = 0;
      let h2 = 0;
      let p1 = 1;
      let p2 = 1;
      for (let j = host.length - 1; j >= 0; j--) {
        const c = host.charCodeAt(j) + 1;
        h1 = (h1 + Math.imul(c, p1)) | 0;
        h2 = (h2 + Math.imul(c, p2)) | 0;
        p1 = Math.imul(p1, B1);
        p2 = Math.imul(p2, B2);
      }
      out[2 * i] = h1 >>> 0;
      out[2 * i + 1] = h2 >>> 0;
    }
    return out;
  };
  return { exact: toPairs(parsed.exact), wildcard: toPairs(parsed.wildcard) };
}

/**
 * An open-addressing set of 64-bit fingerprints, stored interleaved as [h1, h2, h1, h2, …] so that a
 * probe touches one cache line; (0,0) marks an empty slot.
 */
class FingerprintSet {
  private readonly slots: Uint32Array;
  private readonly mask: number;
  size = 0;

  constructor(capacityHint: number) {
    let cap = 16;
    while (cap < capacityHint * 2) cap *= 2;
    this.slots = new Uint32Array(cap * 2);
    this.mask = cap - 1;
  }

  private static slot(h1: number, h2: number): number {
    // fmix32 of the combined hashes, so that similar suffixes spread over the table
    let h = (h1 ^ Math.imul(h2, 0x9e3779b1)) | 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  add(h1: number, h2: number): void {
    if (h1 === 0 && h2 === 0) h2 = 1; // keep (0,0) as the empty marker
    const slots = this.slots;
    let i = FingerprintSet.slot(h1, h2) & this.mask;
    for (;;) {
      const x = slots[2 * i];
      const y = slots[2 * i + 1];
      if (x === 0 && y === 0) {
        slots[2 * i] = h1;
        slots[2 * i + 1] = h2;
        this.size++;
        return;
      }
      if (x === h1 && y === h2) return;
      i = (i + 1) & this.mask;
    }
  }

  has(h1: number, h2: number): boolean {
    if (h1 === 0 && h2 === 0) h2 = 1;
    const slots = this.slots;
    let i = FingerprintSet.slot(h1, h2) & this.mask;
    for (;;) {
      const x = slots[2 * i];
      const y = slots[2 * i + 1];
      if (x === h1 && y === h2) return true;
      if (x === 0 && y === 0) return false;
      i = (i + 1) & this.mask;
    }
  }
}

const NOT_FOUND = -1;
const EXACT = -2;
const NO_MATCH: BlocklistMatch = Object.freeze({ matched: false });

function isParsed(list: ParsedBlocklist | HashedHosts): list is ParsedBlocklist {
  return Array.isArray((list as ParsedBlocklist).exact);
}

/** An immutable blocklist built from parsed (or already fingerprinted) list files. */
export class Blocklist {
  private readonly exact: FingerprintSet;
  private readonly wildcard: FingerprintSet;

  /** Builds the union of `lists`; `sources` is kept only for reporting. */
  constructor(
    lists: readonly (ParsedBlocklist | HashedHosts)[],
    readonly sources: readonly BlocklistSourceInfo[] = [],
  ) {
    const hashed = lists.map((l) => (isParsed(l) ? hashHosts(l) : l));
    const count = (k: "exact" | "wildcard"): number => hashed.reduce((n, h) => n + h[k].length / 2, 0);
    this.exact = new FingerprintSet(count("exact"));
    this.wildcard = new FingerprintSet(count("wildcard"));
    for (const h of hashed) {
      for (let i = 0; i < h.exact.length; i += 2) this.exact.add(h.exact[i], h.exact[i + 1]);
      for (let i = 0; i < h.wildcard.length; i += 2) this.wildcard.add(h.wildcard[i], h.wildcard[i + 1]);
    }
  }

  /** An empty list (nothing blocked). */
  static empty(): Blocklist {
    return new Blocklist([]);
  }

  /** Number of distinct entries (exact + wildcard). */
  get size(): number {
    return this.exact.size + this.wildcard.size;
  }

  /**
   * Looks up a canonical host (output of `normaliseHost`; IP literals match only exact entries).
   * Matches: an exact entry equal to `host`; a wildcard entry equal to `host` or to any parent
   * domain of it ("a.b.example.com" → "b.example.com", "example.com", "com"). Label boundaries are
   * respected: "*.example.com" never matches "thisexample.com".
   */
  match(host: string): BlocklistMatch {
    const at = this.find(host);
    if (at === NOT_FOUND) return NO_MATCH;
    if (at === EXACT) return { matched: true, entry: host, kind: "exact" };
    return { matched: true, entry: host.slice(at), kind: "wildcard" };
  }

  /** True when {@link match} matches. Allocation-free. */
  has(host: string): boolean {
    return this.find(host) !== NOT_FOUND;
  }

  /** NOT_FOUND, EXACT, or the index where the matching wildcard suffix starts. */
  private find(host: string): number {
    const last = host.charCodeAt(host.length - 1);
    const isIp = host.includes(":") || (last >= 48 && last <= 57 && /^[0-9.]+$/.test(host));
    let h1 = 0;
    let h2 = 0;
    let p1 = 1;
    let p2 = 1;
    for (let j = host.length - 1; j >= 0; j--) {
      const c = host.charCodeAt(j) + 1;
      h1 = (h1 + Math.imul(c, p1)) | 0;
      h2 = (h2 + Math.imul(c, p2)) | 0;
      p1 = Math.imul(p1, B1);
      p2 = Math.imul(p2, B2);
      // host[j..] is a whole domain when it starts the host or follows a dot. The first hit going
      // leftwards is the widest blocked parent, reported as the entry that matched.
      if (!isIp && (j === 0 || host.charCodeAt(j - 1) === 46) && this.wildcard.has(h1 >>> 0, h2 >>> 0)) return j;
    }
    return this.exact.has(h1 >>> 0, h2 >>> 0) ? EXACT : NOT_FOUND;
  }
}
