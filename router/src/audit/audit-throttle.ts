// Bounds how fast an agent can make the audit log write records. The log is rotated to a bounded size
// (audit-log.ts), so an agent that could make it write records at will — a flood of requests refused
// by the rate limit, of 404s, of CONNECTs to a blocked host, or of CONNECTs to an allowed one (each
// costs it one TCP connection) — could push the oldest records (the ones it wants gone) out of the pod
// in minutes. Such events are recorded one by one up to a rate and counted together beyond it;
// inference calls that reserved tokens are never held back.

import { quietTimer, SimpleBucket } from "../ratelimit/simple-bucket";
import type { AuditEvent, AuditSink, EgressAuditEvent, InferenceAuditEvent } from "./audit-log";

/** Rate limits of AuditThrottle: records per second, burst (records), and how often a count is written (ms). */
export interface AuditThrottleOptions {
  perSecond: number;
  burst: number;
  summaryMs: number;
  /** Most distinct keys (host and port) in one count; further refusals are added up under their reason's key. */
  maxKeys: number;
  /**
   * Most keys in one count before it is written early. Allowed egress decisions always keep their host
   * and port (where data may have gone must stay on record, also when a flood of refusals has taken
   * the `maxKeys` first), so a count holding this many is written at once and a new one begun.
   */
  maxAllowedKeys: number;
  now: () => number;
}

/** Defaults: 20 such events a second one by one (burst 100), counted beyond that once a second, 100 host keys for refusals, a count written early at 1,000 keys. */
export const AUDIT_THROTTLE_DEFAULTS: AuditThrottleOptions = { perSecond: 20, burst: 100, summaryMs: 1000, maxKeys: 100, maxAllowedKeys: 1000, now: Date.now };

/**
 * Whether an event may be counted rather than recorded one by one under a flood: an inference refusal
 * with no reservation (before the budget: rate limit, policy, bad input, the HTTP layer), and every
 * egress decision (a connection an agent can repeat at will, allowed or not; an allowed one is
 * always counted under its host and port, so the record of where it went stays). Inference calls that reserved tokens (allowed, or
 * refused by the budget, the upstream, content safety) are never counted together.
 */
export function isThrottled(event: AuditEvent): event is InferenceAuditEvent | EgressAuditEvent {
  if (event.kind === "egress") return true;
  if (event.kind === "inference") return event.decision === "refused" && event.reservedTokens === 0;
  return false;
}

/** Longest host kept in a count's key (characters). */
const MAX_KEY_HOST = 100;

/** The key an event is counted under, and the coarser one it falls back to once a count has `maxKeys` keys (the reason survives, the host does not). */
function countKeys(event: InferenceAuditEvent | EgressAuditEvent): [string, string] {
  if (event.kind === "egress") {
    const coarse = `egress:${event.via}:${event.decision}:${event.reason}`;
    return [`${coarse}:${(event.host ?? "").slice(0, MAX_KEY_HOST)}:${event.port}`, `${coarse}:*`];
  }
  const key = `inference:${event.api}:${event.code ?? ""}`;
  return [key, key];
}

/**
 * An AuditSink in front of another: every event passes through, except throttled ones (isThrottled)
 * beyond a token bucket of `burst` records refilled at `perSecond`; those are counted per key and
 * written as one SuppressedAuditEvent `summaryMs` after the first of them (then again while they go
 * on), so every event is accounted for. `flush` writes a pending count at once (call it before the
 * log is closed). While the inner sink is unhealthy nothing is counted: every event goes to it and its
 * refusal reaches the caller (fail closed). Throws what the inner sink throws.
 */
export class AuditThrottle implements AuditSink {
  private readonly bucket: SimpleBucket;
  private pending: { sandbox: string; tenant: string; count: number; counts: Map<string, number>; fromMs: number } | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly inner: AuditSink,
    private readonly options: AuditThrottleOptions = AUDIT_THROTTLE_DEFAULTS,
  ) {
    this.bucket = new SimpleBucket(options.perSecond, options.burst, options.now());
  }

  record(event: AuditEvent): void {
    // while the log cannot be written every event goes to it, so that the caller's write fails (fail closed), counted or not
    if (!isThrottled(event) || this.inner.healthy?.() === false) return this.inner.record(event);
    const now = this.options.now();
    if (this.bucket.take(now)) return this.inner.record(event);
    this.suppress(event, now);
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

  private suppress(event: InferenceAuditEvent | EgressAuditEvent, now: number): void {
    const [fine, coarse] = countKeys(event);
    const keepsHost = event.kind === "egress" && event.decision === "allowed";
    // an allowed connection's host is never folded away: a count too full to take it is written first
    if (keepsHost && this.pending && !this.pending.counts.has(fine) && this.pending.counts.size >= this.options.maxAllowedKeys) this.flush();
    const p = (this.pending ??= { sandbox: event.sandbox, tenant: event.tenant, count: 0, counts: new Map(), fromMs: now });
    p.count++;
    // the coarse keys (one per way in, decision and reason) are few: they may go past maxKeys
    const key = keepsHost || p.counts.has(fine) || p.counts.size < this.options.maxKeys ? fine : coarse;
    p.counts.set(key, (p.counts.get(key) ?? 0) + 1);
    this.timer ??= quietTimer(() => this.flush(), this.options.summaryMs);
  }
}
