import type { AuditEvent, EgressAuditEvent, InferenceAuditEvent } from "./audit-log";
import { isThrottled, AuditThrottle } from "./audit-throttle";

const inference = (over: Partial<InferenceAuditEvent> = {}): InferenceAuditEvent => ({
  kind: "inference", sandbox: "demo", tenant: "t", api: "chat", model: "m", upstream: null, decision: "refused", code: "rate_limited", reservedTokens: 0, usedTokens: 0, status: 429, ...over,
});
const egress = (over: Partial<EgressAuditEvent> = {}): EgressAuditEvent => ({ kind: "egress", sandbox: "demo", tenant: "t", via: "connect", host: "blocked.test", port: 443, decision: "refused", reason: "blocklist", ...over });

describe("isThrottled", () => {
  it.each<[string, AuditEvent, boolean]>([
    ["a refusal before the budget", inference(), true],
    ["an HTTP-layer refusal", inference({ api: "other", code: "not_found", model: null, status: 404 }), true],
    ["a refusal after a reservation (budget, upstream, content safety) is kept", inference({ code: "content_policy_violation", reservedTokens: 50, usedTokens: 50 }), false],
    ["an allowed call is kept", inference({ decision: "allowed", code: null, reservedTokens: 50 }), false],
    ["a refused egress connection", egress(), true],
    ["an allowed egress connection (an agent can repeat it at will; counted per host and port)", egress({ decision: "allowed", reason: "allowlist" }), true],
  ])("%s", (_t, event, cheap) => {
    expect(isThrottled(event)).toBe(cheap);
  });
});

