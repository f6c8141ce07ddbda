import type { UpstreamSpec } from "../config/profile";
import type { InferenceApi } from "../policy/model-selection";

/** Default api-version per provider when the profile names none (the dated, deployment-path APIs: chat, embeddings). */
export const DEFAULT_API_VERSION: Record<"azure-openai" | "foundry", string> = {
  "azure-openai": "2024-10-21",
  foundry: "2024-05-01-preview",
};

/**
 * Azure OpenAI serves the Responses API on its v1 surface: `POST {endpoint}/openai/v1/responses`, the
 * deployment as `model` in the body, no `api-version` query (v1 is GA since August 2025 and needs no
 * dated version). The dated api-versions a profile pins for chat and embeddings (e.g. GA `2024-10-21`)
 * predate Responses, which the old `/openai/responses` path served only from `2025-03-01-preview` on,
 * so the profile's `apiVersion` is deliberately not used here.
 * Sources: https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle and
 * https://learn.microsoft.com/azure/ai-foundry/openai/how-to/responses
 */
const AZURE_RESPONSES_PATH = "openai/v1/responses";

const PATH: Record<InferenceApi, string> = { chat: "chat/completions", responses: "responses", embeddings: "embeddings" };

/** Where and what to send upstream: URL, the JSON body, and whether the auth is Entra or a key. */
export interface UpstreamTarget {
  url: string;
  body: Record<string, unknown>;
}

/**
 * The upstream URL and body for one call (pure). Azure OpenAI names the deployment in the path for
 * chat and embeddings (with the profile's `apiVersion`); its Responses API (v1 surface, no
 * api-version) and every other provider take it as `model` in the body, which always carries the
 * deployment. For chat streams, `stream_options.include_usage` is set so the router can settle the
 * budget (PITFALLS "LLM gateways"). `completionLimit` is the completion tokens reserved per choice:
 * when the client named no limit it is set as `max_completion_tokens` (chat) / `max_output_tokens`
 * (responses) so the upstream cannot spend more than was reserved; for an `openai-compatible` upstream
 * both chat fields are set to it, whatever the client sent, since servers read one or the other
 * (vLLM either, Ollama and older llama.cpp only `max_tokens`) and one left unset would run uncapped;
 * `foundry` and `github-models` chat (the Azure AI model inference API: `max_tokens` only, unknown
 * fields refused) get `max_tokens` set to it, whatever the client sent, and no `max_completion_tokens`
 * (https://learn.microsoft.com/rest/api/aifoundry/modelinference/ "Get chat completions" request body).
 * `body` is the agent's (attacker-controlled) JSON object; it is copied, never mutated.
 */
export function upstreamTarget(upstream: UpstreamSpec, api: InferenceApi, body: Record<string, unknown>, completionLimit?: number): UpstreamTarget {
  // the fields the router sets are written last: a server that takes the last of two keys it reads as one
  // (Go's encoding/json folds case) then reads the router's value (request-features.ts refuses such keys too)
  const deployment = upstream.deployment ?? upstream.name;
  const { model: _agentModel, ...rest } = body; // spread copies as data properties: a "__proto__" key stays a key
  const out: Record<string, unknown> = { ...rest, model: deployment };
  if (api === "chat" && out.stream === true) {
    const opts = out.stream_options && typeof out.stream_options === "object" ? (out.stream_options as Record<string, unknown>) : {};
    setLast(out, "stream_options", { ...opts, include_usage: true });
  }
  if (completionLimit !== undefined) {
    if (api === "chat" && upstream.provider === "openai-compatible") {
      setLast(out, "max_completion_tokens", completionLimit);
      setLast(out, "max_tokens", completionLimit);
    } else if (api === "chat" && (upstream.provider === "foundry" || upstream.provider === "github-models")) {
      // the Azure AI model inference API (Foundry's `/models`, which GitHub Models serves too) knows only
      // `max_tokens`, and refuses a field it does not know by default (`extra-parameters: error`)
      delete out.max_completion_tokens;
      setLast(out, "max_tokens", completionLimit);
    } else if (api === "chat" && isUnset(out.max_completion_tokens) && isUnset(out.max_tokens)) {
      setLast(out, knowsMaxCompletionTokens(upstream) ? "max_completion_tokens" : "max_tokens", completionLimit);
    }
    if (api === "responses" && isUnset(out.max_output_tokens)) setLast(out, "max_output_tokens", completionLimit);
  }
  const base = upstream.endpoint.replace(/\/+$/, "");
  switch (upstream.provider) {
    case "azure-openai": {
      if (api === "responses") {
        return { url: `${base}/${AZURE_RESPONSES_PATH}`, body: out };
      }
      const version = encodeURIComponent(upstream.apiVersion ?? DEFAULT_API_VERSION["azure-openai"]);
      return { url: `${base}/openai/deployments/${encodeURIComponent(deployment)}/${PATH[api]}?api-version=${version}`, body: out };
    }
    case "foundry":
      // The model inference endpoint (`…/models`) serves chat and embeddings; a Foundry resource serves
      // the Responses API on its OpenAI v1 surface at the resource's origin, models named in the body
      // (https://learn.microsoft.com/training/modules/foundry-sdk/04-responses-api: "works with models
      // hosted directly in Microsoft Foundry, not just Azure OpenAI models").
      if (api === "responses") return { url: `${new URL(base).origin}/${AZURE_RESPONSES_PATH}`, body: out };
      return { url: `${base}/${PATH[api]}?api-version=${encodeURIComponent(upstream.apiVersion ?? DEFAULT_API_VERSION.foundry)}`, body: out };
    case "github-models":
    case "openai-compatible":
      return { url: `${base}/${PATH[api]}`, body: out };
  }
}

/**
 * Whether an Azure OpenAI upstream's api-version knows `max_completion_tokens`: from 2024-09-01-preview
 * on (it came with the o1 models; GA in 2024-10-21, the default). An older pinned version refuses it
 * as an unrecognized argument, so the cap goes as `max_tokens` there. Other providers: true.
 * Source: https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle
 */
export function knowsMaxCompletionTokens(upstream: UpstreamSpec): boolean {
  if (upstream.provider !== "azure-openai") return true;
  const version = upstream.apiVersion ?? DEFAULT_API_VERSION["azure-openai"];
  return !/^\d{4}-\d{2}-\d{2}/.test(version) || version.slice(0, 10) >= "2024-09-01";
}

/** Sets `o[key]` as its last key (JSON.stringify writes keys in insertion order). */
function setLast(o: Record<string, unknown>, key: string, value: unknown): void {
  delete o[key];
  o[key] = value;
}

/** Whether a body field is absent (undefined or null: an upstream reads null as "no limit"). */
function isUnset(v: unknown): boolean {
  return v === undefined || v === null;
}

/** Whether an upstream authenticates with an Entra ID token (Workload Identity) rather than a key. */
export function usesEntraToken(upstream: UpstreamSpec): boolean {
  return (upstream.provider === "azure-openai" || upstream.provider === "foundry") && upstream.apiKeyFile === undefined;
}

/** Entra ID scope for Azure OpenAI / Foundry (Azure AI services). */
export const COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default";

/**
 * Upstream auth headers from a secret: `api-key` for Azure key auth, `authorization: Bearer` otherwise.
 * The result holds a credential: never log it.
 */
export function authHeaders(upstream: UpstreamSpec, secret: string): Record<string, string> {
  if ((upstream.provider === "azure-openai" || upstream.provider === "foundry") && upstream.apiKeyFile !== undefined) {
    return { "api-key": secret };
  }
  return { authorization: `Bearer ${secret}` };
}
