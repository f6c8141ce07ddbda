/**
 * The router as an agent sees it (issue 3 "Show it"): a real `kars router` process, the unchanged
 * `openai` SDK as client, a loopback Azure-shaped upstream, and a loopback Entra token endpoint for
 * Workload Identity. Proves: SDK calls (stream and not) work; the upstream saw a bearer token the
 * agent never had; no credential comes back; refusals are OpenAI-shaped; a stream whose client went
 * away is still settled; Responses API streams (`responses.create({stream: true})`) pass every event
 * through and settle to the `response.completed` usage, also when the client went away; the
 * content-safety floor judges Azure's Responses `content_filters` (stream and not) and the agent gets
 * none of a refused stream's output; LISTEN lines; clean stop on SIGTERM.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import OpenAI from "openai";
import { request } from "undici";
import { COMPLETION_TOKENS, PROMPT_TOKENS, startFakeUpstream, type FakeUpstream } from "./router-support/fake-upstream";
import { startFakeTokenEndpoint, type FakeTokenEndpoint, workloadIdentityEnv } from "./router-support/fake-token-endpoint";
import { startRouterProcess, type RouterProcess } from "./router-support/router-process";

jest.setTimeout(120_000);

const TENANT_ID = "00000000-0000-0000-0000-00000000aaaa";
const CLIENT_ID = "11111111-1111-1111-1111-111111111111";
const FEDERATED_TOKEN = "federated-sa-token-of-the-router";
const OPS_TOKEN = "ops-token-for-tests";

let dir: string;
let upstream: FakeUpstream;
let entra: FakeTokenEndpoint;
let router: RouterProcess;
let client: OpenAI;

async function policyStatus(): Promise<{ budgets: Record<string, Record<string, { used: number; remaining: number | null }>> }> {
  const res = await request(`http://${router.listen.ops}/internal/policy-status`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } });
  return (await res.body.json()) as never;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-router-sdk-"));
  const configDir = path.join(dir, "etc-kars");
  fs.mkdirSync(configDir);
  upstream = await startFakeUpstream();
  entra = await startFakeTokenEndpoint(dir, TENANT_ID);
  fs.writeFileSync(path.join(dir, "federated-token"), FEDERATED_TOKEN);
  fs.writeFileSync(path.join(configDir, "ops-token"), OPS_TOKEN);
  fs.writeFileSync(
    path.join(configDir, "profile.json"),
    JSON.stringify({
      sandbox: "sdk-demo",
      tenant: "team-a",
      egressMode: "Strict",
      allowedEndpoints: [],
      inferencePolicy: {
        tokenBudget: { perRequestTokens: 4000, hourlyTokens: 100000, dailyTokens: 200000, monthlyTokens: 1000000 },
        contentSafety: { hate: "Low", selfHarm: "Low", sexual: "Low", violence: "Low", requirePromptShields: true },
        modelPreference: { primary: "gpt-4o", fallback: [] },
      },
      upstreams: [{ name: "gpt-4o", provider: "azure-openai", endpoint: upstream.url, deployment: "gpt4o-prod", apiVersion: "2024-10-21" }],
      listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
    }),
  );
  router = await startRouterProcess(configDir, path.join(dir, "state"), {
    ...workloadIdentityEnv(entra, TENANT_ID, CLIENT_ID, path.join(dir, "federated-token")),
    KARS_CONFIG_POLL_MS: "200",
  });
  client = new OpenAI({ baseURL: `http://${router.listen.api}/v1`, apiKey: "agent-has-no-real-key", maxRetries: 0 });
});

afterAll(async () => {
  await router?.kill9().catch(() => undefined);
  await upstream?.close();
  await entra?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("prints a LISTEN line per listener with a loopback address", () => {
  expect(router.listen.api).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(router.listen.ops).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(router.listen.egress).toMatch(/^127\.0\.0\.1:\d+$/);
});

it("answers a chat completion through the SDK with a Workload Identity token the agent never had", async () => {
  const before = upstream.received.length;
  const res = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] }).withResponse();
  expect(res.data.choices[0].message.content).toBe("Hello!");
  const seen = upstream.received[before];
  expect(seen.url).toBe("/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21");
  expect(seen.headers.authorization).toBe(`Bearer ${entra.accessToken}`);
  expect(JSON.stringify(seen.headers)).not.toContain("agent-has-no-real-key");
  expect(entra.assertions).toContain(FEDERATED_TOKEN);
  const headersText = JSON.stringify(Object.fromEntries(res.response.headers.entries()));
  expect(headersText).not.toContain(entra.accessToken);
  expect(JSON.stringify(res.data)).not.toContain(entra.accessToken);
  expect(await router.settledLogs()).not.toContain(entra.accessToken);
});

it("streams through the SDK and settles the budget to the reported usage", async () => {
  const usedBefore = await spendNow();
  const stream = await client.chat.completions.create({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: "stream please" }] });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  expect(text).toBe("Hello!");
  expect(growth(usedBefore, await spendNow())).toBe(PROMPT_TOKENS + COMPLETION_TOKENS);
});

it("serves embeddings, responses and models", async () => {
  const emb = await client.embeddings.create({ model: "gpt-4o", input: "abc" });
  expect(emb.data[0].embedding.map(v => Math.round(v * 10) / 10)).toEqual([0.1, 0.2, 0.3]);
  const resp = await client.responses.create({ model: "gpt-4o", input: "hi" });
  expect(resp.output_text).toBe("hello from responses");
  const models = await client.models.list();
  expect(models.data.map(m => m.id)).toEqual(["gpt-4o"]);
});

it.each<[string, () => Promise<unknown>, number, string]>([
  ["a model the policy does not allow", () => client.chat.completions.create({ model: "gpt-5", messages: [{ role: "user", content: "x" }] }), 403, "policy_violation"],
  ["a completion above the content-safety floor", () => client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "[[hate]]" }] }), 403, "content_policy_violation"],
  ["a request above the per-request cap", () => client.chat.completions.create({ model: "gpt-4o", max_tokens: 5000, messages: [{ role: "user", content: "x" }] }), 429, "per_request_tokens_exceeded"],
  ["a Responses answer above the content-safety floor", () => client.responses.create({ model: "gpt-4o", input: "[[hate]]" }), 403, "content_policy_violation"],
  ["a Responses prompt Azure blocked (400 content_filter with content_filters)", () => client.responses.create({ model: "gpt-4o", input: "[[jailbreak]]" }), 403, "content_policy_violation"],
  ["a streamed Responses prompt Azure blocked, before any event", () => client.responses.create({ model: "gpt-4o", input: "[[jailbreak]]", stream: true }), 403, "content_policy_violation"],
])("refuses %s with an OpenAI-shaped error the SDK understands", async (_t, call, status, code) => {
  const err = await call().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.APIError);
  const apiError = err as InstanceType<typeof OpenAI.APIError>;
  expect([apiError.status, apiError.code]).toEqual([status, code]);
  expect(Object.keys(apiError.error as object).sort()).toEqual(["code", "message", "param", "type"]);
});

it("serves a Responses answer whose annotations are at the floor, stream and not", async () => {
  const whole = await client.responses.create({ model: "gpt-4o", input: "[[hate-low]]" });
  expect(whole.output_text).toBe("hello from responses");
  const stream = await client.responses.create({ model: "gpt-4o", input: "[[hate-low]] stream", stream: true });
  let text = "";
  let completed: OpenAI.Responses.ResponseCompletedEvent | undefined;
  for await (const event of stream) {
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.completed") completed = event;
  }
  expect(text).toBe("Hello!");
  // Azure's annotations reach the agent unchanged (the SDK keeps unknown fields)
  expect((completed?.response as unknown as { content_filters: { source_type: string; content_filter_results: { hate: unknown } }[] }).content_filters[1]).toMatchObject({ source_type: "completion", content_filter_results: { hate: { filtered: false, severity: "low" } } });
});

it("refuses a streamed Responses answer above the floor: the agent sees the lifecycle events, then an OpenAI-shaped content_policy_violation, and none of the output", async () => {
  const usedBefore = await spendNow();
  const stream = await client.responses.create({ model: "gpt-4o", input: "[[hate]] stream", stream: true });
  const types: string[] = [];
  let text = "";
  const err = await (async () => {
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
    }
  })().then(() => undefined, (e: unknown) => e);
  expect(types).toEqual(["response.created", "response.in_progress"]);
  expect(text).toBe("");
  expect(err).toBeInstanceOf(OpenAI.APIError);
  const apiError = err as InstanceType<typeof OpenAI.APIError>;
  // the stream had begun (200) with the output-free lifecycle events, so the refusal is the stream's error event
  expect(apiError.code).toBe("content_policy_violation");
  expect(apiError.error).toMatchObject({ type: "invalid_request_error", code: "content_policy_violation", message: expect.stringContaining("response.content_filters[1] (completion): hate severity High is above the policy's Low") });
  // the upstream generated it all the same: charged to its usage
  expect(await spendGrowth(usedBefore, PROMPT_TOKENS + COMPLETION_TOKENS)).toBe(PROMPT_TOKENS + COMPLETION_TOKENS);
});

it("settles a stream whose client disconnected, once the upstream finishes", async () => {
  const usedBefore = await spendNow();
  const completedBefore = upstream.completedStreams();
  const abort = new AbortController();
  const stream = await client.chat.completions.create({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: "[[slow 1500]]" }] }, { signal: abort.signal });
  const it = stream[Symbol.asyncIterator]();
  await it.next(); // the first chunk arrived: then the agent goes away
  abort.abort();
  await it.return?.();
  for (let i = 0; i < 100 && upstream.completedStreams() === completedBefore; i++) await new Promise(r => setTimeout(r, 100));
  expect(await spendGrowth(usedBefore, PROMPT_TOKENS + COMPLETION_TOKENS)).toBe(PROMPT_TOKENS + COMPLETION_TOKENS);
});

/** The sandbox's spend in each window, and when it was read (ms). */
interface Spend {
  hourly: number;
  daily: number;
  monthly: number;
  at: number;
}

