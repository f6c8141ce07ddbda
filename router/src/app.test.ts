import { connect, type AddressInfo } from "node:net";
import pino from "pino";
import type { AuditEvent } from "./audit/audit-log";
import { buildRouterApps, type ConfigSource, type RouterApps } from "./app";
import { BudgetLedger } from "./budget/ledger";
import { parseProfile, type Profile } from "./config/profile";
import { parsePolicyProfile } from "./policy/policy-engine";
import type { UpstreamFetch } from "./upstream/upstream-fetch";
import { inject } from "./test-support/inject";

const NOW = Date.parse("2026-11-30T14:00:00Z");

/** What the fake upstream received. */
interface Seen {
  url: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

type Answer = { status: number; body: unknown } | { status: number; sse: unknown[] } | { status: number; raw: string; contentType: string } | { throws: Error };

function completion(content: string, usage = { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }, filter: unknown = {}) {
  return { id: "c1", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop", content_filter_results: filter }], usage };
}

function fakeUpstream(answer: (seen: Seen) => Answer, seen: Seen[]): UpstreamFetch {
  return async (url, init) => {
    const s = { url, headers: init.headers, body: JSON.parse(init.body) };
    seen.push(s);
    const a = answer(s);
    if ("throws" in a) throw a.throws;
    const text = "raw" in a ? a.raw : "sse" in a ? a.sse.map(e => `data: ${typeof e === "string" ? e : JSON.stringify(e)}\n\n`).join("") : JSON.stringify(a.body);
    return {
      status: a.status,
      contentType: "raw" in a ? a.contentType : "sse" in a ? "text/event-stream" : "application/json",
      body: (async function* () {
        yield Buffer.from(text);
      })(),
      dump: async () => undefined,
    };
  };
}

const baseProfile: Profile = {
  sandbox: "demo",
  tenant: "team-a",
  egressMode: "Strict",
  allowedEndpoints: [],
  inferencePolicy: {
    tokenBudget: { perRequestTokens: 2000, hourlyTokens: 5000 },
    contentSafety: { hate: "Low", selfHarm: "Low", sexual: "Low", violence: "Low" },
    modelPreference: { primary: "gpt-4o", fallback: ["backup"] },
  },
  upstreams: [
    { name: "gpt-4o", provider: "openai-compatible", endpoint: "http://127.0.0.1:1/v1", deployment: "real-4o", apiKeyFile: "k" },
    { name: "backup", provider: "openai-compatible", endpoint: "http://127.0.0.1:2/v1", apiKeyFile: "k" },
  ],
};

/** An audit sink whose health the test sets (a full disk). */
let auditHealthy = true;
beforeEach(() => (auditHealthy = true));

interface Harness {
  apps: RouterApps;
  seen: Seen[];
  audit: AuditEvent[];
  ledger: BudgetLedger;
}

function harness(opts: { profile?: Partial<Profile>; toolPolicy?: string; answer?: (s: Seen) => Answer; fetch?: UpstreamFetch; opsToken?: string | null; logLines?: string[]; logLevel?: string } = {}): Harness {
  const profile = parseProfile(JSON.stringify({ ...baseProfile, ...opts.profile }));
  const config: ConfigSource = {
    config: () => ({ profile: profile.profile, profileDigest: profile.digest, toolPolicy: opts.toolPolicy ? parsePolicyProfile(opts.toolPolicy) : null }),
    readiness: () => ({ ready: true, reasons: [] }),
    opsBearerToken: () => (opts.opsToken === undefined ? "ops-secret" : opts.opsToken),
  };
  const seen: Seen[] = [];
  const audit: AuditEvent[] = [];
  const ledger = new BudgetLedger(null);
  const apps = buildRouterApps({
    config,
    ledger,
    audit: { record: e => audit.push(e), healthy: () => auditHealthy },
    fetch: opts.fetch ?? fakeUpstream(opts.answer ?? (() => ({ status: 200, body: completion("hi") })), seen),
    auth: async () => ({ authorization: "Bearer upstream-key" }),
    now: () => NOW,
    logger: opts.logLines ? pino({ level: opts.logLevel ?? "warn" }, { write: (line: string) => void opts.logLines!.push(line) }) : pino({ level: "silent" }),
  });
  opened.push(apps);
  return { apps, seen, audit, ledger };
}

const opened: RouterApps[] = [];
afterEach(async () => {
  for (const a of opened.splice(0)) await Promise.all([a.api.close(), a.ops.close()]);
});

const chat = (extra: Record<string, unknown> = {}) => ({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }], ...extra });

