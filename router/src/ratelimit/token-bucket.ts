import { RouterError } from "../errors/router-error";
import type { BucketSpec } from "../config/profile";

/** DESIGN §6 defaults: global 500 rps burst 1000, per agent 50 rps burst 100. */
export const DEFAULT_RATE_LIMITS: { global: BucketSpec; perAgent: BucketSpec } = {
  global: { rps: 500, burst: 1000 },
  perAgent: { rps: 50, burst: 100 },
};

/** A token bucket at a point in time (tokens may be fractional). */
interface BucketState {
  tokens: number;
  atMs: number;
}

/**
 * Global + per-agent token buckets (DESIGN §6 RateLimiter). Time comes from the caller (ms), so tests
 * use a fake clock. Agent keys are bounded by `maxAgents` (least recently used dropped) so an attacker
 * inventing agent ids cannot grow memory.
 */
export class RateLimiter {
  private readonly global: BucketState;
  private readonly agents = new Map<string, BucketState>();

  constructor(
    private limits: { global: BucketSpec; perAgent: BucketSpec } = DEFAULT_RATE_LIMITS,
    nowMs = 0,
    private readonly maxAgents = 10_000,
  ) {
    this.global = { tokens: limits.global.burst, atMs: nowMs };
  }

  /**
   * Applies new limits (hot reload) without resetting the buckets: tokens above a smaller burst are
   * dropped. Cheap when called with the same object again.
   */
  configure(limits: { global: BucketSpec; perAgent: BucketSpec }): void {
    if (limits === this.limits) return;
    this.limits = limits;
    this.global.tokens = Math.min(this.global.tokens, limits.global.burst);
    for (const b of this.agents.values()) b.tokens = Math.min(b.tokens, limits.perAgent.burst);
  }

  /**
   * Takes one token from the global bucket and the agent's. Throws RouterError `rate_limited` (429)
   * with `retryAfterSeconds` when either is empty; then nothing is taken.
   */
  take(agent: string, nowMs: number): void {
    let bucket = this.agents.get(agent);
    if (bucket) this.agents.delete(agent); // re-insert below keeps Map order = LRU order
    else bucket = { tokens: this.limits.perAgent.burst, atMs: nowMs };
    this.agents.set(agent, bucket);
    if (this.agents.size > this.maxAgents) this.agents.delete(this.agents.keys().next().value as string);

    refill(this.global, this.limits.global, nowMs);
    refill(bucket, this.limits.perAgent, nowMs);
    if (this.global.tokens < 1) throw rateLimited("global", this.global, this.limits.global);
    if (bucket.tokens < 1) throw rateLimited("per-agent", bucket, this.limits.perAgent);
    this.global.tokens -= 1;
    bucket.tokens -= 1;
  }
}

/** The limits a profile asks for (profile.rateLimits over DESIGN §6 defaults); same object for the same profile. */
export function rateLimitsOf(profile: { rateLimits?: { global?: BucketSpec; perAgent?: BucketSpec } }): { global: BucketSpec; perAgent: BucketSpec } {
  let limits = cache.get(profile);
  if (!limits) {
    limits = { global: profile.rateLimits?.global ?? DEFAULT_RATE_LIMITS.global, perAgent: profile.rateLimits?.perAgent ?? DEFAULT_RATE_LIMITS.perAgent };
    cache.set(profile, limits);
  }
  return limits;
}
const cache = new WeakMap<object, { global: BucketSpec; perAgent: BucketSpec }>();

function rateLimited(name: string, state: BucketState, spec: BucketSpec): RouterError {
  return new RouterError("rate_limited", `${name} rate limit of ${spec.rps} requests/s (burst ${spec.burst}) reached`, {
    retryAfterSeconds: (1 - state.tokens) / spec.rps,
  });
}

function refill(state: BucketState, spec: BucketSpec, nowMs: number): void {
  const elapsed = Math.max(0, nowMs - state.atMs) / 1000;
  state.tokens = Math.min(spec.burst, state.tokens + elapsed * spec.rps);
  state.atMs = Math.max(state.atMs, nowMs);
}