async function spendNow(): Promise<Spend> {
  const at = Date.now();
  const b = (await policyStatus()).budgets["sandbox:sdk-demo"];
  return { hourly: b.hourly.used, daily: b.daily.used, monthly: b.monthly.used, at };
}

/** Spend growth between two readings, in the smallest UTC window both fall in (a test running across an hour boundary reads the day's). */
function growth(before: Spend, after: Spend): number {
  const [b, a] = [new Date(before.at), new Date(after.at)];
  const sameMonth = b.getUTCFullYear() === a.getUTCFullYear() && b.getUTCMonth() === a.getUTCMonth();
  const sameDay = sameMonth && b.getUTCDate() === a.getUTCDate();
  const sameHour = sameDay && b.getUTCHours() === a.getUTCHours();
  return sameHour ? after.hourly - before.hourly : sameDay ? after.daily - before.daily : after.monthly - before.monthly;
}

/** Polls the sandbox's spend until it has grown by `delta` since `before` (or 5 s passed); returns the growth. */
async function spendGrowth(before: Spend, delta: number): Promise<number> {
  let g = growth(before, await spendNow());
  for (let i = 0; i < 50 && g !== delta; i++) {
    await new Promise(r => setTimeout(r, 100));
    g = growth(before, await spendNow());
  }
  return g;
}

