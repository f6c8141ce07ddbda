import type { UpstreamSpec } from "../config/profile";
import { authHeaders, upstreamTarget, usesEntraToken } from "./request-target";

const azure: UpstreamSpec = { name: "gpt-4o", provider: "azure-openai", endpoint: "https://r.openai.azure.com/", deployment: "prod-4o", apiVersion: "2024-10-21" };
const azureDefault: UpstreamSpec = { name: "gpt-4o", provider: "azure-openai", endpoint: "https://r.openai.azure.com", deployment: "prod-4o" };
const foundry: UpstreamSpec = { name: "phi", provider: "foundry", endpoint: "https://r.services.ai.azure.com/models" };
const compat: UpstreamSpec = { name: "m", provider: "openai-compatible", endpoint: "http://127.0.0.1:9/v1", deployment: "real-m", apiKeyFile: "k" };
const gh: UpstreamSpec = { name: "openai/gpt-4.1", provider: "github-models", endpoint: "https://models.github.ai/inference", apiKeyFile: "gh" };

describe("upstreamTarget", () => {
  // one row per provider × API; `azure` pins the GA chat api-version 2024-10-21, which predates Responses
  it.each<[string, UpstreamSpec, "chat" | "responses" | "embeddings", string]>([
    ["azure chat names the deployment in the path", azure, "chat", "https://r.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"],
    ["azure embeddings too", azure, "embeddings", "https://r.openai.azure.com/openai/deployments/prod-4o/embeddings?api-version=2024-10-21"],
    ["azure responses use the resource-level v1 path, never the chat api-version", azure, "responses", "https://r.openai.azure.com/openai/v1/responses"],
    ["azure chat without an apiVersion uses the GA default", azureDefault, "chat", "https://r.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"],
    ["azure embeddings without an apiVersion likewise", azureDefault, "embeddings", "https://r.openai.azure.com/openai/deployments/prod-4o/embeddings?api-version=2024-10-21"],
    ["azure responses without an apiVersion use the same v1 path", azureDefault, "responses", "https://r.openai.azure.com/openai/v1/responses"],
    ["azure responses with a preview apiVersion still use the v1 path", { ...azure, apiVersion: "2025-04-01-preview" }, "responses", "https://r.openai.azure.com/openai/v1/responses"],
    ["foundry uses the models endpoint and a default api-version", foundry, "chat", "https://r.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview"],
    ["foundry embeddings likewise", foundry, "embeddings", "https://r.services.ai.azure.com/models/embeddings?api-version=2024-05-01-preview"],
    // today's behaviour, pinned: the model inference API (`/models`) documents chat and embeddings only, so
    ["foundry responses go to the resource's OpenAI v1 surface, whatever the endpoint's path", foundry, "responses", "https://r.services.ai.azure.com/openai/v1/responses"],
    ["foundry responses ignore a pinned apiVersion", { ...foundry, apiVersion: "2024-08-01-preview" }, "responses", "https://r.services.ai.azure.com/openai/v1/responses"],
    ["foundry honours a pinned apiVersion", { ...foundry, apiVersion: "2024-08-01-preview" }, "chat", "https://r.services.ai.azure.com/models/chat/completions?api-version=2024-08-01-preview"],
    ["openai-compatible appends the OpenAI path", compat, "chat", "http://127.0.0.1:9/v1/chat/completions"],
    ["openai-compatible responses", compat, "responses", "http://127.0.0.1:9/v1/responses"],
    ["openai-compatible embeddings", compat, "embeddings", "http://127.0.0.1:9/v1/embeddings"],
    ["github models chat", gh, "chat", "https://models.github.ai/inference/chat/completions"],
    ["github models responses", gh, "responses", "https://models.github.ai/inference/responses"],
    ["github models embeddings", gh, "embeddings", "https://models.github.ai/inference/embeddings"],
  ])("%s", (_t, u, api, url) => {
    expect(upstreamTarget(u, api, {}).url).toBe(url);
  });

  it("azure responses name the deployment as model in the body", () => {
    expect(upstreamTarget(azure, "responses", { model: "gpt-4o", input: "hi" }, 50).body).toEqual({ model: "prod-4o", input: "hi", max_output_tokens: 50 });
  });

  it("sends the deployment as model, asks for stream usage, and caps completion without mutating the input", () => {
    const body = { model: "m", stream: true, stream_options: { foo: 1 }, messages: [] };
    const t = upstreamTarget(compat, "chat", body, 100);
    expect(t.body).toMatchObject({ model: "real-m", stream_options: { foo: 1, include_usage: true }, max_completion_tokens: 100 });
    expect(body).toEqual({ model: "m", stream: true, stream_options: { foo: 1 }, messages: [] });
  });

  it("writes the fields it sets last, after any key of the agent's a server might read as the same one", () => {
    const body = { model: "m", max_tokens: 5, MAX_TOKENS: 100000, messages: [], Model: "other" };
    const keys = Object.keys(upstreamTarget(compat, "chat", body, 5).body);
    expect(keys.slice(-3)).toEqual(["model", "max_completion_tokens", "max_tokens"]);
    expect(JSON.stringify(upstreamTarget(azure, "responses", { input: "hi", model: "x" }, 7).body)).toBe('{"input":"hi","model":"prod-4o","max_output_tokens":7}');
  });

  // completionLimit is what was reserved per choice: the agent's own cap when it named one (the largest), the default otherwise
  it.each<[string, UpstreamSpec, "chat" | "responses", Record<string, unknown>, Record<string, unknown>]>([
    ["azure chat without a cap gets max_completion_tokens", azure, "chat", {}, { max_completion_tokens: 100 }],
    ["azure chat on an api-version before max_completion_tokens (2024-06-01) gets max_tokens", { ...azure, apiVersion: "2024-06-01" }, "chat", {}, { max_tokens: 100 }],
    ["… and on 2024-09-01-preview, the first that knows it, max_completion_tokens", { ...azure, apiVersion: "2024-09-01-preview" }, "chat", {}, { max_completion_tokens: 100 }],
    ["azure chat keeps the agent's max_tokens (within what was reserved)", azure, "chat", { max_tokens: 100 }, { max_tokens: 100 }],
    ["azure chat keeps the agent's max_completion_tokens", azure, "chat", { max_completion_tokens: 100 }, { max_completion_tokens: 100 }],
    ["a null cap is no cap: it is set", azure, "chat", { max_completion_tokens: null }, { max_completion_tokens: 100 }],
    ["foundry chat gets max_tokens, the model inference API's only field", foundry, "chat", {}, { max_tokens: 100 }],
    ["… in place of the agent's max_completion_tokens (an unknown field it would refuse)", foundry, "chat", { max_completion_tokens: 100 }, { max_tokens: 100 }],
    ["github models chat likewise", gh, "chat", { max_completion_tokens: null, max_tokens: 100 }, { max_tokens: 100 }],
    ["an openai-compatible server gets both chat fields, as it may read either (Ollama: max_tokens only)", compat, "chat", {}, { max_completion_tokens: 100, max_tokens: 100 }],
    ["… also when the agent named only one", compat, "chat", { max_completion_tokens: 100 }, { max_completion_tokens: 100, max_tokens: 100 }],
    ["… and two different ones become the reserved (largest)", compat, "chat", { max_completion_tokens: 30, max_tokens: 100 }, { max_completion_tokens: 100, max_tokens: 100 }],
    ["responses without a cap get max_output_tokens", compat, "responses", {}, { max_output_tokens: 100 }],
    ["responses keep the agent's max_output_tokens", azure, "responses", { max_output_tokens: 100 }, { max_output_tokens: 100 }],
  ])("caps completion: %s", (_t, u, api, caps, expected) => {
    const body = upstreamTarget(u, api, { model: "m", ...caps }, 100).body;
    const got = Object.fromEntries(["max_completion_tokens", "max_tokens", "max_output_tokens"].filter(k => body[k] !== undefined).map(k => [k, body[k]]));
    expect(got).toEqual(expected);
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