describe("router API", () => {
  it("forwards a chat completion with the router's credential, never the agent's, and settles to usage", async () => {
    const h = harness();
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", headers: { authorization: "Bearer agent-secret", "api-key": "agent-key" }, payload: chat() });
    expect(res.statusCode).toBe(200);
    expect(res.json().choices[0].message.content).toBe("hi");
    expect(h.seen[0].headers).toEqual({ authorization: "Bearer upstream-key" });
    expect(h.seen[0].body).toMatchObject({ model: "real-4o", max_completion_tokens: expect.any(Number) });
    expect(res.headers.authorization).toBeUndefined();
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(8);
    expect(h.audit.at(-1)).toMatchObject({ decision: "allowed", usedTokens: 8, upstream: "gpt-4o" });
  });

  it("streams, asks the upstream for usage, hides the usage chunk the agent did not ask for, and settles", async () => {
    const h = harness({
      answer: () => ({
        status: 200,
        sse: [
          { choices: [{ index: 0, delta: { content: "he" } }] },
          { choices: [{ index: 0, delta: { content: "llo" }, finish_reason: "stop" }] },
          { choices: [], usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 } },
          "[DONE]",
        ],
      }),
    });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ stream: true }) });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(res.body).toContain('"content":"llo"');
    expect(res.body).not.toContain('"usage"');
    expect(res.body.trim().endsWith("data: [DONE]")).toBe(true);
    expect(h.seen[0].body.stream_options).toEqual({ include_usage: true });
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(6);
  });

  it("falls back to the next preferred model on 429", async () => {
    const h = harness({ answer: s => (s.url.includes(":1/") ? { status: 429, body: {} } : { status: 200, body: completion("from backup") }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat() });
    expect([res.statusCode, res.json().choices[0].message.content, h.seen.length]).toEqual([200, "from backup", 2]);
  });

  it("judges a fallback by the policy before trying it: a denied backup is never called", async () => {
    const toolPolicy = "version: 1\npolicies:\n  - {name: no-backup, type: capability, denied_actions: ['inference:chat_completions:backup'], priority: 10}\n";
    const h = harness({ toolPolicy, answer: s => (s.url.includes(":1/") ? { status: 429, body: {} } : { status: 200, body: completion("from backup") }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat() });
    expect([res.statusCode, res.json().error.code, h.seen.map(s => s.url.includes(":1/") ? "gpt-4o" : "backup")]).toEqual([503, "upstream_unavailable", ["gpt-4o"]]);
    expect(h.audit.at(-1)).toMatchObject({ decision: "refused", upstream: null, usedTokens: 0 });
  });

  it.each<[string, Error, number, string[], "reservation" | 0]>([
    ["a connection lost after sending is 502, not retried elsewhere, and charged in full (it may have been billed)", Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }), 502, ["gpt-4o"], "reservation"],
    ["a connection that never opened falls back and charges nothing for it", Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), 200, ["gpt-4o", "backup"], 0],
  ])("%s", async (_t, error, status, tried, charged) => {
    const h = harness({ answer: s => (s.url.includes(":1/") ? { throws: error } : { status: 200, body: completion("from backup", { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 }) }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ max_tokens: 100 }) });
    expect([res.statusCode, h.seen.map(s => s.url.includes(":1/") ? "gpt-4o" : "backup")]).toEqual([status, tried]);
    const reserved = h.audit.at(-1)!.kind === "inference" ? (h.audit.at(-1) as { reservedTokens: number }).reservedTokens : NaN;
    expect(reserved).toBeGreaterThan(100);
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(charged === "reservation" ? reserved : 0);
    expect(h.audit.at(-1)).toMatchObject({ usedTokens: charged === "reservation" ? reserved : 0 });
  });

  it.each<[string, Record<string, unknown>, number, string | null]>([
    ["no cap: both chat fields are set to what was reserved", {}, 200, null],
    ["only max_completion_tokens: max_tokens is set too (a server may read only that one)", { max_completion_tokens: 50 }, 200, null],
    ["a Responses length field on chat is refused, not taken as the cap", { max_output_tokens: 1 }, 403, "max_output_tokens"],
  ])("caps an openai-compatible upstream: %s", async (_t, caps, status, param) => {
    const h = harness();
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat(caps) });
    expect(res.statusCode).toBe(status);
    if (param !== null) return expect([res.json().error.code, res.json().error.param, h.seen.length]).toEqual(["policy_violation", param, 0]);
    const reserved = (h.audit.at(-1) as { reservedTokens: number }).reservedTokens;
    const sent = h.seen[0].body;
    expect(sent.max_tokens).toBe(sent.max_completion_tokens);
    expect(reserved).toBe(Buffer.byteLength(JSON.stringify(chat(caps))) + (sent.max_tokens as number));
  });

  it("reads a stream no faster than the agent: one that does not read holds the upstream, not the router's memory, and the stream settles once it leaves", async () => {
    const total = 800; // chunks of 64 KiB: 50 MiB, far more than the sockets between router and agent can hold
    const delta = `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: "x".repeat(64 * 1024) }, content_filter_results: {} }] })}\n\n`;
    let pulled = 0;
    let upstreamRead!: () => void;
    const readToTheEnd = new Promise<void>(r => (upstreamRead = r));
    const fetch: UpstreamFetch = async () => ({
      status: 200,
      contentType: "text/event-stream",
      body: (async function* () {
        for (; pulled < total; pulled++) yield Buffer.from(delta);
        yield Buffer.from(`data: ${JSON.stringify({ id: "c", choices: [], usage: { prompt_tokens: 1, completion_tokens: 7, total_tokens: 8 } })}\n\ndata: [DONE]\n\n`);
        upstreamRead();
      })(),
      dump: async () => undefined,
    });
    const h = harness({ fetch });
    await h.apps.api.listen({ host: "127.0.0.1", port: 0 });
    const { port } = h.apps.api.server.address() as AddressInfo;
    const body = JSON.stringify(chat({ stream: true, max_tokens: 100 }));
    const agent = connect(port, "127.0.0.1");
    agent.pause(); // never reads
    agent.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    await new Promise(r => setTimeout(r, 1500));
    const pulledWhileUnread = pulled;
    agent.destroy(); // gone: the rest is read and dropped, and the budget settles to the reported usage
    expect(pulledWhileUnread).toBeLessThan(total / 2);
    await readToTheEnd;
    for (let i = 0; i < 100 && (h.audit.at(-1) as { decision?: string } | undefined)?.decision !== "allowed"; i++) await new Promise(r => setTimeout(r, 10));
    expect(h.audit.at(-1)).toMatchObject({ decision: "allowed", usedTokens: 8 });
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(8);
  });

  it("logs a flood of refusals line by line only up to a rate, then sums them up (the audit log has each)", async () => {
    jest.useFakeTimers({ doNotFake: ["nextTick", "setImmediate", "queueMicrotask"] });
    try {
      const logLines: string[] = [];
      const h = harness({ logLines, logLevel: "info", profile: { rateLimits: { global: { rps: 1e6, burst: 1e6 }, perAgent: { rps: 1e6, burst: 1e6 } } } });
      for (let i = 0; i < 150; i++) {
        const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ model: "not-allowed" }) });
        expect(res.statusCode).toBe(403);
      }
      jest.advanceTimersByTime(1000);
      const messages = logLines.map(l => JSON.parse(l) as { msg: string; suppressed?: number; byCode?: Record<string, number> });
      const lines = messages.filter(m => m.msg === "inference refused").length;
      const summary = messages.find(m => m.msg.startsWith("inference refusal lines left out"));
      expect(lines).toBeGreaterThanOrEqual(100); // the burst
      expect(lines).toBeLessThan(150);
      expect(summary?.suppressed).toBe(150 - lines);
      expect(summary?.byCode).toEqual({ policy_violation: 150 - lines });
      expect(h.audit.filter(e => e.kind === "inference")).toHaveLength(150);
      expect(messages.filter(m => m.msg === "request refused")).toEqual([]); // only at debug: the refusal line above says it
    } finally {
      jest.useRealTimers();
    }
  });

  it("reserves, per image part, the largest image allowance among the upstreams the request may fall back to", async () => {
    const upstreams = baseProfile.upstreams.map(u => (u.name === "backup" ? { ...u, imageTokens: 1_500 } : u));
    const image = { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } };
    const payload = chat({ max_tokens: 10, messages: [{ role: "user", content: [image] }] });
    const text = Buffer.byteLength(JSON.stringify(payload));
    const reservedWith = async (profile: Partial<Profile>): Promise<number> => {
      const h = harness({ profile: { ...profile, inferencePolicy: { ...baseProfile.inferencePolicy, tokenBudget: { perRequestTokens: 100_000, hourlyTokens: 100_000 } } } });
      const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload });
      expect(res.statusCode).toBe(200);
      return (h.audit.at(-1) as { reservedTokens: number }).reservedTokens;
    };
    // the primary's default (3,800) is larger than the fallback's 1,500
    expect(await reservedWith({ upstreams })).toBe(text + 3_800 + 10);
    // a fallback with a larger allowance (gpt-4o-mini at high detail) raises the reservation: it may serve the request
    expect(await reservedWith({ upstreams: baseProfile.upstreams.map(u => (u.name === "backup" ? { ...u, imageTokens: 48_169 } : u)) })).toBe(text + 48_169 + 10);
  });

  it.each<[string, string, number, string]>([
    ["Content-Length with Transfer-Encoding (a smuggling shape)", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "invalid_request"],
    ["two Content-Lengths", "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}", 400, "invalid_request"],
    ["a malformed request line", "GARBAGE\r\n\r\n", 400, "invalid_request"],
    ["headers over node's limit", `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Pad: ${"p".repeat(20_000)}\r\n\r\n`, 431, "request_too_large"],
  ])("answers a request the HTTP parser refuses (%s) OpenAI-shaped, audited and counted", async (_t, raw, status, code) => {
    const h = harness();
    await h.apps.api.listen({ host: "127.0.0.1", port: 0 });
    const { port } = h.apps.api.server.address() as { port: number };
    const socket = connect(port, "127.0.0.1");
    socket.end(raw);
    let text = "";
    for await (const chunk of socket) text += chunk.toString("latin1");
    const [head, body] = text.split("\r\n\r\n");
    expect(head.split("\r\n")[0]).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(JSON.parse(body)).toEqual({ error: { message: expect.any(String), type: "invalid_request_error", code, param: null } });
    expect(h.audit.at(-1)).toMatchObject({ kind: "inference", api: "other", decision: "refused", code, status });
    const metrics = await inject(h.apps.ops, { method: "GET", url: "/metrics" });
    expect(metrics.body).toContain(`kars_router_requests_total{api="other",code="${code}"} 1\n`);
  });

  it("a policy denying DESIGN's chat_completions action on a model denies it through /v1/responses too", async () => {
    const h = harness({ toolPolicy: "version: 1\npolicies:\n  - {name: no-4o, type: capability, denied_actions: ['inference:chat_completions:gpt-4o'], priority: 10}\n" });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/responses", payload: { model: "gpt-4o", input: "hi" } });
    expect([res.statusCode, res.json().error.code, h.seen.length]).toEqual([403, "policy_denied", 0]);
  });

  it("charges usage above the reservation in full and warns that the budget may have been passed", async () => {
    const logLines: string[] = [];
    const h = harness({ logLines, answer: () => ({ status: 200, body: completion("hi", { prompt_tokens: 4000, completion_tokens: 10, total_tokens: 4010 }) }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ max_tokens: 10 }) });
    expect(res.statusCode).toBe(200);
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(4010);
    const warning = logLines.map(l => JSON.parse(l)).find(l => l.msg.startsWith("usage above the reservation"));
    expect(warning).toMatchObject({ usedTokens: 4010, upstream: "gpt-4o" });
    expect(warning.reservedTokens).toBeLessThan(4010);
  });

  it("forwards nothing while the audit log cannot be written (503), and resumes when it can", async () => {
    const h = harness();
    auditHealthy = false;
    const refused = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat() });
    expect([refused.statusCode, refused.json().error.code, h.seen.length, Number(refused.headers["retry-after"])]).toEqual([503, "upstream_unavailable", 0, 5]);
    auditHealthy = true;
    const ok = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat() });
    expect([ok.statusCode, h.seen.length]).toEqual([200, 1]);
  });

  it("with no upstream configured, refuses inference with 503 upstream_unavailable, audits it and lists no model, without an error line per request", async () => {
    const logLines: string[] = [];
    const h = harness({ profile: { upstreams: [] }, logLines });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat() });
    expect([res.statusCode, res.json().error.code, h.seen.length]).toEqual([503, "upstream_unavailable", 0]);
    expect(res.json().error.message).toMatch(/no model upstream is configured.*KARS_UPSTREAMS/);
    expect(h.audit.at(-1)).toMatchObject({ decision: "refused", code: "upstream_unavailable", status: 503, reservedTokens: 0 });
    const models = await inject(h.apps.api, { method: "GET", url: "/v1/models" });
    expect(models.json()).toEqual({ object: "list", data: [] });
    expect(logLines.filter(l => l.includes('"request failed"'))).toEqual([]);
  });

  it("lists the allowed models", async () => {
    const res = await inject(harness().apps.api, { method: "GET", url: "/v1/models" });
    expect(res.json().data.map((m: { id: string }) => m.id)).toEqual(["gpt-4o", "backup"]);
  });

  type Row = [string, () => Harness, { url?: string; payload?: unknown; headers?: Record<string, string>; times?: number }, number, string];
  const rows: Row[] = [
    ["a second request over the rate limit is rate_limited", () => harness({ profile: { rateLimits: { perAgent: { rps: 1, burst: 1 } } } }), { times: 2 }, 429, "rate_limited"],
    ["a model outside the preference is policy_violation", () => harness(), { payload: chat({ model: "gpt-5" }) }, 403, "policy_violation"],
    ["an action the PolicyEngine denies is policy_denied", () => harness({ toolPolicy: "version: 1\npolicies:\n  - {name: no-4o, type: capability, denied_actions: ['inference:chat_completions:gpt-4o'], priority: 10}\n" }), {}, 403, "policy_denied"],
    ["a reservation over the sandbox's hourly budget is token_budget_exceeded", () => harness({ profile: { inferencePolicy: { tokenBudget: { hourlyTokens: 100 } } } }), { payload: chat({ max_tokens: 200 }) }, 429, "token_budget_exceeded"],
    ["a reservation over the tenant's budget is budget_exceeded", () => harness({ profile: { tenantTokenBudget: { dailyTokens: 100 } } }), { payload: chat({ max_tokens: 200 }) }, 429, "budget_exceeded"],
    ["prompt + max tokens over the per-request cap is per_request_tokens_exceeded", () => harness(), { payload: chat({ max_tokens: 1990 }) }, 429, "per_request_tokens_exceeded"],
    ["two length fields reserve the larger (a small max_completion_tokens cannot hide a large max_tokens)", () => harness(), { payload: chat({ max_completion_tokens: 10, max_tokens: 1990 }) }, 429, "per_request_tokens_exceeded"],
    ["n choices multiply the completion allowance (n × max_tokens over the budget)", () => harness({ profile: { inferencePolicy: { tokenBudget: { hourlyTokens: 250 } } } }), { payload: chat({ max_tokens: 100, n: 3 }) }, 429, "token_budget_exceeded"],
    ["a bad n is 400", () => harness(), { payload: chat({ n: 0 }) }, 400, "invalid_request"],
    ["a remote image URL (fetched by the provider, outside the egress policy) is policy_violation", () => harness(), { payload: chat({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://attacker.example/?k=v" } }] }] }) }, 403, "policy_violation"],
    ["a hosted MCP tool is policy_violation", () => harness(), { payload: chat({ tools: [{ type: "mcp", server_url: "https://attacker.example/mcp" }] }) }, 403, "policy_violation"],
    ["a completion above the content-safety floor is content_policy_violation", () => harness({ answer: () => ({ status: 200, body: completion("x", undefined, { violence: { filtered: false, severity: "medium" } }) }) }), {}, 403, "content_policy_violation"],
    ["Azure's filtered-prompt 400 is content_policy_violation", () => harness({ answer: () => ({ status: 400, body: { error: { code: "content_filter", message: "The response was filtered" } } }) }), {}, 403, "content_policy_violation"],
    ["a body that is not JSON is 400", () => harness(), { payload: "{nope", headers: { "content-type": "application/json" } }, 400, "invalid_request"],
    ["messages that are not a list are 400", () => harness(), { payload: { model: "gpt-4o", messages: "hi" } }, 400, "invalid_request"],
    ["a bad max_tokens is 400", () => harness(), { payload: chat({ max_tokens: -1 }) }, 400, "invalid_request"],
    ["a float-sized max_tokens is 400 (it would round the budget counters away)", () => harness(), { payload: chat({ max_tokens: 1e300 }) }, 400, "invalid_request"],
    ["n × a huge max_tokens is 400, not a 500", () => harness(), { payload: chat({ n: 2, max_tokens: 1e308 }) }, 400, "invalid_request"],
    ["a prompt nested thousands deep is 400, not a stack overflow", () => harness(), { payload: `{"model":"gpt-4o","messages":[{"role":"user","content":${"[".repeat(20_000)}${"]".repeat(20_000)}}]}`, headers: { "content-type": "application/json" } }, 400, "invalid_request"],
    ["a field outside the prompt nested thousands deep is 400, not a 502 that trips the breaker", () => harness(), { payload: `{"model":"gpt-4o","messages":[],"metadata":${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}}`, headers: { "content-type": "application/json" } }, 400, "invalid_request"],
    ["a completion length the router does not read (n_predict) is policy_violation", () => harness(), { payload: chat({ n_predict: 20000 }) }, 403, "policy_violation"],
    ["a model name longer than 256 characters is 400", () => harness(), { payload: chat({ model: "m".repeat(300_000) }) }, 400, "invalid_request"],
    ["a body over the limit is 413", () => harness(), { payload: chat({ pad: "x".repeat(9 * 1024 * 1024) }) }, 413, "request_too_large"],
    ["a non-JSON content type is 415", () => harness(), { payload: "hello", headers: { "content-type": "text/plain" } }, 415, "unsupported_media_type"],
    ["every upstream failing is 502", () => harness({ answer: () => ({ status: 500, body: {} }) }), {}, 502, "upstream_error"],
    ["every upstream rate limiting is 503", () => harness({ answer: () => ({ status: 429, body: {} }) }), {}, 503, "upstream_unavailable"],
    ["the upstream refusing the router's credential is 502", () => harness({ answer: () => ({ status: 401, body: { error: { message: "bad key Bearer upstream-key" } } }) }), {}, 502, "upstream_error"],
    ["an upstream 400 echoing the router's key never shows it", () => harness({ answer: () => ({ status: 400, body: { error: { message: "Incorrect API key provided: upstream-key", param: "key=upstream-key" } } }) }), {}, 400, "invalid_request"],
    ["an unknown route is 404", () => harness(), { url: "/v1/nope" }, 404, "not_found"],
    ["an unknown route of 10,000 characters is 404, its path cut short in the message", () => harness(), { url: `/v1/${"x".repeat(10_000)}?token=secret` }, 404, "not_found"],
  ];
  it.each(rows)("%s", async (_t, make, req, status, code) => {
    const h = make();
    let res: Awaited<ReturnType<typeof inject>> | undefined;
    for (let i = 0; i < (req.times ?? 1); i++) {
      res = await inject(h.apps.api, { method: "POST", url: req.url ?? "/v1/chat/completions", payload: (req.payload ?? chat()) as string, headers: req.headers });
    }
    expect(res!.statusCode).toBe(status);
    const body = res!.json();
    expect(Object.keys(body)).toEqual(["error"]);
    expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
    expect(body.error.code).toBe(code);
    expect(res!.body).not.toContain("upstream-key");
    expect(body.error.message.length).toBeLessThanOrEqual(1100); // no agent string is echoed at length
    expect(res!.body).not.toContain("secret");
    if (code === "rate_limited") expect(Number(res!.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    if (status !== 404 && status < 500 && code !== "rate_limited" && code !== "content_policy_violation") {
      expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(0); // a refusal charges nothing
    }
  });

  // every refusal an agent meets is in the hash-chained audit log and counted in metrics, once: those of
  // the inference path (before the budget too) and the HTTP layer's own (bad JSON, 413, 415, 404)
  it.each(rows)("audits and counts the refusal: %s", async (_t, make, req, status, code) => {
    const h = make();
    for (let i = 0; i < (req.times ?? 1); i++) {
      await inject(h.apps.api, { method: "POST", url: req.url ?? "/v1/chat/completions", payload: (req.payload ?? chat()) as string, headers: req.headers });
    }
    const beforeService = ["request_too_large", "unsupported_media_type", "not_found"].includes(code) || req.payload === "{nope";
    const model = beforeService ? null : ((req.payload as { model?: unknown } | undefined)?.model ?? "gpt-4o");
    const api = code === "not_found" ? "other" : "chat";
    const audited = typeof model !== "string" ? null : model.length > 256 ? `${model.slice(0, 256)}…` : model; // agent strings are bounded
    expect(h.audit.at(-1)).toMatchObject({ kind: "inference", sandbox: "demo", tenant: "team-a", api, decision: "refused", code, status, model: audited });
    expect(h.audit.filter(e => e.kind === "inference" && e.decision === "refused")).toHaveLength(1);
    const metrics = await inject(h.apps.ops, { method: "GET", url: "/metrics" });
    expect(metrics.body).toContain(`kars_router_requests_total{api="${api}",code="${code}"} 1\n`);
  });

  it("a filtered stream chunk after output started ends the stream with an error event and settles", async () => {
    const h = harness({
      answer: () => ({
        status: 200,
        sse: [
          { choices: [{ index: 0, delta: { content: "ok" }, content_filter_results: {} }] },
          { choices: [{ index: 0, delta: { content: "bad" }, content_filter_results: { hate: { filtered: false, severity: "high" } } }] },
          { choices: [], usage: { total_tokens: 9 } },
        ],
      }),
    });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ stream: true }) });
    expect(res.body).toContain('"content":"ok"');
    expect(res.body).not.toContain('"content":"bad"');
    expect(res.body).toContain('"code":"content_policy_violation"');
    expect(h.audit.at(-1)).toMatchObject({ decision: "refused", code: "content_policy_violation" });
  });

  it.each<[string, unknown, boolean]>([
    ["above the floor: refused, and none of the unannotated output reaches the agent", { violence: { filtered: false, severity: "high" } }, false],
    ["within the floor: everything follows in order", { violence: { filtered: false, severity: "safe" } }, true],
  ])("Azure's asynchronous filter mode (annotations after the content) on a chat stream, %s", async (_t, late, passes) => {
    const h = harness({
      profile: { upstreams: [{ name: "gpt-4o", provider: "azure-openai", endpoint: "http://127.0.0.1:1", deployment: "real-4o" }] as Profile["upstreams"], inferencePolicy: { ...baseProfile.inferencePolicy, modelPreference: { primary: "gpt-4o" } } },
      answer: () => ({
        status: 200,
        sse: [
          { choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] },
          { choices: [{ index: 0, delta: { role: "assistant", content: "" } }] },
          { choices: [{ index: 0, delta: { content: "VIOLENT-TEXT" } }] },
          { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
          { choices: [{ index: 0, delta: {}, content_filter_results: late, content_filter_offsets: { check_offset: 0, start_offset: 0, end_offset: 12 } }] },
          { choices: [], usage: { total_tokens: 9 } },
          "[DONE]",
        ],
      }),
    });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ stream: true }) });
    expect(res.body.includes("VIOLENT-TEXT")).toBe(passes);
    expect(res.body.includes('"code":"content_policy_violation"')).toBe(!passes);
    if (passes) expect(res.body.indexOf("VIOLENT-TEXT")).toBeLessThan(res.body.indexOf("content_filter_offsets"));
    const last = h.audit.at(-1) as { reservedTokens: number };
    // refused: the upstream is left before its usage chunk, so the reservation is charged (fail closed)
    expect(last).toMatchObject({ decision: passes ? "allowed" : "refused", usedTokens: passes ? 9 : last.reservedTokens });
  });

  it.each<[string, Answer]>([
    ["a whole answer", { status: 200, body: completion("your key is upstream-key") }],
    ["a stream", { status: 200, sse: [{ choices: [{ index: 0, delta: { content: "your key is upstream-key" }, content_filter_results: {} }] }, { choices: [], usage: { total_tokens: 3 } }] }],
    ["a whole answer, base64-encoded", { status: 200, body: completion(`your key is ${Buffer.from("upstream-key").toString("base64")}`) }],
    ["a stream splitting it across events", { status: 200, sse: [{ choices: [{ index: 0, delta: { content: "your key is upstre" }, content_filter_results: {} }] }, { choices: [{ index: 0, delta: { content: "am-key, no more" }, content_filter_results: {} }] }, { choices: [], usage: { total_tokens: 3 } }] }],
    ["a stream event hiding it behind JSON escapes", { status: 200, sse: ['{"choices":[{"index":0,"delta":{"content":"your key is \\u0075pstream-\\u006bey"},"content_filter_results":{}}]}', { choices: [], usage: { total_tokens: 3 } }] }],
  ])("never returns the router's credential, even echoed by the upstream in %s", async (_t, answer) => {
    const h = harness({ answer: () => answer });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ stream: "sse" in answer }) });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("your key is [redacted]");
    expect(res.body).not.toContain("upstream-key");
    expect(res.body).not.toMatch(/pstream-\\u006bey/);
    expect(res.body).not.toMatch(/upstre|am-key/); // no piece of it either
  });

  it.each<[string, boolean, number, string | null]>([
    ["under a floor, a stream event whose data is not JSON is refused, never passed on unjudged", true, 502, "upstream_error"],
    ["without a floor it is passed on", false, 200, null],
  ])("%s", async (_t, floor, status, code) => {
    const unreadable = '{"choices":[{"index":0,"delta":{"content":"unjudged"}}],"x":NaN}';
    const h = harness({
      profile: floor ? {} : { inferencePolicy: { ...baseProfile.inferencePolicy, contentSafety: undefined } },
      answer: () => ({ status: 200, sse: [unreadable, { choices: [], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } }, "[DONE]"] }),
    });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ stream: true }) });
    expect(res.statusCode).toBe(status);
    if (code) {
      expect(res.json().error.code).toBe(code);
      expect(res.body).not.toContain("unjudged");
    } else expect(res.body).toContain("unjudged");
  });

  const filteredChunk = { choices: [{ index: 0, delta: { content: "HARMFUL-OUTPUT" }, content_filter_results: { violence: { filtered: true, severity: "high" } } }] };
  it.each<[string, boolean, Answer, number, string | null]>([
    ["a stream asked for, a JSON body given: judged whole, refused", true, { status: 200, body: completion("HARMFUL-OUTPUT", undefined, { violence: { filtered: true, severity: "high" } }) }, 403, "content_policy_violation"],
    ["a stream asked for, a JSON body given, within the floor: passed whole", true, { status: 200, body: completion("fine") }, 200, null],
    ["under a floor, an event whose data is a JSON array is refused", true, { status: 200, raw: `data: ${JSON.stringify([filteredChunk])}\n\n`, contentType: "text/event-stream" }, 502, "upstream_error"],
    ["under a floor, an event whose data is a JSON string is refused", true, { status: 200, raw: `data: "HARMFUL-OUTPUT"\n\n`, contentType: "text/event-stream" }, 502, "upstream_error"],
    ["under a floor, stream text that is not an SSE event is refused", true, { status: 200, raw: `${JSON.stringify(filteredChunk)}\n\n`, contentType: "text/event-stream" }, 502, "upstream_error"],
    ["under a floor, a line of an unknown field is refused", true, { status: 200, raw: `data: {"choices":[]}\nx-content: HARMFUL-OUTPUT\n\n`, contentType: "text/event-stream; charset=utf-8" }, 502, "upstream_error"],
    ["without a floor, such text is passed on", false, { status: 200, raw: `${JSON.stringify({ choices: [{ index: 0, delta: { content: "HARMFUL-OUTPUT" } }] })}\n\n`, contentType: "text/event-stream" }, 200, null],
  ])("%s", async (_t, floor, answer, status, code) => {
    const h = harness({ profile: floor ? {} : { inferencePolicy: { ...baseProfile.inferencePolicy, contentSafety: undefined } }, answer: () => answer });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ stream: true }) });
    expect(res.statusCode).toBe(status);
    if (code) {
      expect(res.json().error.code).toBe(code);
      expect(res.body).not.toContain("HARMFUL-OUTPUT");
    }
  });

  it("a whole answer goes out as judged: a duplicate key's first value (an escaped key, unfiltered text) does not pass", async () => {
    const esc = [..."upstream-key"].map(c => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("");
    const raw = `{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"${esc} HARMFUL","content":"fine"},"finish_reason":"stop","content_filter_results":{}}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`;
    const h = harness({ answer: () => ({ status: 200, raw, contentType: "application/json" }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({}) });
    expect(res.statusCode).toBe(200);
    expect(res.json().choices[0].message.content).toBe("fine");
    expect(res.body).not.toContain("HARMFUL");
    expect(res.body).not.toContain(esc.slice(0, 24));
  });

  it("a prompt refused in the first stream chunk is a plain 403", async () => {
    const h = harness({ answer: () => ({ status: 200, sse: [{ choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: { hate: { filtered: true, severity: "high" } } }] }] }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat({ stream: true }) });
    expect([res.statusCode, res.json().error.code]).toEqual([403, "content_policy_violation"]);
  });
});

