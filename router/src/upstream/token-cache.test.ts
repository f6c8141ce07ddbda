import type { AccessToken, TokenCredential } from "@azure/identity";
import { TokenCache } from "./token-cache";

function fakeCredential(lifetimeMs: number, clock: { now: number }) {
  let n = 0;
  const credential: TokenCredential & { calls: () => number } = {
    calls: () => n,
    getToken: async (): Promise<AccessToken> => {
      n++;
      return { token: `t${n}`, expiresOnTimestamp: clock.now + lifetimeMs };
    },
  };
  return credential;
}

describe("TokenCache", () => {
  it("fetches once for concurrent callers and reuses the token while fresh", async () => {
    const clock = { now: 0 };
    const cred = fakeCredential(3600_000, clock);
    const cache = new TokenCache(cred, () => clock.now);
    expect(await Promise.all([cache.get("s"), cache.get("s"), cache.get("s")])).toEqual(["t1", "t1", "t1"]);
    clock.now = 3000_000;
    expect(await cache.get("s")).toBe("t1");
    expect(cred.calls()).toBe(1);
  });

  it("refreshes early: inside the margin it still answers with the old token and fetches a new one", async () => {
    const clock = { now: 0 };
    const cred = fakeCredential(3600_000, clock);
    const cache = new TokenCache(cred, () => clock.now);
    await cache.get("s");
    clock.now = 3600_000 - 60_000;
    expect(await cache.get("s")).toBe("t1");
    await new Promise(r => setImmediate(r));
    expect(await cache.get("s")).toBe("t2");
  });

  it("caches per scope", async () => {
    const clock = { now: 0 };
    const cache = new TokenCache(fakeCredential(3600_000, clock), () => clock.now);
    expect([await cache.get("a"), await cache.get("b")]).toEqual(["t1", "t2"]);
  });

  it("an expired token is never served", async () => {
    const clock = { now: 0 };
    const cache = new TokenCache(fakeCredential(1000, clock), () => clock.now);
    await cache.get("s");
    clock.now = 2000;
    expect(await cache.get("s")).toBe("t2");
  });
});
