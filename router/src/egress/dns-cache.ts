// A small positive cache in front of the resolver. getaddrinfo gives no TTLs, so answers are kept
// for a short fixed time (default 5 s), which spares the libuv threadpool round trip and the
// /etc/hosts + resolv.conf work on every tunnel. Safe for the public-address check: the decision
// checks whatever addresses come back, cached or not, and dials exactly one of them; the cache only
// changes how fresh they are, by at most `ttlMs`. Failures are never cached.

import type { Resolver } from "./decision";

/** Options of {@link cachingResolver}; times in ms. */
export interface DnsCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

/**
 * Wraps `resolve` with a bounded cache (least recently inserted entries are evicted first).
 * Concurrent lookups of the same name share one resolution. `ttlMs` 0 disables caching. The
 * returned resolver's `cached(name)` gives a fresh cached answer synchronously (undefined otherwise).
 */
export function cachingResolver(resolve: Resolver, opts: DnsCacheOptions = {}): Resolver {
  const ttlMs = opts.ttlMs ?? 5_000;
  const maxEntries = opts.maxEntries ?? 4_096;
  const now = opts.now ?? Date.now;
  if (ttlMs <= 0) return resolve;
  const cache = new Map<string, { addresses: string[]; expires: number }>();
  const inflight = new Map<string, Promise<string[]>>();
  const cached = (name: string): string[] | undefined => {
    const hit = cache.get(name);
    if (hit && hit.expires > now()) return hit.addresses;
    if (hit) cache.delete(name);
    return undefined;
  };
  const caching: Resolver = async (name) => {
    const hit = cached(name);
    if (hit) return hit;
    const pending = inflight.get(name);
    if (pending) return pending;
    const lookup = resolve(name).then(
      (addresses) => {
        inflight.delete(name);
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
        cache.set(name, { addresses, expires: now() + ttlMs });
        return addresses;
      },
      (err: unknown) => {
        inflight.delete(name);
        throw err;
      },
    );
    inflight.set(name, lookup);
    return lookup;
  };
  caching.cached = cached;
  return caching;
}
