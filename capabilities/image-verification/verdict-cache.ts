/**
 * A bounded cache with a time to live: entries expire `ttlMs` after they were set, and beyond
 * `maxEntries` the least recently set one goes first. Times are ms from the caller's clock.
 * Used for verified verdicts, keyed by (digest, policy generations): a verdict for a digest never
 * goes stale by itself (the content cannot change), only by time (a key rotated out of a policy is a
 * new generation, hence a new key) — and for tag → digest resolutions, briefly (tags move).
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {}

  /** The value set for `key`, unless it expired by `nowMs`. */
  get(key: string, nowMs: number): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V, nowMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: nowMs + this.ttlMs });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }
}