it("streams a Responses API answer through the SDK: every event, the deltas, and the budget settled to response.completed's usage", async () => {
  const usedBefore = await spendNow();
  const receivedBefore = upstream.received.length;
  const stream = await client.responses.create({ model: "gpt-4o", input: "stream a response", stream: true });
  const types: string[] = [];
  let text = "";
  let completed: OpenAI.Responses.ResponseCompletedEvent | undefined;
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.completed") completed = event;
  }
  expect(types).toEqual([
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
  ]);
  expect(text).toBe("Hello!");
  expect(completed?.response.usage).toMatchObject({ input_tokens: PROMPT_TOKENS, output_tokens: COMPLETION_TOKENS, total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS });
  const seen = upstream.received[receivedBefore];
  expect(seen.url).toBe("/openai/v1/responses"); // the v1 surface: the profile's chat apiVersion (2024-10-21) predates Responses
  expect(seen.body).toMatchObject({ model: "gpt4o-prod", stream: true, max_output_tokens: expect.any(Number) });
  expect(seen.headers.authorization).toBe(`Bearer ${entra.accessToken}`);
  // settled before the router ended the stream, so no waiting: the usage, not the reservation (~4000)
  expect(growth(usedBefore, await spendNow())).toBe(PROMPT_TOKENS + COMPLETION_TOKENS);
});

