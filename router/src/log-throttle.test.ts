import { LogThrottle } from "./log-throttle";

describe("LogThrottle", () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function setup() {
    const summaries: [Record<string, number>, number][] = [];
    let now = 0;
    const throttle = new LogThrottle((counts, total) => summaries.push([counts, total]), { perSecond: 2, burst: 3, summaryMs: 1000, now: () => now });
    return { summaries, throttle, advance: (ms: number) => ((now += ms), jest.advanceTimersByTime(ms)) };
  }

  it.each<[string, string[], boolean[], [Record<string, number>, number][]]>([
    ["a burst is written line by line", ["a", "a", "b"], [true, true, true], []],
    ["past the burst, lines are counted per key and summed up a second later", ["a", "a", "b", "a", "b", "b"], [true, true, true, false, false, false], [[{ a: 1, b: 2 }, 3]]],
  ])("%s", (_t, keys, admitted, summaries) => {
    const { summaries: got, throttle, advance } = setup();
    expect(keys.map(k => throttle.admit(k))).toEqual(admitted);
    advance(1000);
    expect(got).toEqual(summaries);
  });

  it("refills at its rate", () => {
    const { throttle, advance } = setup();
    for (let i = 0; i < 3; i++) throttle.admit("a");
    expect(throttle.admit("a")).toBe(false);
    advance(500); // one line back (2 a second)
    expect([throttle.admit("a"), throttle.admit("a")]).toEqual([true, false]);
  });

  it("bounds its keys: past 50, lines are counted as other", () => {
    const { summaries, throttle } = setup();
    for (let i = 0; i < 3; i++) throttle.admit("x");
    for (let i = 0; i < 60; i++) throttle.admit(`k${i}`);
    throttle.flush();
    expect(Object.keys(summaries[0][0])).toHaveLength(51);
    expect(summaries[0][0].other).toBe(10);
    expect(summaries[0][1]).toBe(60);
  });

  it("writes nothing when nothing was left out, and never throws from its timer", () => {
    const throttle = new LogThrottle(() => {
      throw new Error("log gone");
    }, { perSecond: 0, burst: 0, summaryMs: 10, now: () => 0 });
    throttle.admit("a");
    expect(() => jest.advanceTimersByTime(10)).not.toThrow();
    expect(() => throttle.flush()).not.toThrow(); // nothing pending any more
  });
});
