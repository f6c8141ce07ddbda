import type { UpstreamSpec } from "../config/profile";
import { RouterError } from "../errors/router-error";
import { CircuitBreakers } from "./circuit-breaker";
import { failedBeforeSending, forwardWithFallback, UpstreamOutcomeUnknown, type ForwardDeps } from "./forward";
import type { UpstreamFetch } from "./upstream-fetch";

const up = (name: string): UpstreamSpec => ({ name, provider: "openai-compatible", endpoint: `http://127.0.0.1:1/${name}`, apiKeyFile: "k" });

type Answer = number | "refused" | "reset";

function fakeFetch(answers: Record<string, Answer>, seen: string[]): UpstreamFetch {
  return async url => {
    const name = url.split("/")[3];
    seen.push(name);
    const a = answers[name];
    if (a === "refused") throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    if (a === "reset") throw Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" });
    return { status: a, contentType: "application/json", body: (async function* () {})(), dump: async () => undefined };
  };
}

function deps(answers: Record<string, Answer>, seen: string[], breakers = new CircuitBreakers()): ForwardDeps {
  return { fetch: fakeFetch(answers, seen), auth: async () => ({ authorization: "Bearer x" }), breakers, now: () => 0 };
}

async function outcome(answers: Record<string, Answer>, breakers?: CircuitBreakers, permits?: (u: UpstreamSpec) => string | null): Promise<[string, string[]]> {
  const seen: string[] = [];
  try {
    const f = await forwardWithFallback([up("a"), up("b")], "chat", {}, undefined, deps(answers, seen, breakers), permits);
    return [`${f.upstream.name}:${f.response.status}`, seen];
  } catch (err) {
    return [`${(err as RouterError).code}${err instanceof UpstreamOutcomeUnknown ? " (outcome unknown)" : ""}`, seen];
  }
}

