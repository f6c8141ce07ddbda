import type { UpstreamSpec } from "../config/profile";
import { authHeaders, upstreamTarget, usesEntraToken } from "./request-target";

const azure: UpstreamSpec = { name: "gpt-4o", provider: "azure-openai", endpoint: "https://r.openai.azure.com/", deployment: "prod-4o", apiVersion: "2024-10-21" };
const foundry: UpstreamSpec = { name: "phi", provider: "foundry", endpoint: "https://r.services.ai.azure.com/models" };
const compat: UpstreamSpec = { name: "m", provider: "openai-compatible", endpoint: "http://127.0.0.1:9/v1", deployment: "real-m", apiKeyFile: "k" };
const gh: UpstreamSpec = { name: "openai/gpt-4.1", provider: "github-models", endpoint: "https://models.github.ai/inference", apiKeyFile: "gh" };

describe("upstreamTarget", () => {
  it.each<[string, UpstreamSpec, "chat" | "responses" | "embeddings", string]>([
    ["azure chat names the deployment in the path", azure, "chat", "https://r.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"],
    ["azure embeddings too", azure, "embeddings", "https://r.openai.azure.com/openai/deployments/prod-4o/embeddings?api-version=2024-10-21"],
    ["azure responses use the resource-level path", azure, "responses", "https://r.openai.azure.com/openai/responses?api-version=2024-10-21"],
    ["foundry uses the models endpoint and a default api-version", foundry, "chat", "https://r.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview"],
    ["openai-compatible appends the OpenAI path", compat, "chat", "http://127.0.0.1:9/v1/chat/completions"],
    ["github models likewise", gh, "embeddings", "https://models.github.ai/inference/embeddings"],
  ])("%s", (_t, u, api, url) => {
    expect(upstreamTarget(u, api, {}).url).toBe(url);
  });

  it("sends the deployment as model, asks for stream usage, and caps completion without mutating the input", () => {
    const body = { model: "m", stream: true, stream_options: { foo: 1 }, messages: [] };
    const t = upstreamTarget(compat, "chat", body, 100);
    expect(t.body).toMatchObject({ model: "real-m", stream_options: { foo: 1, include_usage: true }, max_completion_tokens: 100 });
    expect(body).toEqual({ model: "m", stream: true, stream_options: { foo: 1 }, messages: [] });
  });
});

describe("auth", () => {
  it.each<[string, UpstreamSpec, boolean, Record<string, string>]>([
    ["azure without a key uses Workload Identity", azure, true, { authorization: "Bearer s" }],
    ["azure with a key file uses api-key", { ...azure, apiKeyFile: "k" }, false, { "api-key": "s" }],
    ["openai-compatible uses a bearer key", compat, false, { authorization: "Bearer s" }],
  ])("%s", (_t, u, entra, headers) => {
    expect(usesEntraToken(u)).toBe(entra);
    expect(authHeaders(u, "s")).toEqual(headers);
  });
});
