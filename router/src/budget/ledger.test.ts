import { RouterError } from "../errors/router-error";
import { BudgetLedger, type BudgetScope, type LedgerRecord } from "./ledger";

const t0 = Date.parse("2026-11-30T14:59:00Z");
const sandbox: BudgetScope = { key: "sandbox:demo", limits: { hourlyTokens: 100, dailyTokens: 150, monthlyTokens: 1000 }, exceededCode: "token_budget_exceeded" };
const tenant: BudgetScope = { key: "tenant:a", limits: { dailyTokens: 120 }, exceededCode: "budget_exceeded" };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof RouterError ? err.code : "not-a-router-error";
  }
  return undefined;
}

describe("BudgetLedger", () => {
  it("never lets reservations exceed a limit however many are open at once", () => {
    const ledger = new BudgetLedger(null);
    let granted = 0;
    for (let i = 0; i < 200; i++) {
      try {
        ledger.reserve([sandbox], 7, t0);
        granted++;
      } catch {
        // refused
      }
    }
    expect(granted * 7).toBeLessThanOrEqual(100);
    expect(granted).toBe(14);
    expect(ledger.used("sandbox:demo", "hourly", t0)).toBe(98);
  });

  it.each<[string, BudgetScope[], number, string | undefined]>([
    ["a reservation within every limit is granted", [sandbox, tenant], 100, undefined],
    ["the sandbox's hourly limit refuses with token_budget_exceeded", [sandbox], 101, "token_budget_exceeded"],
    ["when both scopes are exceeded the sandbox is reported first", [sandbox, tenant], 121, "token_budget_exceeded"],
    ["the tenant's limit alone refuses with budget_exceeded", [tenant], 121, "budget_exceeded"],
    ["a scope without limits never refuses", [{ key: "x", limits: {}, exceededCode: "token_budget_exceeded" }], 1e9, undefined],
  ])("%s", (_t, scopes, tokens, code) => {
    expect(codeOf(() => new BudgetLedger(null).reserve(scopes, tokens, t0))).toBe(code);
  });

  it("settles to the actual usage, freeing the rest", () => {
    const ledger = new BudgetLedger(null);
    const r = ledger.reserve([sandbox], 90, t0);
    expect(codeOf(() => ledger.reserve([sandbox], 20, t0))).toBe("token_budget_exceeded");
    ledger.settle(r, 30);
    ledger.settle(r, 0); // second settle is a no-op
    expect(ledger.used("sandbox:demo", "hourly", t0)).toBe(30);
    expect(ledger.remaining(sandbox, t0)).toEqual({ hourly: 70, daily: 120, monthly: 970 });
  });

  it("a refusal charges nothing and names the window and the time it resets", () => {
    const ledger = new BudgetLedger(null);
    ledger.reserve([sandbox], 100, t0);
    let message = "";
    try {
      ledger.reserve([sandbox], 1, t0);
    } catch (err) {
      message = (err as Error).message;
      expect((err as RouterError).details.retryAfterSeconds).toBe(60);
    }
    expect(message).toContain("hourly token budget of sandbox:demo exceeded");
    expect(message).toContain("2026-11-30T15:00:00.000Z");
    expect(ledger.used("sandbox:demo", "hourly", t0)).toBe(100);
  });

  it("rolls the hourly window over at the UTC hour while daily spend carries on (fake clock)", () => {
    const ledger = new BudgetLedger(null);
    ledger.settle(ledger.reserve([sandbox], 100, t0), 100);
    const nextHour = t0 + 60_000; // 15:00:00Z
    expect(ledger.remaining(sandbox, nextHour)).toEqual({ hourly: 100, daily: 50, monthly: 900 });
    expect(codeOf(() => ledger.reserve([sandbox], 51, nextHour))).toBe("token_budget_exceeded"); // daily
    const nextDay = Date.parse("2026-12-01T00:00:00Z");
    expect(ledger.remaining(sandbox, nextDay)).toEqual({ hourly: 100, daily: 150, monthly: 1000 });
  });

  it("writes each change to the sink before applying it", () => {
    const records: LedgerRecord[] = [];
    const ledger = new BudgetLedger({ append: r => records.push(r) }, [], "p");
    const r = ledger.reserve([tenant], 5, t0);
    ledger.settle(r, 3);
    expect(records).toEqual([
      { op: "reserve", id: "p-0", counters: ["tenant:a|hourly|2026-11-30T14", "tenant:a|daily|2026-11-30", "tenant:a|monthly|2026-11"], tokens: 5 },
      { op: "settle", id: "p-0", tokens: 3 },
    ]);
  });

  it("a failing sink refuses the reservation (fail closed) and charges nothing", () => {
    const ledger = new BudgetLedger({ append: () => { throw new Error("disk full"); } });
    expect(() => ledger.reserve([sandbox], 5, t0)).toThrow("disk full");
    expect(ledger.used("sandbox:demo", "hourly", t0)).toBe(0);
  });

  it("prune forgets windows that ended", () => {
    const ledger = new BudgetLedger(null);
    ledger.reserve([sandbox], 5, t0);
    ledger.prune(Date.parse("2026-12-01T00:00:00Z"));
    expect(ledger.currentCounters(Date.parse("2026-12-01T00:00:00Z"))).toEqual([]);
    expect(ledger.used("sandbox:demo", "monthly", t0)).toBe(0);
  });
});
