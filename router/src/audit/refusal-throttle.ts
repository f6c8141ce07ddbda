// Bounds how fast refusals that cost nothing can fill the audit log. The log is rotated to a bounded
// size (audit-log.ts), so an agent that could make it write records at will — a flood of requests
// refused by the rate limit, of 404s, of CONNECTs to a blocked host — could push the oldest records
// (the ones it wants gone) out of the pod in seconds. Such refusals are recorded one by one up to a
// rate, and counted together beyond it; decisions that let something happen or cost tokens are never
// held back.

import type { AuditEvent, AuditSink } from "./audit-log";

/** Rate limits of RefusalAuditThrottle: records per second, burst (records), and how often a count is written (ms). */
export interface RefusalThrottleOptions {
  perSecond: number;
  burst: number;
  summaryMs: number;
  /** Most distinct keys in one count; further ones are added up under `other`. */
  maxKeys: number;
  now: () => number;
}

/** Defaults: 20 cheap refusals a second one by one (burst 100), counted beyond that once a second, at most 100 keys. */
export const REFUSAL_THROTTLE_DEFAULTS: RefusalThrottleOptions = { perSecond: 20, burst: 100, summaryMs: 1000, maxKeys: 100, now: Date.now };

/**
 * Whether an event is a refusal that cost nothing: an inference refusal with no reservation (before
 * the budget: rate limit, policy, bad input, the HTTP layer) or a refused egress connection (no dial).
 * Allowed decisions and refusals after a reservation (budget, upstream, content safety) are not.
 */
export function isCheapRefusal(event: AuditEvent): boolean {
  if (event.kind === "egress") return event.decision === "refused";
  if (event.kind === "inference") return event.decision === "refused" && event.reservedTokens === 0;
  return false;
}

/** The key a suppressed refusal is counted under. */
function countKey(event: AuditEvent): string {
  if (event.kind === "egress") return `egress:${event.via}:${event.reason}:${event.host ?? ""}`;
  if (event.kind === "inference") return `inference:${event.api}:${event.code ?? ""}`;
  return "other";
}

/**
 * An AuditSink in front of another: every event passes through, except cheap refusals (isCheapRefusal)
 * beyond a token bucket of `burst` records refilled at `perSecond`; those are counted per key and
 * written as one SuppressedAuditEvent `summaryMs` after the first of them (then again while they go
 * on), so every refusal is accounted for. `flush` writes a pending count at once (call it before the
 * log is closed). Throws what the inner sink throws.
 */
export class RefusalAuditThrottle implements AuditSink {
  private tokens: number;
  private refilledAt: number;
  private pending: { sandbox: string; tenant: string; count: number; counts: Map<string, number>; fromMs: number } | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly inner: AuditSink,
    private readonly options: RefusalThrottleOptions = REFUSAL_THROTTLE_DEFAULTS,
  ) {
    this.tokens = options.burst;
    this.refilledAt = options.now();
  }

  record(event: AuditEvent): void {
    if (!isCheapRefusal(event)) return this.inner.record(event);
    const now = this.options.now();
    this.tokens = Math.min(this.options.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.options.perSecond);
    this.refilledAt = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return this.inner.record(event);
    }
    this.suppress(event as Exclude<AuditEvent, { kind: "suppressed" }>, now);
  }

  /** The inner sink's health (see AuditSink.healthy). */
  healthy(): boolean {
    return this.inner.healthy?.() ?? true;
  }

  /** Writes the pending count now, if any. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.inner.record({
      kind: "suppressed", sandbox: p.sandbox, tenant: p.tenant, count: p.count, counts: Object.fromEntries(p.counts),
      fromTs: new Date(p.fromMs).toISOString(), toTs: new Date(this.options.now()).toISOString(),
    });
  }

  private suppress(event: Exclude<AuditEvent, { kind: "suppressed" }>, now: number): void {
    const p = (this.pending ??= { sandbox: event.sandbox, tenant: event.tenant, count: 0, counts: new Map(), fromMs: now });
    p.count++;
    let key = countKey(event);
    if (!p.counts.has(key) && p.counts.size >= this.options.maxKeys) key = "other";
    p.counts.set(key, (p.counts.get(key) ?? 0) + 1);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        try {
          this.flush();
        } catch {
          // the audit log's own write path reports its failures (audit-log.ts); a timer must not throw
        }
      }, this.options.summaryMs);
      this.timer.unref();
    }
  }
}
