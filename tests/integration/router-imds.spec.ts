/**
 * The router's managed-identity path (issue 3): server.ts azureCredential() chains Workload Identity
 * then ManagedIdentityCredential (IMDS) unless KARS_AZURE_IMDS=off. A real `kars router` process, the
 * `openai` SDK as client, a loopback Azure-shaped upstream, and a loopback IMDS stand-in reached
 * through AZURE_POD_IDENTITY_AUTHORITY_HOST (router-process.ts refuses any IMDS host but 127.0.0.1,
 * so these tests can never reach 169.254.169.254).
 *
 * Proves: without Workload Identity env the router gets its token from IMDS (system- and
 * user-assigned), with `Metadata: true`, the Cognitive Services resource and no probe, and caches it.
 * Documents what @azure/identity 4.13 really does when Workload Identity env is present but Entra
 * refuses the federated token: ManagedIdentityCredential sees the same env, takes its "token exchange"
 * source (a second Workload Identity attempt), and never asks IMDS; the agent gets 503.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import OpenAI from "openai";
import { eventually } from "../e2e-kind/local/processes";
import { startFakeImds, IMDS_TOKEN_PATH, type FakeImds } from "./router-support/fake-imds";
import { startFakeTokenEndpoint, type FakeTokenEndpoint, workloadIdentityEnv } from "./router-support/fake-token-endpoint";
import { startFakeUpstream, type FakeUpstream } from "./router-support/fake-upstream";
import { routerEnv, startRouterProcess, UNREACHABLE_IMDS, type RouterProcess } from "./router-support/router-process";

jest.setTimeout(120_000);

const TENANT_ID = "00000000-0000-0000-0000-00000000bbbb";
const USER_ASSIGNED_CLIENT_ID = "22222222-2222-2222-2222-222222222222";
const COGNITIVE_SERVICES_RESOURCE = "https://cognitiveservices.azure.com";

/** A config directory whose only upstream is Azure OpenAI with Entra auth (no apiKeyFile). */
function writeConfig(dir: string, upstreamUrl: string): string {
  const configDir = path.join(dir, "etc-kars");
  fs.mkdirSync(configDir, { recursive: true });
  fs.writeFileSync(
    path.join(configDir, "profile.json"),
    JSON.stringify({
      sandbox: "imds-demo",
      tenant: "team-i",
      egressMode: "Strict",
      allowedEndpoints: [],
      inferencePolicy: { tokenBudget: { hourlyTokens: 100000 }, modelPreference: { primary: "gpt-4o", fallback: [] } },
      upstreams: [{ name: "gpt-4o", provider: "azure-openai", endpoint: upstreamUrl, deployment: "gpt4o-prod", apiVersion: "2024-10-21" }],
      listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
    }),
  );
  return configDir;
}

function sdkClient(router: RouterProcess): OpenAI {
  return new OpenAI({ baseURL: `http://${router.listen.api}/v1`, apiKey: "agent-has-no-real-key", maxRetries: 0 });
}

describe("the test harness keeps identity requests on loopback", () => {
  it.each<[string, NodeJS.ProcessEnv]>([
    ["an IMDS host that was unset", { AZURE_POD_IDENTITY_AUTHORITY_HOST: undefined }],
    ["the real IMDS address", { AZURE_POD_IDENTITY_AUTHORITY_HOST: "http://169.254.169.254" }],
    ["a Workload Identity setup without a loopback authority host", { AZURE_FEDERATED_TOKEN_FILE: "/tmp/x", AZURE_AUTHORITY_HOST: "https://login.microsoftonline.com" }],
  ])("refuses to start a router with %s", (_t, env) => {
    expect(() => routerEnv(env)).toThrow(/must point AZURE_(POD_IDENTITY_)?AUTHORITY_HOST at https?:\/\/127\.0\.0\.1/);
  });

  it("drops inherited identity variables and points IMDS at a closed loopback port by default", () => {
    const saved = { ...process.env };
    process.env.AZURE_CLIENT_ID = "inherited";
    process.env.IDENTITY_ENDPOINT = "http://inherited.invalid";
    try {
      const env = routerEnv({});
      expect([env.AZURE_CLIENT_ID, env.IDENTITY_ENDPOINT, env.AZURE_POD_IDENTITY_AUTHORITY_HOST, env.KARS_AZURE_IMDS]).toEqual([undefined, undefined, UNREACHABLE_IMDS, "off"]);
    } finally {
      process.env = saved;
    }
  });
});