it("settles a Responses API stream whose client disconnected, once the upstream finishes", async () => {
  const usedBefore = await spendNow();
  const completedBefore = upstream.completedStreams();
  const abort = new AbortController();
  const stream = await client.responses.create({ model: "gpt-4o", input: "[[slow 1500]]", stream: true }, { signal: abort.signal });
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next(); // the first event arrived: then the agent goes away
  expect(first.value?.type).toBe("response.created");
  abort.abort();
  await it.return?.();
  // still reserved (~4000 tokens) while the upstream keeps generating for the gone client
  expect(growth(usedBefore, await spendNow())).toBeGreaterThan(PROMPT_TOKENS + COMPLETION_TOKENS);
  for (let i = 0; i < 100 && upstream.completedStreams() === completedBefore; i++) await new Promise(r => setTimeout(r, 100));
  expect(upstream.completedStreams()).toBe(completedBefore + 1);
  expect(await spendGrowth(usedBefore, PROMPT_TOKENS + COMPLETION_TOKENS)).toBe(PROMPT_TOKENS + COMPLETION_TOKENS);
});

it("serves metrics and readiness on the ops port", async () => {
  const metrics = await request(`http://${router.listen.ops}/metrics`);
  const text = await metrics.body.text();
  expect(metrics.statusCode).toBe(200);
  expect(text).toMatch(/^kars_router_requests_total\{api="chat",code="ok"\} \d+$/m);
  expect(text).toContain('kars_router_requests_total{api="chat",code="policy_violation"} 1');
  const ready = await request(`http://${router.listen.ops}/readyz`);
  expect([ready.statusCode, await ready.body.json()]).toEqual([200, { ready: true, reasons: [] }]);
});

it("a broken profile.json keeps the last good one, says why on /readyz and in the log, and recovers", async () => {
  const file = path.join(dir, "etc-kars", "profile.json");
  const good = fs.readFileSync(file, "utf8");
  const readyz = async () => {
    const res = await request(`http://${router.listen.ops}/readyz`);
    return { status: res.statusCode, body: (await res.body.json()) as { reasons: string[] } };
  };
  // the router's config directory and the egress proxy's config store each poll the file: wait for the router's own reason
  const ownReason = (x: { body: { reasons: string[] } }) => x.body.reasons.some(m => m.startsWith("profile.json: ") && m.includes("egressMode"));
  fs.writeFileSync(file, good.replace('"egressMode":"Strict"', '"egressMode":"Sideways"'));
  let r = await readyz();
  for (let i = 0; i < 50 && !ownReason(r); i++) r = await (new Promise(res => setTimeout(res, 100)).then(readyz));
  expect(r.status).toBe(503);
  expect(ownReason(r)).toBe(true);
  // both pollers reject the file, each on its own clock, and log lines are gathered for LOG_FLUSH_MS:
  // wait for the router's own line (the egress proxy's "egress config file rejected" may come first)
  const ownLine = "config file rejected; keeping the last good version";
  for (let i = 0; i < 100 && !router.logs().includes(ownLine); i++) await new Promise(res => setTimeout(res, 50));
  expect(router.logs()).toContain(ownLine);
  // still serving with the last good profile
  const answer = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "still there?" }] });
  expect(answer.choices[0].message.content).toBe("Hello!");
  fs.writeFileSync(file, good);
  for (let i = 0; i < 50 && r.status !== 200; i++) r = await (new Promise(res => setTimeout(res, 100)).then(readyz));
  expect(r.status).toBe(200);
});

