// In-memory blocklist: exact hosts and "domain + all subdomains" entries, looked up by canonical host.
// Two hash sets; a lookup is one exact probe plus one probe per parent domain (≤ 127 for a 253-byte
// name, typically 2-4), so it is a handful of hash lookups — well under 1 µs (bench/egress measures it).
// Memory: V8 strings + Set entries, ~60-80 bytes per domain (350k domains ≈ 25-30 MiB).

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

/** An immutable blocklist built from parsed list files. */
export class Blocklist {
  private readonly exact: Set<string>;
  private readonly wildcard: Set<string>;

  /** Builds the union of `lists`; `sources` is kept only for reporting. */
  constructor(
    lists: readonly ParsedBlocklist[],
    readonly sources: readonly BlocklistSourceInfo[] = [],
  ) {
    this.exact = new Set();
    this.wildcard = new Set();
    for (const list of lists) {
      for (const h of list.exact) this.exact.add(h);
      for (const h of list.wildcard) this.wildcard.add(h);
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
    if (this.exact.has(host)) return { matched: true, entry: host, kind: "exact" };
    // Canonical names never end in a numeric label, so this is an IP literal: no parent domains.
    if (host.includes(":") || /^[0-9.]+$/.test(host)) return { matched: false };
    let at = 0;
    for (;;) {
      const suffix = at === 0 ? host : host.slice(at);
      if (this.wildcard.has(suffix)) return { matched: true, entry: suffix, kind: "wildcard" };
      const dot = host.indexOf(".", at);
      if (dot < 0) return { matched: false };
      at = dot + 1;
    }
  }

  /** True when {@link match} matches. */
  has(host: string): boolean {
    return this.match(host).matched;
  }
}
