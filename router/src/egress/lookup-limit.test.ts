import { limitLookups } from "./lookup-limit";

/** A resolver whose lookups settle only when the test says so. */
function manual(): { resolve: (name: string) => Promise<string[]>; started: string[]; settle(name: string, answer?: string[]): void } {
  const pending = new Map<string, (a: string[]) => void>();
  const started: string[] = [];
  return {
    started,
    resolve: (name) =>
      new Promise((res) => {
        started.push(name);
        pending.set(name, res);
      }),
    settle: (name, answer = ["198.20.0.10"]) => pending.get(name)?.(answer),
  };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("limitLookups", () => {
  it("runs at most maxInFlight lookups; the next starts when one settles", async () => {
    const m = manual();
    const resolve = limitLookups(m.resolve, 2, 10_000);
    const a = resolve("a.test");
    const b = resolve("b.test");
    const c = resolve("c.test");
    await tick();
    expect(m.started).toEqual(["a.test", "b.test"]);
    m.settle("a.test");
    await expect(a).resolves.toEqual(["198.20.0.10"]);
    await tick();
    expect(m.started).toEqual(["a.test", "b.test", "c.test"]);
    m.settle("b.test");
    m.settle("c.test");
    await expect(Promise.all([b, c])).resolves.toHaveLength(2);
  });

  it("answers ETIMEOUT in time but keeps the slot until the lookup itself settles (the thread is still busy)", async () => {
    const m = manual();
    const resolve = limitLookups(m.resolve, 1, 50);
    const slow = resolve("slow.test");
    await expect(slow).rejects.toMatchObject({ code: "ETIMEOUT" });
    const next = resolve("next.test");
    await new Promise((r) => setTimeout(r, 20));
    expect(m.started).toEqual(["slow.test"]); // still waiting for the slow lookup's thread
    m.settle("slow.test");
    await tick();
    expect(m.started).toEqual(["slow.test", "next.test"]);
    m.settle("next.test");
    await expect(next).resolves.toEqual(["198.20.0.10"]);
  });

  it("times out a caller still waiting for a slot, and never starts its lookup", async () => {
    const m = manual();
    const resolve = limitLookups(m.resolve, 1, 50);
    const first = resolve("first.test");
    const queued = resolve("queued.test");
    await expect(queued).rejects.toMatchObject({ code: "ETIMEOUT" });
    await expect(first).rejects.toMatchObject({ code: "ETIMEOUT" });
    m.settle("first.test");
    await tick();
    expect(m.started).toEqual(["first.test"]);
  });

  it("passes a failed lookup's error on", async () => {
    const resolve = limitLookups(() => Promise.reject(Object.assign(new Error("nx"), { code: "ENOTFOUND" })), 2, 1000);
    await expect(resolve("nx.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
  });

  it("refuses a cap below 1", () => {
    expect(() => limitLookups(async () => [], 0, 1000)).toThrow(RangeError);
  });
});