it("audits egress decisions in the same hash-chained log as inference", async () => {
  const net = await import("node:net");
  const [host, port] = router.listen.egress!.split(":") as [string, string];
  const connectTo = (authority: string) =>
    new Promise<string>((resolve, reject) => {
      const sock = net.connect(Number(port), host, () => sock.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
      let got = "";
      sock.on("data", d => {
        got += d.toString();
        if (got.includes("\r\n\r\n")) {
          sock.destroy();
          resolve(got);
        }
      });
      sock.on("error", reject);
    });
  expect(await connectTo("not-allowed.example:443")).toMatch(/^HTTP\/1\.1 403/);
  expect(await connectTo("not-allowed.example:22")).toMatch(/^HTTP\/1\.1 403/);
  const auditFile = path.join(dir, "state", "audit", "audit.jsonl");
  let records: { event: { kind: string; host?: string; decision?: string; reason?: string; detail?: string } }[] = [];
  for (let i = 0; i < 50; i++) {
    records = fs.readFileSync(auditFile, "utf8").trim().split("\n").map(l => JSON.parse(l));
    if (records.filter(r => r.event.kind === "egress").length >= 2) break;
    await new Promise(r => setTimeout(r, 100));
  }
  const egress = records.filter(r => r.event.kind === "egress").map(r => r.event);
  expect(egress[0]).toMatchObject({ kind: "egress", host: "not-allowed.example", port: 443, decision: "refused", reason: "not_allowlisted", sandbox: "sdk-demo" });
  expect(egress[0]).not.toHaveProperty("detail"); // not_allowlisted says it all
  expect(egress[1]).toMatchObject({ port: 22, reason: "port_not_allowed", detail: "port 22 is not named by an allowed endpoint" });
  expect(records.some(r => r.event.kind === "inference")).toBe(true);
});

it("records a flood of refusals one by one only up to a rate and counts the rest, so the log cannot be flushed out", async () => {
  const auditFile = path.join(dir, "state", "audit", "audit.jsonl");
  const records = () => fs.readFileSync(auditFile, "utf8").trim().split("\n").map(l => JSON.parse(l) as { event: { kind: string; api?: string; code?: string; count?: number; counts?: Record<string, number> } });
  const before = records().length;
  const flood = 1000;
  const origin = `http://${router.listen.api}`;
  for (let i = 0; i < flood; i += 50) {
    await Promise.all(Array.from({ length: 50 }, () => fetch(`${origin}/v1/no-such-route`, { method: "POST" }).then(r => r.text())));
  }
  let added: ReturnType<typeof records> = [];
  for (let i = 0; i < 50; i++) {
    added = records().slice(before);
    const counted = added.reduce((n, r) => n + (r.event.kind === "suppressed" ? (r.event.counts?.["inference:other:not_found"] ?? 0) : r.event.code === "not_found" ? 1 : 0), 0);
    if (counted === flood) break;
    await new Promise(r => setTimeout(r, 200));
  }
  const oneByOne = added.filter(r => r.event.kind === "inference" && r.event.code === "not_found").length;
  const counted = added.filter(r => r.event.kind === "suppressed").reduce((n, r) => n + (r.event.counts?.["inference:other:not_found"] ?? 0), 0);
  expect(oneByOne + counted).toBe(flood); // every refusal accounted for
  expect(oneByOne).toBeLessThan(flood / 2); // but not a record each
});

it("asks the token endpoint once and reuses the cached token", () => {
  expect(entra.tokenRequests()).toBe(1);
});

it("stops cleanly on SIGTERM", async () => {
  expect(await router.stop()).toBe(0);
});