describe.each<[string, string | undefined]>([
  ["a system-assigned identity (no AZURE_CLIENT_ID)", undefined],
  ["a user-assigned identity (AZURE_CLIENT_ID, no federated token file)", USER_ASSIGNED_CLIENT_ID],
])("without Workload Identity env, IMDS with %s", (_t, clientId) => {
  let dir: string;
  let upstream: FakeUpstream;
  let imds: FakeImds;
  let router: RouterProcess;
  let client: OpenAI;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-router-imds-"));
    upstream = await startFakeUpstream();
    imds = await startFakeImds();
    router = await startRouterProcess(writeConfig(dir, upstream.url), path.join(dir, "state"), {
      KARS_AZURE_IMDS: undefined, // IMDS on (the default)
      AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.authorityHost,
      AZURE_CLIENT_ID: clientId,
    });
    client = sdkClient(router);
  });

  afterAll(async () => {
    await router?.kill9().catch(() => undefined);
    await upstream?.close();
    await imds?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers through the SDK with the IMDS token, asked for with Metadata: true and the Cognitive Services resource", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] });
    expect(res.choices[0].message.content).toBe("Hello!");
    expect(upstream.received).toHaveLength(1);
    expect(upstream.received[0].headers.authorization).toBe(`Bearer ${imds.accessToken}`);
    expect(imds.tokenRequests()).toHaveLength(1);
    const asked = imds.tokenRequests()[0];
    expect(asked).toMatchObject({ method: "GET", path: `${IMDS_TOKEN_PATH}/`, headers: expect.objectContaining({ metadata: "true" }) });
    expect(asked.query.resource).toBe(COGNITIVE_SERVICES_RESOURCE);
    expect(asked.query["api-version"]).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(asked.query.client_id).toBe(clientId);
    // no availability probe (AZURE_POD_IDENTITY_AUTHORITY_HOST tells @azure/identity the endpoint exists): every request was a token request
    expect(imds.requests).toEqual(imds.tokenRequests());
    expect(await router.settledLogs()).not.toContain(imds.accessToken);
  });

  it("reuses the cached token: a second request asks IMDS nothing", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "again" }] });
    expect(res.choices[0].message.content).toBe("Hello!");
    expect(upstream.received).toHaveLength(2);
    expect(upstream.received[1].headers.authorization).toBe(`Bearer ${imds.accessToken}`);
    expect(imds.requests).toHaveLength(1);
  });
});

describe("Workload Identity env present, Entra refusing the federated token, IMDS on", () => {
  const CLIENT_ID = "33333333-3333-3333-3333-333333333333";
  let dir: string;
  let upstream: FakeUpstream;
  let entra: FakeTokenEndpoint;
  let imds: FakeImds;
  let router: RouterProcess;
  let client: OpenAI;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "kars-router-imds-wi-"));
    upstream = await startFakeUpstream();
    entra = await startFakeTokenEndpoint(dir, TENANT_ID, { refuse: true });
    imds = await startFakeImds();
    fs.writeFileSync(path.join(dir, "federated-token"), "federated-sa-token");
    router = await startRouterProcess(writeConfig(dir, upstream.url), path.join(dir, "state"), {
      KARS_AZURE_IMDS: undefined,
      AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.authorityHost,
      ...workloadIdentityEnv(entra, TENANT_ID, CLIENT_ID, path.join(dir, "federated-token")),
    });
    client = sdkClient(router);
  });

  afterAll(async () => {
    await router?.kill9().catch(() => undefined);
    await upstream?.close();
    await entra?.close();
    await imds?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("does not fall back to IMDS: the managed-identity link retries Workload Identity, and the agent gets 503", async () => {
    const err = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hello" }] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const apiErr = err as InstanceType<typeof OpenAI.APIError>;
    expect([apiErr.status, apiErr.code]).toEqual([503, "upstream_unavailable"]);
    // the agent learns only that there was no credential; Entra's answer (tenant, client, AADSTS code) is for the log
    expect(apiErr.message).toContain("no credential");
    expect(apiErr.message).not.toMatch(/AADSTS|ChainedTokenCredential/);
    // both links failed with AuthenticationRequiredError (the chain moves on after the first; it would stop on an AuthenticationError)
    await eventually("the router's log names the refusal", () => /ChainedTokenCredential authentication failed/.test(router.logs()), 10_000);
    const failed = router
      .logs()
      .split("\n")
      .filter((l) => l.includes('"msg":"request failed"'))
      .map((l) => JSON.parse(l) as { code: string; err: { message: string } });
    expect(failed).toHaveLength(1);
    expect(failed[0].code).toBe("upstream_unavailable");
    expect(failed[0].err.message).toMatch(/no credential \(ChainedTokenCredential authentication failed/);
    expect(failed[0].err.message.match(/AuthenticationRequiredError: invalid_request: .*?AADSTS70021/g)).toHaveLength(2);
    // WorkloadIdentityCredential asked once; ManagedIdentityCredential, seeing AZURE_FEDERATED_TOKEN_FILE,
    // used its token-exchange source and asked the same Entra endpoint again with the same assertion
    expect(entra.assertions).toEqual(["federated-sa-token", "federated-sa-token"]);
    expect(imds.requests).toEqual([]);
    expect(upstream.received).toEqual([]);
  });
});
