import { cachingResolver } from "./dns-cache";

describe("cachingResolver", () => {
  it("answers from the cache within the TTL and asks again after it", async () => {
    let clock = 0;
    const calls: string[] = [];
    const resolve = cachingResolver(async (name) => (calls.push(name), [`198.20.0.${calls.length}`]), { ttlMs: 1000, now: () => clock });
    expect(await resolve("a.example")).toEqual(["198.20.0.1"]);
    clock = 999;
    expect(await resolve("a.example")).toEqual(["198.20.0.1"]);
    clock = 1000;
    expect(await resolve("a.example")).toEqual(["198.20.0.2"]);
    expect(calls).toEqual(["a.example", "a.example"]);
  });

  it("offers fresh answers synchronously through cached(), and nothing once they are stale", async () => {
    let clock = 0;
    const resolve = cachingResolver(async () => ["198.20.0.1"], { ttlMs: 1000, now: () => clock });
    expect(resolve.cached?.("a.example")).toBeUndefined();
    await resolve("a.example");
    expect(resolve.cached?.("a.example")).toEqual(["198.20.0.1"]);
    clock = 1000;
    expect(resolve.cached?.("a.example")).toBeUndefined();
  });

  it("never caches failures", async () => {
    let fail = true;
    const resolve = cachingResolver(async () => {
      if (fail) throw Object.assign(new Error("nx"), { code: "ENOTFOUND" });
      return ["198.20.0.1"];
    });
    await expect(resolve("a.example")).rejects.toMatchObject({ code: "ENOTFOUND" });
    fail = false;
    expect(await resolve("a.example")).toEqual(["198.20.0.1"]);
  });

  it("shares one lookup between concurrent requests and stays within maxEntries", async () => {
    let n = 0;
    const resolve = cachingResolver(async (name) => (n++, [name.length.toString()]), { maxEntries: 2 });
    await Promise.all([resolve("a"), resolve("a"), resolve("a")]);
    expect(n).toBe(1);
    await resolve("bb");
    await resolve("ccc"); // evicts "a"
    await resolve("a");
    expect(n).toBe(4);
  });
});
