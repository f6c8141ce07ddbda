import { TtlCache } from "./verdict-cache";

describe("TtlCache", () => {
  it("returns a value until its time to live has passed", () => {
    const c = new TtlCache<string>(1000, 10);
    c.set("k", "v", 0);
    expect([c.get("k", 999), c.get("k", 1000), c.get("k", 0)]).toEqual(["v", undefined, undefined]);
  });
  it("drops the least recently set entry beyond its size", () => {
    const c = new TtlCache<number>(1000, 2);
    c.set("a", 1, 0);
    c.set("b", 2, 0);
    c.set("a", 3, 0);
    c.set("c", 4, 0);
    expect([c.get("a", 1), c.get("b", 1), c.get("c", 1), c.size]).toEqual([3, undefined, 4, 2]);
  });
});
