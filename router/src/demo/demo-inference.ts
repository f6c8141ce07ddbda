import * as fs from "node:fs";
import * as path from "node:path";
import { request } from "undici";
import { startRouter, type RunningRouter } from "../server";
import { startEchoModel } from "./echo-model";

/** What the demo prints about the inference path (issue 3, item 7). */
export interface DemoInferenceResult {
  /** The model's answer as the OpenAI SDK returned it. */
  answer: string;
  /** Tokens the router charged for the call (settled to the upstream's usage). */
  usedTokens: number;
  /** Tokens left per UTC window of the sandbox's budget. */
  budgetLeft: Record<string, number | null>;
  /** The router's listen addresses. */
  addresses: RunningRouter["addresses"];
  /** Stops the router and the demo model. */
  close(): Promise<void>;
}

/**
 * For `kars demo`: runs a router for one sandbox against a loopback demo model (everything on
 * 127.0.0.1, ephemeral ports, egress proxy included), sends it one chat request through the unchanged
 * `openai` SDK, and returns the answer and the budget left. `workDir` receives the router's
 * configuration directory and state; `budget` is the sandbox's hourly/daily/monthly token budget.
 */
export async function runDemoInference(opts: { workDir: string; sandbox: string; tenant: string; question?: string; budget?: { hourlyTokens?: number; dailyTokens?: number; monthlyTokens?: number } }): Promise<DemoInferenceResult> {
  const model = await startEchoModel();
  const configDir = path.join(opts.workDir, "router-config");
  fs.mkdirSync(configDir, { recursive: true });
  const opsToken = `demo-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(path.join(configDir, "ops-token"), opsToken, { mode: 0o600 });
  fs.writeFileSync(path.join(configDir, "demo-model-key"), "demo-key-not-a-secret", { mode: 0o600 });
  fs.writeFileSync(
    path.join(configDir, "profile.json"),
    JSON.stringify({
      sandbox: opts.sandbox,
      tenant: opts.tenant,
      egressMode: "Strict",
      allowedEndpoints: [],
      inferencePolicy: {
        tokenBudget: { perRequestTokens: 4000, hourlyTokens: 10000, dailyTokens: 50000, monthlyTokens: 1000000, ...opts.budget },
        contentSafety: { hate: "Low", selfHarm: "Low", sexual: "Low", violence: "Low" },
        modelPreference: { primary: "kars-demo-model" },
      },
      upstreams: [{ name: "kars-demo-model", provider: "openai-compatible", endpoint: model.url, apiKeyFile: "demo-model-key" }],
      listen: { api: "127.0.0.1:0", egress: "127.0.0.1:0", ops: "127.0.0.1:0" },
    }),
  );
  let router: RunningRouter;
  try {
    router = await startRouter({ configDir, stateDir: path.join(opts.workDir, "router-state"), env: { KARS_LOG_LEVEL: "warn", KARS_AZURE_IMDS: "off" } });
  } catch (err) {
    await model.close();
    throw err;
  }
  const close = async () => {
    await router.close();
    await model.close();
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { default: OpenAI } = require("openai") as typeof import("openai");
    const client = new OpenAI({ baseURL: `http://${router.addresses.api}/v1`, apiKey: "the-agent-has-no-key", maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: "kars-demo-model", messages: [{ role: "user", content: opts.question ?? "What is kars?" }] });
    const res = await request(`http://${router.addresses.ops}/internal/policy-status`, { headers: { authorization: `Bearer ${opsToken}` } });
    const status = (await res.body.json()) as { budgets: Record<string, Record<string, { used: number; remaining: number | null }>> };
    const windows = status.budgets[`sandbox:${opts.sandbox}`];
    return {
      answer: completion.choices[0]?.message.content ?? "",
      usedTokens: completion.usage?.total_tokens ?? windows.hourly.used,
      budgetLeft: Object.fromEntries(Object.entries(windows).map(([k, v]) => [k, v.remaining])),
      addresses: router.addresses,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
