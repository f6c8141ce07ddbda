/**
 * Load generation and statistics for bench/router (pure helpers + an undici client).
 */
import { Pool } from "undici";

/** Quantile (0..1) of a sample, nearest-rank on a sorted copy; NaN for an empty sample. */
export function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export const CHAT_BODY = JSON.stringify({ model: "bench-model", max_tokens: 16, messages: [{ role: "user", content: "Say ok." }] });

/** Sends `n` sequential chat requests to `origin` + `path`; returns each latency in ms. Throws on a non-200. */
export async function sequentialLatencies(origin: string, path: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const pool = new Pool(origin, { connections: 1 });
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      const res = await pool.request({ method: "POST", path, headers: { "content-type": "application/json", ...headers }, body: CHAT_BODY });
      await res.body.text();
      const t1 = process.hrtime.bigint();
      if (res.statusCode !== 200) throw new Error(`${origin}${path} answered ${res.statusCode}`);
      out.push(Number(t1 - t0) / 1e6);
    }
  } finally {
    await pool.close();
  }
  return out;
}

/**
 * Sends `n` rounds of one sequential chat request to each origin in turn (A, B, A, B, …), each over its
 * own keep-alive connection; returns each origin's latencies in ms. Interleaving makes background load
 * on a shared box fall on every origin alike, so differences between their quantiles are the
 * origins', not the moment's. Throws on a non-200.
 */
export async function interleavedLatencies(origins: readonly string[], path: string, n: number, headers: Record<string, string> = {}): Promise<number[][]> {
  const pools = origins.map(o => new Pool(o, { connections: 1 }));
  const out = origins.map(() => [] as number[]);
  try {
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < pools.length; k++) {
        const t0 = process.hrtime.bigint();
        const res = await pools[k].request({ method: "POST", path, headers: { "content-type": "application/json", ...headers }, body: CHAT_BODY });
        await res.body.text();
        const t1 = process.hrtime.bigint();
        if (res.statusCode !== 200) throw new Error(`${origins[k]}${path} answered ${res.statusCode}`);
        out[k].push(Number(t1 - t0) / 1e6);
      }
    }
  } finally {
    await Promise.all(pools.map(p => p.close()));
  }
  return out;
}

/** Runs `concurrency` request loops against `origin` + `path` for `durationMs`; returns ok requests/s and errors. */
export async function throughput(origin: string, path: string, concurrency: number, durationMs: number, headers: Record<string, string> = {}): Promise<{ rps: number; errors: number }> {
  const pool = new Pool(origin, { connections: concurrency });
  let ok = 0;
  let errors = 0;
  const end = Date.now() + durationMs;
  const t0 = Date.now();
  const loop = async () => {
    while (Date.now() < end) {
      try {
        const res = await pool.request({ method: "POST", path, headers: { "content-type": "application/json", ...headers }, body: CHAT_BODY });
        await res.body.text();
        if (res.statusCode === 200) ok++;
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const seconds = (Date.now() - t0) / 1000;
  await pool.close();
  return { rps: ok / seconds, errors };
}
