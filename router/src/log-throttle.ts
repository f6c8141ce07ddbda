// Bounds how many refusal lines an agent can make the operator's log write. Every decision is in the
// audit log (audit-throttle.ts bounds that one); the log is for people, and a flood of refusals (a
// few thousand CONNECTs a second to names off the allowlist, requests beyond the rate limit) written
// one line each costs CPU in the pod and drowns the lines that matter. Lines are written one by one up
// to a rate; beyond it they are counted per key and summed up in one line a second.

import { quietTimer, SimpleBucket } from "./ratelimit/simple-bucket";

/** Rate of a LogThrottle: lines per second, burst (lines), how often a count is written (ms), the clock (ms). */
export interface LogThrottleOptions {
  perSecond: number;
  burst: number;
  summaryMs: number;
  now: () => number;
}

/** Defaults: 20 lines a second one by one (burst 100), counted beyond that and summed up once a second. */
export const LOG_THROTTLE_DEFAULTS: LogThrottleOptions = { perSecond: 20, burst: 100, summaryMs: 1000, now: Date.now };

/** Most distinct keys in one count; further lines are counted under "other". */
const MAX_KEYS = 50;

/**
 * A token bucket in front of a log's refusal lines. `admit(key)` says whether a line may be written
 * now; when it may not, the line is counted under `key` (a reason code: a few values, never an
 * agent's text), and `summary(counts, total)` is called `summaryMs` after the first such line (then
 * again while they go on), so that the log still says how many lines it left out and why. `flush`
 * writes a pending count at once. Never throws from its timer (a failing summary is dropped).
 */
export class LogThrottle {
  private readonly bucket: SimpleBucket;
  private counts = new Map<string, number>();
  private total = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly summary: (counts: Record<string, number>, total: number) => void,
    private readonly options: LogThrottleOptions = LOG_THROTTLE_DEFAULTS,
  ) {
    this.bucket = new SimpleBucket(options.perSecond, options.burst, options.now());
  }

  /** Whether a line keyed `key` may be written now (true), or was counted instead (false). */
  admit(key: string): boolean {
    if (this.bucket.take(this.options.now())) return true;
    const k = this.counts.has(key) || this.counts.size < MAX_KEYS ? key : "other";
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    this.total++;
    this.timer ??= quietTimer(() => this.flush(), this.options.summaryMs);
    return false;
  }

  /** Writes the pending count now, if any. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.total === 0) return;
    const counts = Object.fromEntries(this.counts);
    const total = this.total;
    this.counts = new Map();
    this.total = 0;
    this.summary(counts, total);
  }
}
