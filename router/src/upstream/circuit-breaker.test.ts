import { CircuitBreakers } from "./circuit-breaker";

describe("CircuitBreakers", () => {
  it("opens after the threshold, refuses while open, lets one trial through half-open, and closes on success", () => {
    const b = new CircuitBreakers({ failureThreshold: 2, openMs: 1000 });
    b.failure("d", 0);
    expect(b.allow("d", 0)).toBe(true);
    b.failure("d", 0);
    expect([b.status("d", 10), b.allow("d", 10)]).toEqual(["open", false]);
    expect([b.status("d", 1000), b.allow("d", 1000), b.allow("d", 1000)]).toEqual(["half-open", true, false]);
    b.success("d");
    expect([b.status("d", 1001), b.allow("d", 1001)]).toEqual(["closed", true]);
  });

  it("a failed trial re-opens it", () => {
    const b = new CircuitBreakers({ failureThreshold: 1, openMs: 1000 });
    b.failure("d", 0);
    expect(b.allow("d", 1000)).toBe(true);
    b.failure("d", 1000);
    expect(b.allow("d", 1500)).toBe(false);
  });

  it("release gives an unused half-open trial back without closing or re-opening", () => {
    const b = new CircuitBreakers({ failureThreshold: 1, openMs: 1000 });
    b.release("d"); // nothing recorded: no-op
    b.failure("d", 0);
    expect(b.allow("d", 1000)).toBe(true);
    b.release("d");
    expect([b.status("d", 1000), b.allow("d", 1000), b.allow("d", 1000)]).toEqual(["half-open", true, false]);
  });

  it("keeps deployments apart", () => {
    const b = new CircuitBreakers({ failureThreshold: 1, openMs: 1000 });
    b.failure("a", 0);
    expect([b.allow("a", 0), b.allow("b", 0)]).toEqual([false, true]);
  });
});
