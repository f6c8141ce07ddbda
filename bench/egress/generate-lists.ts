/**
 * Generates blocklists in the real published formats (PITFALLS "Blocklist formats": they cannot be
 * downloaded here): OISD "domains (wildcards)" and URLhaus' hosts file, with header fields, and the
 * queries used to measure lookups. Deterministic (seeded), so runs are comparable.
 */

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TLDS = ["com", "net", "org", "io", "xyz", "info", "ru", "de", "top", "online"];

function label(rand: () => number, min = 3, max = 14): string {
  const n = min + Math.floor(rand() * (max - min + 1));
  let s = "";
  for (let i = 0; i < n; i++) s += "abcdefghijklmnopqrstuvwxyz0123456789"[Math.floor(rand() * (i === 0 ? 26 : 36))];
  return s;
}

/** A random registrable-looking domain with 0-2 extra labels, e.g. "cdn.trk9x.xyz". */
export function randomDomain(rand: () => number): string {
  const extra = Math.floor(rand() * 3);
  const parts = [];
  for (let i = 0; i < extra; i++) parts.push(label(rand, 2, 8));
  parts.push(label(rand), TLDS[Math.floor(rand() * TLDS.length)]);
  return parts.join(".");
}

/** The generated lists and their domains. */
export interface GeneratedLists {
  oisdDomainswild: string;
  urlhausHosts: string;
  wildcardDomains: string[];
  exactDomains: string[];
}

/** `total` distinct domains: 6/7 in an OISD domainswild list, 1/7 in a URLhaus hosts file. */
export function generateLists(total: number, seed = 42): GeneratedLists {
  const rand = prng(seed);
  const seen = new Set<string>();
  while (seen.size < total) seen.add(randomDomain(rand));
  const all = [...seen];
  const split = Math.floor((total * 6) / 7);
  const wildcardDomains = all.slice(0, split);
  const exactDomains = all.slice(split);
  const oisdDomainswild = [
    "# Title: oisd big (generated for kars bench)",
    "# Version: 202611300000",
    "# Last modified: 2026-11-30T00:00:00+0000",
    "# Syntax: Domains (including possible subdomains)",
    `# Entries: ${wildcardDomains.length}`,
    ...wildcardDomains.map((d) => `*.${d}`),
    "",
  ].join("\n");
  const urlhausHosts = [
    "################################################################",
    "# abuse.ch URLhaus Host file (generated for kars bench)",
    "# Last updated: 2026-11-30 00:00:00 (UTC)",
    "################################################################",
    "127.0.0.1\tlocalhost",
    ...exactDomains.map((d) => `127.0.0.1\t${d}`),
    "",
  ].join("\n");
  return { oisdDomainswild, urlhausHosts, wildcardDomains, exactDomains };
}

/** Lookup queries: a third exact hits, a third subdomains of wildcard entries, a third misses. */
export function generateQueries(lists: GeneratedLists, count: number, seed = 7): string[] {
  const rand = prng(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 3;
    if (kind === 0) out.push(lists.exactDomains[Math.floor(rand() * lists.exactDomains.length)]);
    else if (kind === 1) out.push(`${label(rand, 2, 6)}.${label(rand, 2, 6)}.${lists.wildcardDomains[Math.floor(rand() * lists.wildcardDomains.length)]}`);
    else out.push(`${label(rand, 2, 6)}.${randomDomain(rand)}`);
  }
  return out;
}
