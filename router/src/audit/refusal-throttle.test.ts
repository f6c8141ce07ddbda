import type { AuditEvent, EgressAuditEvent, InferenceAuditEvent } from "./audit-log";
import { isCheapRefusal, RefusalAuditThrottle } from "./refusal-throttle";

const inference = (over: Partial<InferenceAuditEvent> = {}): InferenceAuditEvent => ({
  kind: "inference", sandbox: "demo", tenant: "t", api: "chat", model: "m", upstream: null, decision: "refused", code: "rate_limited", reservedTokens: 0, usedTokens: 0, status: 429, ...over,
});
const egress = (over: Partial<EgressAuditEvent> = {}): EgressAuditEvent => ({ kind: "egress", sandbox: "demo", tenant: "t", via: "connect", host: "blocked.test", port: 443, decision: "refused", reason: "blocklist", ...over });

describe("isCheapRefusal", () => {
  it.each<[string, AuditEvent, boolean]>([
    ["a refusal before the budget", inference(), true],
    ["an HTTP-layer refusal", inference({ api: "other", code: "not_found", model: null, status: 404 }), true],
    ["a refusal after a reservation (budget, upstream, content safety) is kept", inference({ code: "content_policy_violation", reservedTokens: 50, usedTokens: 50 }), false],
    ["an allowed call is kept", inference({ decision: "allowed", code: null, reservedTokens: 50 }), false],
    ["a refused egress connection", egress(), true],
    ["an allowed egress connection is kept", egress({ decision: "allowed", reason: "allowlist" }), false],
  ])("%s", (_t, event, cheap) => {
    expect(isCheapRefusal(event)).toBe(cheap);
  });
});

describe("RefusalAuditThrottle", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function setup() {
    const written: AuditEvent[] = [];
    let now = Date.parse("2026-12-01T10:00:00Z");
    const throttle = new RefusalAuditThrottle({ record: e => written.push(e) }, { perSecond: 2, burst: 3, summaryMs: 1000, maxKeys: 2, now: () => now });
    return { written, throttle, advance: (ms: number) => ((now += ms), jest.advanceTimersByTime(ms)) };
  }

  it("records a burst of cheap refusals one by one, counts the rest, and writes the count a second later", () => {
    const { written, throttle, advance } = setup();
    for (let i = 0; i < 10; i++) throttle.record(inference());
    throttle.record(egress());
    expect(written).toHaveLength(3);
    advance(1000);
    expect(written).toHaveLength(4);
    expect(written[3]).toEqual({
      kind: "suppressed", sandbox: "demo", tenant: "t", count: 8, counts: { "inference:chat:rate_limited": 7, "egress:connect:blocklist:blocked.test": 1 },
      fromTs: "2026-12-01T10:00:00.000Z", toTs: "2026-12-01T10:00:01.000Z",
    });
  });

  it("never holds back a decision that let something happen or cost tokens", () => {
    const { written, throttle } = setup();
    for (let i = 0; i < 10; i++) throttle.record(inference());
    throttle.record(inference({ decision: "allowed", code: null, reservedTokens: 9 }));
    throttle.record(inference({ code: "token_budget_exceeded", reservedTokens: 9 }));
    throttle.record(egress({ decision: "allowed", reason: "allowlist" }));
    expect(written.slice(3).map(e => (e.kind === "suppressed" ? "count" : `${e.kind}:${e.decision}`))).toEqual(["inference:allowed", "inference:refused", "egress:allowed"]);
  });

  it("refills at its rate", () => {
    const { written, throttle, advance } = setup();
    for (let i = 0; i < 3; i++) throttle.record(inference());
    advance(500); // one token back (2 a second)
    throttle.record(inference());
    throttle.record(inference());
    expect(written.filter(e => e.kind === "inference")).toHaveLength(4);
  });

  it("adds up keys beyond its limit under other, and flush writes a pending count at once", () => {
    const { written, throttle } = setup();
    for (let i = 0; i < 3; i++) throttle.record(inference());
    for (const host of ["a.test", "b.test", "c.test", "d.test"]) throttle.record(egress({ host }));
    throttle.flush();
    expect(written.at(-1)).toMatchObject({ kind: "suppressed", count: 4, counts: { "egress:connect:blocklist:a.test": 1, "egress:connect:blocklist:b.test": 1, other: 2 } });
    throttle.flush(); // nothing pending: nothing written
    expect(written.filter(e => e.kind === "suppressed")).toHaveLength(1);
  });
});
