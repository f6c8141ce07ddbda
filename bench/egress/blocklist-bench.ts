/**
 * Blocklist part of `npm run bench:egress`, run in its own Node process with --expose-gc so that its
 * memory numbers are the blocklist's alone. Prints one JSON line:
 *   {domains, loadMs, rssMiB, heapMiB, lookupNs, hits}
 * loadMs = parse (both formats) + build; rssMiB/heapMiB = growth after GC with the lists held the way
 * the proxy holds them (fingerprints + Blocklist tables); lookupNs = mean over 300k mixed hit/miss queries, best of 7 rounds.
 * Environment: BENCH_DOMAINS (default 350000).
 */
import { Blocklist, hashHosts } from "../../router/src/egress/blocklist";
import { parseBlocklistText } from "../../router/src/egress/blocklist-parse";
import { generateLists, generateQueries } from "./generate-lists";

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 350_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function settle(): NodeJS.MemoryUsage {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage();
}

function main(): void {
  let lists: ReturnType<typeof generateLists> | undefined = generateLists(DOMAINS);
  const queries = generateQueries(lists, 300_000);
  const texts = [lists.oisdDomainswild, lists.urlhausHosts];
  lists = undefined;
  const before = settle();
  const t0 = process.hrtime.bigint();
  // as the proxy does: parse, fingerprint, build; the list text and strings are then dropped
  const parsed = texts.map((t) => parseBlocklistText(t));
  const unparsed = parsed.reduce((n, p) => n + p.unparsedLines, 0);
  const hashed = parsed.map(hashHosts);
  parsed.length = 0;
  const blocklist = new Blocklist(hashed);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  texts.length = 0; // the proxy does not keep list text
  const after = settle();

  let hits = 0;
  for (let i = 0; i < 100_000; i++) if (blocklist.has(queries[i % queries.length])) hits++; // warm-up
  // Best of 7 rounds over all queries: the box's 2 cores are shared, and a round that another
  // process preempted says nothing about the lookup.
  hits = 0;
  const rounds = 7;
  let lookupNs = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < queries.length; i++) if (blocklist.has(queries[i])) hits++;
    lookupNs = Math.min(lookupNs, Number(process.hrtime.bigint() - t1) / queries.length);
  }
  const mib = (n: number): number => Math.round((n / 1048576) * 10) / 10;
  process.stdout.write(
    `${JSON.stringify({
      domains: blocklist.size,
      unparsed,
      loadMs: Math.round(loadMs),
      rssMiB: mib(after.rss - before.rss),
      heapMiB: mib(after.heapUsed - before.heapUsed),
      lookupNs: Math.round(lookupNs),
      hitRate: Math.round((hits / (rounds * queries.length)) * 100) / 100,
    })}\n`,
  );
}

main();
