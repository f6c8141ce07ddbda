import { RouterError, type RouterErrorCode } from "../errors/router-error";
import type { TokenBudget } from "../config/profile";
import { nextWindowStart, WINDOW_KINDS, windowKey, type WindowKind } from "./windows";

/** A party whose spend is limited: the sandbox (`token_budget_exceeded`) or its tenant (`budget_exceeded`). */
export interface BudgetScope {
  /** Stable key, e.g. `sandbox:team-a/demo` or `tenant:team-a`; journaled, so never rename it. */
  key: string;
  limits: TokenBudget;
  /** Error code an agent sees when this scope's budget cannot cover a reservation. */
  exceededCode: Extract<RouterErrorCode, "token_budget_exceeded" | "budget_exceeded">;
}

/** Tokens held for one request until it is settled; `counters` are the window counters it charged. */
export interface Reservation {
  readonly id: string;
  readonly tokens: number;
  readonly counters: readonly string[];
  settled: boolean;
}

/** What the ledger writes so a restart can rebuild it (see journal.ts). */
export type LedgerRecord =
  | { op: "reserve"; id: string; counters: readonly string[]; tokens: number }
  | { op: "settle"; id: string; tokens: number };

/** Where ledger records go before the ledger's answer is acted on; must not return before the record is written. */
export interface LedgerSink {
  append(record: LedgerRecord): void;
}

const LIMIT_FIELD: Record<WindowKind, keyof TokenBudget> = {
  hourly: "hourlyTokens",
  daily: "dailyTokens",
  monthly: "monthlyTokens",
};

/** Counter key of a scope's window, e.g. `sandbox:demo|hourly|2026-11-30T14`. */
export function counterKey(scopeKey: string, kind: WindowKind, nowMs: number): string {
  return `${scopeKey}|${kind}|${windowKey(kind, nowMs)}`;
}

/**
 * Token spend per scope and UTC window (DESIGN §6). `reserve` checks every limit of every scope and
 * charges all of them in one synchronous step, so under any number of concurrent requests (one
 * JavaScript thread) the sum of reservations never exceeds a limit; `settle` replaces a reservation by
 * the actual usage. Every change goes to the sink (the crash-safe journal) before it is applied.
 */
export class BudgetLedger {
  private readonly spent = new Map<string, number>();
  private nextId = 0;

  constructor(
    private readonly sink: LedgerSink | null,
    initial: Iterable<[string, number]> = [],
    private readonly idPrefix = `${process.pid}-${Date.now().toString(36)}`,
  ) {
    for (const [k, v] of initial) this.spent.set(k, v);
  }

  /**
   * Reserves `tokens` in each scope's current hourly/daily/monthly window at `nowMs`.
   * Throws RouterError with the scope's `exceededCode` (429) naming the window and remaining tokens when
   * any limit would be exceeded; nothing is charged then.
   */
  reserve(scopes: readonly BudgetScope[], tokens: number, nowMs: number): Reservation {
    // safe integers only: a float-sized amount (1e300) would round the counters away when settled
    if (!Number.isSafeInteger(tokens) || tokens < 0) throw new RangeError(`tokens must be a non-negative safe integer, got ${tokens}`);
    const counters = this.countersOf(scopes, nowMs);
    let i = 0;
    for (const scope of scopes) {
      for (const kind of WINDOW_KINDS) {
        const key = counters[i++];
        const limit = scope.limits[LIMIT_FIELD[kind]];
        if (limit === undefined) continue;
        const used = this.spent.get(key) ?? 0;
        if (used + tokens > limit) {
          throw new RouterError(
            scope.exceededCode,
            `${kind} token budget of ${scope.key} exceeded: ${tokens} tokens needed, ${Math.max(0, limit - used)} of ${limit} left until ${new Date(nextWindowStart(kind, nowMs)).toISOString()}`,
            { retryAfterSeconds: (nextWindowStart(kind, nowMs) - nowMs) / 1000 },
          );
        }
      }
    }
    const id = `${this.idPrefix}-${(this.nextId++).toString(36)}`;
    this.sink?.append({ op: "reserve", id, counters, tokens });
    for (const key of counters) this.spent.set(key, (this.spent.get(key) ?? 0) + tokens);
    return { id, tokens, counters, settled: false };
  }

  /**
   * The counter keys a reservation charges: each scope's hourly, daily, monthly window at `nowMs`, in
   * that order. The same frozen array while the scopes and the hour are the same (most requests).
   */
  private countersOf(scopes: readonly BudgetScope[], nowMs: number): readonly string[] {
    const hour = windowKey("hourly", nowMs);
    const c = this.countersCache;
    if (c !== null && c.scopes === scopes && c.hour === hour && scopes.every((s, i) => s.key === c.scopeKeys[i])) return c.counters;
    const counters = Object.freeze(scopes.flatMap(scope => WINDOW_KINDS.map(kind => counterKey(scope.key, kind, nowMs))));
    this.countersCache = { scopes, scopeKeys: scopes.map(s => s.key), hour, counters };
    return counters;
  }

  private countersCache: { scopes: readonly BudgetScope[]; scopeKeys: string[]; hour: string; counters: readonly string[] } | null = null;

  /**
   * Replaces the reservation by `actualTokens` (the upstream's `usage.total_tokens`, or 0 when nothing
   * was sent upstream). Settling twice is a no-op. Actual above the reservation is charged in full:
   * spend is the truth even when a limit is passed (the router caps max tokens upstream so it is not).
   */
  settle(reservation: Reservation, actualTokens: number): void {
    if (reservation.settled) return;
    const actual = Math.max(0, Math.round(actualTokens));
    reservation.settled = true;
    this.sink?.append({ op: "settle", id: reservation.id, tokens: actual });
    const delta = actual - reservation.tokens;
    for (const key of reservation.counters) this.spent.set(key, Math.max(0, (this.spent.get(key) ?? 0) + delta));
  }

  /** Tokens spent (including open reservations) in a scope's window containing `nowMs`. */
  used(scopeKey: string, kind: WindowKind, nowMs: number): number {
    return this.spent.get(counterKey(scopeKey, kind, nowMs)) ?? 0;
  }

  /** Remaining tokens per window of a scope at `nowMs`; a window without a limit is absent. */
  remaining(scope: BudgetScope, nowMs: number): Partial<Record<WindowKind, number>> {
    const out: Partial<Record<WindowKind, number>> = {};
    for (const kind of WINDOW_KINDS) {
      const limit = scope.limits[LIMIT_FIELD[kind]];
      if (limit !== undefined) out[kind] = Math.max(0, limit - this.used(scope.key, kind, nowMs));
    }
    return out;
  }

  /** Counters of windows that are still current at `nowMs` (older ones can be forgotten). */
  currentCounters(nowMs: number): [string, number][] {
    const out: [string, number][] = [];
    for (const [key, value] of this.spent) {
      const [, kind, win] = key.split("|");
      if (win === windowKey(kind as WindowKind, nowMs)) out.push([key, value]);
    }
    return out;
  }

  /** Drops counters of windows that ended before `nowMs`. */
  prune(nowMs: number): void {
    const keep = new Set(this.currentCounters(nowMs).map(([k]) => k));
    for (const key of [...this.spent.keys()]) if (!keep.has(key)) this.spent.delete(key);
  }
}