describe("forwardWithFallback", () => {
  it.each<[string, Record<string, Answer>, string, string[]]>([
    ["the primary answers", { a: 200, b: 200 }, "a:200", ["a"]],
    ["a 429 falls back to the next preference", { a: 429, b: 200 }, "b:200", ["a", "b"]],
    ["a 5xx falls back", { a: 503, b: 200 }, "b:200", ["a", "b"]],
    ["a refused connection falls back", { a: "refused", b: 200 }, "b:200", ["a", "b"]],
    ["a connection lost after sending is upstream_error, never retried elsewhere (it may be generating)", { a: "reset", b: 200 }, "upstream_error (outcome unknown)", ["a"]],
    ["a fallback's connection lost after sending is upstream_error too", { a: 503, b: "reset" }, "upstream_error (outcome unknown)", ["a", "b"]],
    ["a 4xx other than 429 is the answer (the request is at fault, not the upstream)", { a: 400, b: 200 }, "a:400", ["a"]],
    ["all failing with 5xx is upstream_error", { a: 500, b: 502 }, "upstream_error", ["a", "b"]],
    ["all failing, last with 429, is upstream_unavailable", { a: 500, b: 429 }, "upstream_unavailable", ["a", "b"]],
  ])("%s", async (_t, answers, result, seen) => {
    expect(await outcome(answers)).toEqual([result, seen]);
  });

  it.each<[string, (u: UpstreamSpec) => string | null, Record<string, Answer>, string, string[]]>([
    ["a fallback the policy denies is never tried", u => (u.name === "b" ? "denied by no-b" : null), { a: 429, b: 200 }, "upstream_unavailable", ["a"]],
    ["a fallback the policy allows is tried", () => null, { a: 429, b: 200 }, "b:200", ["a", "b"]],
    ["the policy is asked only about candidates about to be tried", u => (u.name === "b" ? "denied" : null), { a: 200, b: 200 }, "a:200", ["a"]],
  ])("%s", async (_t, permits, answers, result, seen) => {
    expect(await outcome(answers, undefined, permits)).toEqual([result, seen]);
  });

  it.each<[string, unknown, boolean]>([
    ["ECONNREFUSED", Object.assign(new Error("x"), { code: "ECONNREFUSED" }), true],
    ["a DNS failure", Object.assign(new Error("x"), { code: "ENOTFOUND" }), true],
    ["undici's connect timeout", Object.assign(new Error("x"), { code: "UND_ERR_CONNECT_TIMEOUT" }), true],
    ["a TLS verification failure as the cause", new Error("fetch failed", { cause: Object.assign(new Error("x"), { code: "CERT_HAS_EXPIRED" }) }), true],
    ["the socket closed by the other side", Object.assign(new Error("x"), { code: "UND_ERR_SOCKET" }), false],
    ["a headers timeout", Object.assign(new Error("x"), { code: "UND_ERR_HEADERS_TIMEOUT" }), false],
    ["ECONNRESET", Object.assign(new Error("x"), { code: "ECONNRESET" }), false],
    ["an error without a code", new Error("x"), false],
    ["not an error", "boom", false],
  ])("failedBeforeSending: %s → %p", (_t, err, expected) => {
    expect(failedBeforeSending(err)).toBe(expected);
  });

  it("skips an upstream whose circuit is open", async () => {
    const breakers = new CircuitBreakers({ failureThreshold: 1, openMs: 1000 });
    breakers.failure("a", 0);
    expect(await outcome({ a: 200, b: 200 }, breakers)).toEqual(["b:200", ["b"]]);
  });

  it("a missing credential skips that upstream and is reported", async () => {
    const seen: string[] = [];
    const d = { ...deps({ a: 200, b: 200 }, seen), auth: async (u: UpstreamSpec) => { if (u.name === "a") throw new Error("token endpoint down"); return {}; } };
    const f = await forwardWithFallback([up("a"), up("b")], "chat", {}, undefined, d);
    expect([f.upstream.name, f.skipped]).toEqual(["b", [{ name: "a", reason: "no credential", detail: "token endpoint down" }]]);
  });

  it.each<[string, Partial<ForwardDeps>, string, string]>([
    [
      "an identity provider's refusal",
      { auth: async () => Promise.reject(new Error("AADSTS70021: No matching federated identity record for client 1111-2222")) },
      "upstream_unavailable: no model upstream available (a: no credential; b: no credential)",
      "AADSTS70021",
    ],
    [
      "a socket error naming an internal address",
      { fetch: async () => Promise.reject(Object.assign(new Error("connect ECONNREFUSED 10.0.4.17:443"), { code: "ECONNREFUSED" })) },
      "upstream_error: every model upstream failed (a: connection failed; b: connection failed)",
      "10.0.4.17",
    ],
  ])("tells the agent only a coarse reason for %s; the detail is the error's cause, for the log", async (_t, override, message, detail) => {
    const err = await forwardWithFallback([up("a"), up("b")], "chat", {}, undefined, { ...deps({ a: 200, b: 200 }, []), ...override }).then(
      () => undefined,
      (e: unknown) => e as RouterError,
    );
    expect(`${err?.code}: ${err?.message}`).toBe(message);
    expect(err?.message).not.toContain(detail);
    expect(String((err?.cause as Error).message)).toContain(detail);
  });

  describe("circuit breaker", () => {
    /** Calls forwardWithFallback over [a, b] at clock `now`; returns which upstreams the request reached. */
    async function attempt(breakers: CircuitBreakers, now: number, answers: Record<string, Answer>, permits?: (u: UpstreamSpec) => string | null, body: Record<string, unknown> = {}): Promise<string[]> {
      const seen: string[] = [];
      await forwardWithFallback([up("a"), up("b")], "chat", body, undefined, { ...deps(answers, seen, breakers), now: () => now }, permits).catch(() => undefined);
      return seen;
    }

    it.each<[string, Answer]>([
      ["5xx answers", 503],
      ["429 answers", 429],
      ["connections refused", "refused"],
    ])("opens after the threshold of consecutive %s, skips that upstream while open, and tries it again half-open", async (_t, failing) => {
      const breakers = new CircuitBreakers({ failureThreshold: 3, openMs: 1000 });
      for (let i = 0; i < 3; i++) expect(await attempt(breakers, 0, { a: failing, b: 200 })).toEqual(["a", "b"]);
      expect(await attempt(breakers, 999, { a: 200, b: 200 })).toEqual(["b"]);
      expect(await attempt(breakers, 1000, { a: 200, b: 200 })).toEqual(["a"]);
      expect(breakers.status("a", 1000)).toBe("closed");
    });

    it("counts consecutive failures only: an answer in between starts the count again", async () => {
      const breakers = new CircuitBreakers({ failureThreshold: 2, openMs: 1000 });
      await attempt(breakers, 0, { a: 503, b: 200 });
      await attempt(breakers, 0, { a: 200, b: 200 });
      await attempt(breakers, 0, { a: 503, b: 200 });
      expect(await attempt(breakers, 0, { a: 200, b: 200 })).toEqual(["a"]);
    });

    it("a missing credential counts as a failure of that upstream", async () => {
      const breakers = new CircuitBreakers({ failureThreshold: 1, openMs: 1000 });
      const seen: string[] = [];
      const auth = async (u: UpstreamSpec) => (u.name === "a" ? Promise.reject(new Error("AADSTS700016")) : { authorization: "Bearer x" });
      await forwardWithFallback([up("a"), up("b")], "chat", {}, undefined, { ...deps({ a: 200, b: 200 }, seen, breakers), auth }).catch(() => undefined);
      expect([seen, breakers.status("a", 0)]).toEqual([["b"], "open"]);
    });

    it.each<[string, (u: UpstreamSpec) => string | null, Record<string, unknown>, string[]]>([
      ["the policy refused it (the next candidate served)", u => (u.name === "a" ? "denied for now" : null), {}, ["b"]],
      ["the request could not be built for it (the call failed)", () => null, { n: 1n }, []],
    ])("gives a half-open trial back when no request went out because %s", async (_t, permits, body, reached) => {
      const breakers = new CircuitBreakers({ failureThreshold: 1, openMs: 1000 });
      breakers.failure("a", 0);
      expect(await attempt(breakers, 1000, { a: 200, b: 200 }, permits, body)).toEqual(reached);
      expect(await attempt(breakers, 1001, { a: 200, b: 200 })).toEqual(["a"]);
    });
  });
});