describe("AuditThrottle", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function setup() {
    const written: AuditEvent[] = [];
    let now = Date.parse("2026-12-01T10:00:00Z");
    const throttle = new AuditThrottle({ record: e => written.push(e) }, { perSecond: 2, burst: 3, summaryMs: 1000, maxKeys: 2, maxAllowedKeys: 4, now: () => now });
    return { written, throttle, advance: (ms: number) => ((now += ms), jest.advanceTimersByTime(ms)) };
  }

  it("records a burst one by one, counts the rest, and writes the count a second later", () => {
    const { written, throttle, advance } = setup();
    for (let i = 0; i < 10; i++) throttle.record(inference());
    throttle.record(egress());
    expect(written).toHaveLength(3);
    advance(1000);
    expect(written).toHaveLength(4);
    expect(written[3]).toEqual({
      kind: "suppressed", sandbox: "demo", tenant: "t", count: 8, counts: { "inference:chat:rate_limited": 7, "egress:connect:refused:blocklist:blocked.test:443": 1 },
      fromTs: "2026-12-01T10:00:00.000Z", toTs: "2026-12-01T10:00:01.000Z",
    });
  });

  it("never holds back an inference call that reserved tokens", () => {
    const { written, throttle } = setup();
    for (let i = 0; i < 10; i++) throttle.record(inference());
    throttle.record(inference({ decision: "allowed", code: null, reservedTokens: 9 }));
    throttle.record(inference({ code: "token_budget_exceeded", reservedTokens: 9 }));
    expect(written.slice(3).map(e => (e.kind === "suppressed" || e.kind === "unsettled" ? e.kind : `${e.kind}:${e.decision}`))).toEqual(["inference:allowed", "inference:refused"]);
  });

  it("counts a flood of allowed connections per host and port, so where they went stays on record", () => {
    const { written, throttle } = setup();
    for (let i = 0; i < 10; i++) throttle.record(egress({ decision: "allowed", reason: "allowlisted", host: "api.example" }));
    throttle.flush();
    expect(written.filter(e => e.kind === "egress")).toHaveLength(3);
    expect(written.at(-1)).toMatchObject({ kind: "suppressed", count: 7, counts: { "egress:connect:allowed:allowlisted:api.example:443": 7 } });
  });

  it("keeps an allowed connection's host when a flood of refusals has taken every host key, writing a full count early", () => {
    const { written, throttle } = setup();
    for (let i = 0; i < 3; i++) throttle.record(inference()); // the burst
    for (let i = 0; i < 50; i++) throttle.record(egress({ host: `noise-${i}.test` })); // refusals to distinct names: past maxKeys, folded to their reason
    throttle.record(egress({ decision: "allowed", reason: "allowlisted", host: "exfil-acct.allowed.test" }));
    for (let i = 0; i < 3; i++) throttle.record(egress({ decision: "allowed", reason: "allowlisted", host: `more-${i}.allowed.test` }));
    throttle.flush();
    const counts = written.filter(e => e.kind === "suppressed").map(e => (e.kind === "suppressed" ? e.counts : {}));
    const all = Object.assign({}, ...counts) as Record<string, number>;
    expect(all["egress:connect:allowed:allowlisted:exfil-acct.allowed.test:443"]).toBe(1);
    for (let i = 0; i < 3; i++) expect(all[`egress:connect:allowed:allowlisted:more-${i}.allowed.test:443`]).toBe(1);
    expect(all["egress:connect:refused:blocklist:*"]).toBe(48);
    // no count grew past maxAllowedKeys (4): the full one was written before the next host was added
    expect(counts.map(c => Object.keys(c).length).every(n => n <= 4)).toBe(true);
    expect(counts.length).toBe(2);
    // every event is accounted for
    expect(written.filter(e => e.kind !== "suppressed").length + written.reduce((n, e) => n + (e.kind === "suppressed" ? e.count : 0), 0)).toBe(57);
  });

  it("counts nothing while the log cannot be written: every event reaches it, and its failure the caller (fail closed)", () => {
    let healthy = true;
    const written: AuditEvent[] = [];
    const inner = { record: (e: AuditEvent) => { if (!healthy) throw new Error("ENOSPC"); written.push(e); }, healthy: () => healthy };
    const throttle = new AuditThrottle(inner, { perSecond: 1, burst: 1, summaryMs: 1000, maxKeys: 10, maxAllowedKeys: 100, now: () => 0 });
    throttle.record(egress({ decision: "allowed", reason: "allowlisted" }));
    healthy = false;
    expect(throttle.healthy()).toBe(false);
    expect(() => throttle.record(egress({ decision: "allowed", reason: "allowlisted" }))).toThrow("ENOSPC"); // over the rate, yet not counted away
    healthy = true;
    throttle.record(egress({ decision: "allowed", reason: "allowlisted" })); // over the rate again: counted
    throttle.flush();
    expect(written.map(e => e.kind)).toEqual(["egress", "suppressed"]);
  });

  it("refills at its rate", () => {
    const { written, throttle, advance } = setup();
    for (let i = 0; i < 3; i++) throttle.record(inference());
    advance(500); // one token back (2 a second)
    throttle.record(inference());
    throttle.record(inference());
    expect(written.filter(e => e.kind === "inference")).toHaveLength(4);
  });

  it("adds up hosts beyond its key limit under their reason (which survives), cuts long hosts, and flush writes a pending count at once", () => {
    const { written, throttle } = setup();
    for (let i = 0; i < 3; i++) throttle.record(inference());
    for (const host of ["a.test", "b.test", "c.test", "d.test"]) throttle.record(egress({ host }));
    throttle.record(egress({ host: "c2.evil.example", reason: "non_public_address" }));
    throttle.record(egress({ host: "x".repeat(300), reason: "invalid_host" }));
    throttle.flush();
    expect(written.at(-1)).toMatchObject({
      kind: "suppressed", count: 6,
      counts: { "egress:connect:refused:blocklist:a.test:443": 1, "egress:connect:refused:blocklist:b.test:443": 1, "egress:connect:refused:blocklist:*": 2, "egress:connect:refused:non_public_address:*": 1, "egress:connect:refused:invalid_host:*": 1 },
    });
    const { written: w2, throttle: t2 } = setup();
    for (let i = 0; i < 4; i++) t2.record(egress({ host: "y".repeat(300) }));
    t2.flush();
    expect(Object.keys((w2.at(-1) as { counts: Record<string, number> }).counts)).toEqual([`egress:connect:refused:blocklist:${"y".repeat(100)}:443`]);
    throttle.flush(); // nothing pending: nothing written
    expect(written.filter(e => e.kind === "suppressed")).toHaveLength(1);
  });
});