describe("router API: content-safety floor on Responses", () => {
  const safe = { hate: { filtered: false, severity: "safe" }, self_harm: { filtered: false, severity: "safe" }, sexual: { filtered: false, severity: "safe" }, violence: { filtered: false, severity: "safe" } };
  const usage = { input_tokens: 4, output_tokens: 3, total_tokens: 7 };
  /** An Azure OpenAI v1 response object with its prompt and completion `content_filters`. */
  const response = (completion: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    id: "resp_1", object: "response", status: "completed", error: null, incomplete_details: null,
    output: [{ type: "message", id: "msg_1", role: "assistant", status: "completed", content: [{ type: "output_text", text: "Hello!", annotations: [] }] }],
    content_filters: [
      { blocked: false, source_type: "prompt", content_filter_results: { ...safe, jailbreak: { filtered: false, detected: false } } },
      { blocked: false, source_type: "completion", content_filter_results: { ...safe, ...completion } },
    ],
    usage,
    ...extra,
  });
  const created = { type: "response.created", sequence_number: 0, response: { id: "resp_1", object: "response", status: "in_progress", output: [], content_filters: null } };
  const inProgress = { type: "response.in_progress", sequence_number: 1, response: { id: "resp_1", object: "response", status: "in_progress", output: [], content_filters: null } };
  const delta = (text: string, n: number) => ({ type: "response.output_text.delta", sequence_number: n, item_id: "msg_1", output_index: 0, content_index: 0, delta: text });
  const completed = (completion: Record<string, unknown>) => ({ type: "response.completed", sequence_number: 9, response: response(completion) });
  const hateHigh = { hate: { filtered: false, severity: "high" } };
  const responsesBody = (extra: Record<string, unknown> = {}) => ({ model: "gpt-4o", input: "hello", ...extra });
  /** The `data:` payloads of an SSE body, in order. */
  const events = (body: string) => body.split("\n\n").filter(e => e.startsWith("data: ")).map(e => JSON.parse(e.slice(6)) as { type?: string; error?: { code: string } });

  it("a whole Responses answer within the floor passes unchanged", async () => {
    const h = harness({ answer: () => ({ status: 200, body: response({ hate: { filtered: false, severity: "low" } }) }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/responses", payload: responsesBody() });
    expect([res.statusCode, res.json().output[0].content[0].text, res.json().content_filters[1].source_type]).toEqual([200, "Hello!", "completion"]);
    expect(h.audit.at(-1)).toMatchObject({ api: "responses", decision: "allowed", usedTokens: 7 });
  });

  it.each<[string, unknown, RegExp]>([
    ["a completion above the floor", response(hateHigh), /content_filters\[1\] \(completion\): hate severity High is above the policy's Low/],
    ["a prompt the upstream blocked", response({}, { content_filters: [{ blocked: true, source_type: "prompt", content_filter_results: { jailbreak: { filtered: true, detected: true } } }] }), /content_filters\[0\] \(prompt\): jailbreak was filtered by the upstream/],
    ["an answer the upstream stopped for content", response({}, { status: "incomplete", incomplete_details: { reason: "content_filter" } }), /incomplete_details: the upstream stopped the answer/],
  ])("a whole Responses answer with %s is a 403 content_policy_violation, charged to its usage", async (_t, answer, message) => {
    const h = harness({ answer: () => ({ status: 200, body: answer }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/responses", payload: responsesBody() });
    expect([res.statusCode, res.json().error.code, res.json().error.type]).toEqual([403, "content_policy_violation", "invalid_request_error"]);
    expect(res.json().error.message).toMatch(message);
    expect(res.body).not.toContain("Hello!");
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(7); // generated all the same
    expect(h.audit.at(-1)).toMatchObject({ api: "responses", decision: "refused", code: "content_policy_violation" });
  });

  it("a streamed Responses answer within the floor arrives whole and in order once response.completed's annotations passed", async () => {
    const sse = [created, inProgress, delta("Hel", 2), delta("lo!", 3), completed({ violence: { filtered: false, severity: "low" } })];
    const h = harness({ answer: () => ({ status: 200, sse }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/responses", payload: responsesBody({ stream: true }) });
    expect(res.statusCode).toBe(200);
    expect(events(res.body)).toEqual(sse);
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(7);
    expect(h.audit.at(-1)).toMatchObject({ decision: "allowed", usedTokens: 7 });
  });

  it("a streamed Responses answer above the floor sends none of its held output: the lifecycle events, then the error event", async () => {
    const h = harness({ answer: () => ({ status: 200, sse: [created, inProgress, delta("bad", 2), completed(hateHigh)] }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/responses", payload: responsesBody({ stream: true }) });
    expect(res.statusCode).toBe(200); // the lifecycle events had gone out
    const got = events(res.body);
    expect(got.map(e => e.type ?? e.error?.code)).toEqual(["response.created", "response.in_progress", "content_policy_violation"]);
    expect(res.body).not.toContain("bad");
    expect(h.ledger.used("sandbox:demo", "hourly", NOW)).toBe(7);
    expect(h.audit.at(-1)).toMatchObject({ decision: "refused", code: "content_policy_violation" });
  });

  it.each<[string, unknown[]]>([
    ["an upstream that streams output before any lifecycle event", [delta("bad", 0), completed(hateHigh)]],
    ["Azure's filtered-stream ending as the first event", [{ type: "error", sequence_number: 0, error: { type: "invalid_request_error", code: "content_policy_violation", message: "blocked" } }]],
  ])("a streamed Responses refusal while everything is held is a plain 403: %s", async (_t, sse) => {
    const h = harness({ answer: () => ({ status: 200, sse }) });
    const res = await inject(h.apps.api, { method: "POST", url: "/v1/responses", payload: responsesBody({ stream: true }) });
    expect([res.statusCode, res.json().error.code]).toEqual([403, "content_policy_violation"]);
    expect(res.body).not.toContain("bad");
  });

  it("without a floor a Responses stream passes event by event, and an upstream block still ends it with an error event", async () => {
    const blocked = { type: "response.completed", sequence_number: 9, response: response({}, { content_filters: [{ blocked: true, source_type: "completion", content_filter_results: {} }] }) };
    const noFloor = { inferencePolicy: { ...baseProfile.inferencePolicy, contentSafety: undefined } };
    const passes = harness({ profile: noFloor, answer: () => ({ status: 200, sse: [created, delta("Hel", 1), completed(hateHigh)] }) });
    const ok = await inject(passes.apps.api, { method: "POST", url: "/v1/responses", payload: responsesBody({ stream: true }) });
    expect(events(ok.body).map(e => e.type)).toEqual(["response.created", "response.output_text.delta", "response.completed"]); // no floor: a high severity is not judged
    const ends = harness({ profile: noFloor, answer: () => ({ status: 200, sse: [created, delta("Hel", 1), blocked] }) });
    const cut = await inject(ends.apps.api, { method: "POST", url: "/v1/responses", payload: responsesBody({ stream: true }) });
    expect(events(cut.body).map(e => e.type ?? e.error?.code)).toEqual(["response.created", "response.output_text.delta", "content_policy_violation"]);
  });
});

describe("ops app", () => {
  it.each<[string, string, Record<string, string>, number]>([
    ["healthz answers", "/healthz", {}, 200],
    ["readyz answers", "/readyz", {}, 200],
    ["policy status without a token is 401", "/internal/policy-status", {}, 401],
    ["policy status with a wrong token is 401", "/internal/policy-status", { authorization: "Bearer nope" }, 401],
    ["policy status with the token answers", "/internal/policy-status", { authorization: "Bearer ops-secret" }, 200],
  ])("%s", async (_t, url, headers, status) => {
    expect((await inject(harness().apps.ops, { method: "GET", url, headers })).statusCode).toBe(status);
  });

  it("policy status reports the profile digest and the budget left", async () => {
    const h = harness();
    await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat() });
    const body = (await inject(h.apps.ops, { method: "GET", url: "/internal/policy-status", headers: { authorization: "Bearer ops-secret" } })).json();
    expect(body.profileDigest).toMatch(/^sha256:/);
    expect(body.budgets["sandbox:demo"].hourly).toEqual({ used: 8, remaining: 4992 });
  });

  it("without a configured ops token the internal endpoints refuse (fail closed)", async () => {
    const res = await inject(harness({ opsToken: null }).apps.ops, { method: "GET", url: "/internal/policy-status", headers: { authorization: "Bearer " } });
    expect(res.statusCode).toBe(401);
  });

  it("exposes Prometheus metrics", async () => {
    const h = harness();
    await inject(h.apps.api, { method: "POST", url: "/v1/chat/completions", payload: chat() });
    const text = (await inject(h.apps.ops, { method: "GET", url: "/metrics" })).body;
    expect(text).toContain('kars_router_requests_total{api="chat",code="ok"} 1');
    expect(text).toContain('kars_router_budget_remaining_tokens{scope="sandbox",window="hourly"} 4992');
  });
});
