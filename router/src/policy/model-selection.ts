import { RouterError } from "../errors/router-error";
import type { Profile, UpstreamSpec } from "../config/profile";

/** The API an agent called; names the InferencePolicy `appliesTo.action` and the PolicyEngine action. */
export type InferenceApi = "chat" | "responses" | "embeddings";

/**
 * PolicyEngine action name of each API (DESIGN §6 Actions: `inference:chat_completions:<model>`). A
 * Responses call is generation on the same model as a chat completion, so it is the same action: a
 * rule written with DESIGN's name (deny `inference:chat_completions:gpt-4o`) cannot be bypassed through
 * /v1/responses. Embeddings are `inference:embeddings:<model>`.
 */
const ACTION_VERB: Record<InferenceApi, string> = { chat: "chat_completions", responses: "chat_completions", embeddings: "embeddings" };

/** The PolicyEngine action for a call, e.g. `inference:chat_completions:gpt-4o`. */
export function inferenceAction(api: InferenceApi, model: string): string {
  return `inference:${ACTION_VERB[api]}:${model}`;
}

/** Model names an agent may ask for: modelPreference primary + fallback, or every upstream when none; none without upstreams. */
export function allowedModels(profile: Profile): string[] {
  if (profile.upstreams.length === 0) return [];
  const pref = profile.inferencePolicy.modelPreference;
  return pref ? [pref.primary, ...(pref.fallback ?? [])] : profile.upstreams.map(u => u.name);
}

/**
 * The upstreams to try, in order, for a request naming `model` (DESIGN §3 modelPreference): the named
 * model first, then the remaining preferences in their order (fallback on 429/5xx). A missing `model`
 * means the primary. Throws RouterError `policy_violation` (403) when the model is not allowed or the
 * InferencePolicy's `appliesTo.action` does not cover this API, and `upstream_unavailable` (503) when
 * the profile has no upstream at all (the controller was given no KARS_UPSTREAMS): fail closed, the
 * never-empty list it returns otherwise is what the checks after it rely on.
 */
export function selectUpstreams(profile: Profile, api: InferenceApi, model: string | undefined): UpstreamSpec[] {
  const action = profile.inferencePolicy.appliesTo?.action;
  if (action !== undefined && action !== "*" && action !== api) {
    throw new RouterError("policy_violation", `the inference policy allows only ${action} requests, not ${api}`);
  }
  if (profile.upstreams.length === 0) {
    throw new RouterError("upstream_unavailable", "no model upstream is configured for this sandbox (profile.json upstreams is empty: the kars controller was started without KARS_UPSTREAMS)", { configured: true });
  }
  const allowed = allowedModels(profile);
  const first = model ?? allowed[0];
  if (!allowed.includes(first)) {
    throw new RouterError("policy_violation", `model ${JSON.stringify(first)} is not allowed by the inference policy (allowed: ${allowed.join(", ")})`, { param: "model" });
  }
  const order = [first, ...allowed.filter(m => m !== first)];
  return order.map(name => profile.upstreams.find(u => u.name === name)).filter((u): u is UpstreamSpec => u !== undefined);
}
