/**
 * Blocklist part of `npm run bench:egress`. Prints one JSON line:
 *   {domains, unparsed, loadMs, rssMiB, heapMiB, lookupNs, hitRate}
 *
 * Two processes, so that the memory numbers are the blocklist's alone:
 * - `blocklist-bench.ts` generates BENCH_DOMAINS domains as an OISD domainswild list and a URLhaus
 *   hosts file, plus 300k lookup queries, into a temporary directory, then runs
 * - `blocklist-bench.ts measure DIR` in a fresh Node (--expose-gc): baseline after GC; then, as the
 *   proxy does, read both files, parse, fingerprint and build the Blocklist, and drop the text; after
 *   GC, rssMiB = RSS growth (what the process pays, freed-but-kept pages included) and heapMiB =
 *   growth of V8 heap + off-heap buffers (what the Blocklist retains). loadMs = read + parse + build.
 *   Then lookupNs = mean over the queries (a third exact hits, a third subdomain hits, a third
 *   misses), best of 7 rounds: the box's 2 cores are shared, and a preempted round says nothing
 *   about the lookup.
 * Environment: BENCH_DOMAINS (default 350000).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Blocklist, hashHosts } from "../../router/src/egress/blocklist";
import { parseBlocklistText } from "../../router/src/egress/blocklist-parse";
import { generateLists, generateQueries } from "./generate-lists";

const DOMAINS = Number(process.env.BENCH_DOMAINS ?? 350_000);
const FILES = { oisd: "oisd-domainswild.txt", urlhaus: "urlhaus-hosts.txt", queries: "queries.txt" };

function generate(): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kars-b-blocklist-"));
  try {
    const lists = generateLists(DOMAINS);
    writeFileSync(path.join(dir, FILES.oisd), lists.oisdDomainswild);
    writeFileSync(path.join(dir, FILES.urlhaus), lists.urlhausHosts);
    writeFileSync(path.join(dir, FILES.queries), generateQueries(lists, 300_000).join("\n"));
    const r = spawnSync(process.execPath, ["--expose-gc", "--require", "tsx/cjs", __filename, "measure", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    if (r.status !== 0) throw new Error(`blocklist measure failed (${r.status})`);
    process.stdout.write(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function measure(dir: string): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const settle = (): NodeJS.MemoryUsage => {
    for (let i = 0; i < 3; i++) gc();
    return process.memoryUsage();
  };
  const before = settle();
  const t0 = performance.now();
  // as the config store does: read, parse, fingerprint, build; the text and parsed strings are dropped
  let unparsed = 0;
  const hashed = [FILES.oisd, FILES.urlhaus].map((f) => {
    const parsed = parseBlocklistText(readFileSync(path.join(dir, f), "utf8"));
    unparsed += parsed.unparsedLines;
    return hashHosts(parsed);
  });
  const blocklist = new Blocklist(hashed);
  hashed.length = 0;
  const loadMs = performance.now() - t0;
  const after = settle();

  const queries = readFileSync(path.join(dir, FILES.queries), "utf8").split("\n");
  let hits = 0;
  for (let i = 0; i < 100_000; i++) if (blocklist.has(queries[i % queries.length])) hits++; // warm-up
  hits = 0;
  const rounds = 7;
  let lookupNs = Infinity;
  for (let r = 0; r < rounds; r++) {
    const t1 = process.hrtime.bigint();
    for (let i = 0; i < queries.length; i++) if (blocklist.has(queries[i])) hits++;
    lookupNs = Math.min(lookupNs, Number(process.hrtime.bigint() - t1) / queries.length);
  }
  const mib = (n: number): number => Math.round((n / 1048576) * 10) / 10;
  const retained = (m: NodeJS.MemoryUsage): number => m.heapUsed + m.external;
  process.stdout.write(
    `${JSON.stringify({
      domains: blocklist.size,
      unparsed,
      loadMs: Math.round(loadMs),
      rssMiB: mib(after.rss - before.rss),
      heapMiB: mib(retained(after) - retained(before)),
      lookupNs: Math.round(lookupNs),
      hitRate: Math.round((hits / (rounds * queries.length)) * 100) / 100,
    })}\n`,
  );
}

if (process.argv[2] === "measure") measure(process.argv[3]);
else generate();
