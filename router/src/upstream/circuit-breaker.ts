/** Circuit-breaker tuning: open after `failureThreshold` consecutive failures, for `openMs`. */
export interface BreakerOptions {
  failureThreshold: number;
  openMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 5, openMs: 30_000 };

/**
 * One circuit breaker per upstream deployment (issue 3). Closed → open after N consecutive failures
 * (429, 5xx, connection errors); open refuses for `openMs`; then half-open lets one trial through,
 * whose outcome closes or re-opens it (or, when nothing was sent after all, `release` gives it back).
 * Times are ms from the caller's clock.
 */
export class CircuitBreakers {
  private readonly state = new Map<string, { failures: number; openUntil: number; trialInFlight: boolean }>();

  constructor(private readonly options: BreakerOptions = DEFAULT_BREAKER) {}

  /** Whether a request may go to `key` now; in half-open state only the first caller gets true. */
  allow(key: string, nowMs: number): boolean {
    const s = this.state.get(key);
    if (!s || s.failures < this.options.failureThreshold) return true;
    if (nowMs < s.openUntil) return false;
    if (s.trialInFlight) return false;
    s.trialInFlight = true;
    return true;
  }

  /**
   * Gives back the half-open trial `allow` granted when no request went to `key` after all (the
   * policy refused that deployment, or the request could not be built): the next caller may try.
   * Closed or open breakers are unchanged.
   */
  release(key: string): void {
    const s = this.state.get(key);
    if (s) s.trialInFlight = false;
  }

  /** Records a success: closes the breaker. */
  success(key: string): void {
    this.state.delete(key);
  }

  /** Records a failure; opening (or re-opening) the breaker at the threshold. */
  failure(key: string, nowMs: number): void {
    const s = this.state.get(key) ?? { failures: 0, openUntil: 0, trialInFlight: false };
    s.failures++;
    s.trialInFlight = false;
    if (s.failures >= this.options.failureThreshold) s.openUntil = nowMs + this.options.openMs;
    this.state.set(key, s);
  }

  /** `closed`, `open` or `half-open` at `nowMs`, for metrics and /readyz. */
  status(key: string, nowMs: number): "closed" | "open" | "half-open" {
    const s = this.state.get(key);
    if (!s || s.failures < this.options.failureThreshold) return "closed";
    return nowMs < s.openUntil ? "open" : "half-open";
  }
}
