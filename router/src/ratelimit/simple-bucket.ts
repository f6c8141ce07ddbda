/**
 * One token bucket: `burst` tokens, refilled at `perSecond`, time given by the caller (ms since any
 * fixed point). For the throttles in front of the audit log and the operator's log (audit-throttle.ts,
 * log-throttle.ts); the agents' request rate limits are RateLimiter's (token-bucket.ts).
 */
export class SimpleBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    nowMs: number,
  ) {
    this.tokens = burst;
    this.refilledAt = nowMs;
  }

  /** Takes one token if there is one at `nowMs` (true), or takes nothing (false). */
  take(nowMs: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * An unref'd timer that calls `flush` once after `ms`, swallowing what it throws: a throttle's
 * periodic count must never crash the process from a timer (the sink it writes to reports its own
 * failures).
 */
export function quietTimer(flush: () => void, ms: number): NodeJS.Timeout {
  const timer = setTimeout(() => {
    try {
      flush();
    } catch {
      // reported by the sink itself, or nothing left to tell
    }
  }, ms);
  timer.unref();
  return timer;
}
