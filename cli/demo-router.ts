/**
 * The router part of `kars demo` (issue 3 §7): one sandbox's inference router, started as the real
 * `kars router` process from the profile the reconciler projected for that sandbox, with a local
 * Azure-shaped model upstream and a local Entra token endpoint (Workload Identity) on loopback.
 * The agent's side is the unchanged `openai` SDK with no credential; the demo prints the answer, the
 * credential the upstream saw (redacted) and the budget left.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import type { Kubectl } from "../tests/e2e-kind/kubectl";
import { startFakeUpstream } from "../tests/integration/router-support/fake-upstream";
import { startFakeTokenEndpoint } from "../tests/integration/router-support/fake-token-endpoint";
import { startRouterProcess } from "../tests/integration/router-support/router-process";

const say = (s = ""): void => console.log(s);

/** Runs the router demo for sandbox `name` (namespace kars-<name>) with working files under `dir`. */
export async function showRouter(k: Kubectl, name: string, dir: string): Promise<void> {
  const cm = k.json<{ data: Record<string, string> }>(["get", "configmap", "-n", `kars-${name}`, "kars-router-profile"]);
  if (!cm?.data["profile.json"]) throw new Error(`kars-${name}/kars-router-profile has no profile.json`);
  const projected = JSON.parse(cm.data["profile.json"]) as Record<string, unknown>;

  const root = join(dir, "router-demo");
  const configDir = join(root, "etc-kars");
  mkdirSync(configDir, { recursive: true });
  const upstream = await startFakeUpstream();
  const tenantId = "00000000-0000-0000-0000-00000000demo";
  const entra = await startFakeTokenEndpoint(root, tenantId);
  writeFileSync(join(root, "federated-token"), "demo-projected-service-account-token");
  writeFileSync(join(configDir, "ops-token"), "demo-ops-token");
  // The reconciler's projection as written (the InferencePolicy of manifests/examples and the
  // sandbox's share of the tenant budget), plus the upstream a cluster admin would configure (the
  // demo's model is the local upstream) and loopback listeners.
  say(`\n== router profile projected by the reconciler (kars-${name}/kars-router-profile) ==`);
  say(`inferencePolicy: ${JSON.stringify(projected.inferencePolicy)}`);
  say(`tenantTokenBudget (this sandbox's share of the tenant budget): ${JSON.stringify(projected.tenantTokenBudget ?? null)}`);
  const profile = {
    ...projected,
    upstreams: [{ name: "gpt-4.1", provider: "azure-openai", endpoint: upstream.url, deployment: "gpt-41-prod", apiVersion: "2024-10-21" }],
    listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
  };
  writeFileSync(join(configDir, "profile.json"), JSON.stringify(profile, null, 2));
  const router = await startRouterProcess(configDir, join(root, "state"), {
    AZURE_AUTHORITY_HOST: entra.authorityHost,
    AZURE_TENANT_ID: tenantId,
    AZURE_CLIENT_ID: "11111111-1111-1111-1111-111111111111",
    AZURE_FEDERATED_TOKEN_FILE: join(root, "federated-token"),
    NODE_EXTRA_CA_CERTS: entra.caFile,
    KARS_LOG_LEVEL: "warn",
  });
  try {
    say(`\n== inference router for sandbox ${name} (kars router --config-dir <profile projected by the reconciler>) ==`);
    for (const [what, addr] of Object.entries(router.listen)) say(`LISTEN ${what} ${addr}`);
    const client = new OpenAI({ baseURL: `http://${router.listen.api}/v1`, apiKey: "the-agent-has-no-credential", maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: "gpt-4.1", messages: [{ role: "user", content: "Say hello to the kars demo." }], max_completion_tokens: 64 });
    say(`agent (openai SDK) → router → model: "${answer.choices[0]?.message.content ?? ""}" (usage.total_tokens=${answer.usage?.total_tokens})`);
    const seen = upstream.received.at(-1)?.headers.authorization ?? "";
    say(`the model upstream saw: Authorization: ${seen.replace(/^(Bearer )(.{6}).*$/, "$1$2…")} (a Workload Identity token the agent never had)`);
    const res = await fetch(`http://${router.listen.ops}/internal/policy-status`, { headers: { authorization: "Bearer demo-ops-token" } });
    const status = (await res.json()) as { budgets: Record<string, Record<string, { used: number; remaining: number | null }>> };
    for (const [scope, windows] of Object.entries(status.budgets)) {
      const parts = Object.entries(windows).map(([w, v]) => `${w} ${v.used} used, ${v.remaining ?? "unlimited"} left`);
      say(`budget ${scope}: ${parts.join("; ")}`);
    }
  } finally {
    await router.stop();
    await upstream.close();
    await entra.close();
  }
}
