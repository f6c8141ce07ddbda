import { RouterError } from "../errors/router-error";
import { RateLimiter } from "./token-bucket";

function takeN(rl: RateLimiter, agent: string, n: number, nowMs: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      rl.take(agent, nowMs);
      ok++;
    } catch (err) {
      expect((err as RouterError).code).toBe("rate_limited");
    }
  }
  return ok;
}

describe("RateLimiter", () => {
  const limits = { global: { rps: 10, burst: 20 }, perAgent: { rps: 2, burst: 5 } };

  it.each<[string, () => number, number]>([
    ["an agent gets its burst and no more at one instant", () => takeN(new RateLimiter(limits), "a", 10, 0), 5],
    ["the global burst caps all agents together", () => { const rl = new RateLimiter(limits); let n = 0; for (let i = 0; i < 10; i++) n += takeN(rl, `a${i}`, 5, 0); return n; }, 20],
    ["tokens refill at rps (fake clock: 1 s later, 2 more)", () => { const rl = new RateLimiter(limits); takeN(rl, "a", 5, 0); return takeN(rl, "a", 5, 1000); }, 2],
  ])("%s", (_t, run, expected) => {
    expect(run()).toBe(expected);
  });

  it("new limits apply without refilling the buckets", () => {
    const rl = new RateLimiter(limits);
    takeN(rl, "a", 5, 0);
    rl.configure({ global: { rps: 10, burst: 20 }, perAgent: { rps: 100, burst: 3 } });
    expect(takeN(rl, "a", 5, 0)).toBe(0);
    expect(takeN(rl, "a", 5, 1000)).toBe(3); // refills at the new rate, capped at the new burst
  });

  it("says when to retry", () => {
    const rl = new RateLimiter(limits);
    takeN(rl, "a", 5, 0);
    try {
      rl.take("a", 0);
      throw new Error("expected rate_limited");
    } catch (err) {
      expect((err as RouterError).details.retryAfterSeconds).toBeCloseTo(0.5);
      expect((err as RouterError).message).toMatch(/per-agent rate limit of 2 requests\/s/);
    }
  });
});
