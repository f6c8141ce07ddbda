import { RouterError } from "../errors/router-error";
import { SEVERITIES, type InferencePolicySpec, type Severity } from "../config/profile";

/** InferencePolicy contentSafety category → Azure filter result key. */
const CATEGORIES = { hate: "hate", selfHarm: "self_harm", sexual: "sexual", violence: "violence" } as const;

/** Azure jailbreak / indirect-attack ("Prompt Shields") result keys. */
const SHIELDS = ["jailbreak", "indirect_attack"] as const;

/** Error codes by which an upstream says it stopped an answer for content (Azure `content_filter`, OpenAI `content_policy_violation`). */
const FILTER_ERROR_CODES = new Set(["content_filter", "content_policy_violation"]);

type FilterResults = Record<string, { filtered?: boolean; severity?: string; detected?: boolean } | undefined>;

type Policy = InferencePolicySpec["contentSafety"];

/**
 * Checks an upstream body (or one stream event) against the content-safety floor (DESIGN §6). A
 * category whose `severity` is above the policy's level (Safe < Low < Medium < High), or any result
 * the upstream marked `filtered` (of any kind: the four categories, protected material, profanity,
 * custom blocklists, kinds not known here), is refused; with `requirePromptShields`, a detected
 * jailbreak or indirect attack is refused too; under a floor (hasContentSafetyFloor), a filter result
 * that reports an `error` (the filter did not judge the content) is refused (fail closed); a choice
 * whose `finish_reason` is `content_filter` (the upstream stopped it) is refused. Where the filter results are:
 * - Chat Completions (Azure): `prompt_filter_results[].content_filter_results` and each
 *   `choices[].content_filter_results`, in whole answers and in every stream chunk.
 * - Responses (Azure OpenAI v1): the response object's top-level `content_filters[]`, each
 *   `{blocked, source_type: "prompt" | "completion", content_filter_results, content_filter_offsets}`;
 *   `blocked: true` is refused like `filtered`. A stream carries the response object in its `response.*`
 *   lifecycle events (`response.created` has `content_filters: null`; `response.completed` has them).
 *   The upstream stopping the answer itself is refused too: `incomplete_details.reason: "content_filter"`,
 *   or an error code `content_filter` / `content_policy_violation` in a `response.failed` event's
 *   `response.error` or an `error` event (Azure ends a filtered stream with `response.failed`, then
 *   `{"type":"error"}`). Because the annotations come after the deltas they judge, the inference
 *   service holds a Responses stream's output until the upstream finished (held-output.ts).
 *   Sources: the Azure OpenAI v1 spec's `AzureContentFilterForResponsesAPI` and `Response.content_filters`
 *   (https://github.com/Azure/azure-rest-api-specs, specification/ai/data-plane/OpenAI.v1; sample in PR
 *   #42141), https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter-annotations,
 *   https://platform.openai.com/docs/api-reference/responses/object (`incomplete_details.reason`), and
 *   for the filtered stream's ending https://github.com/maximhq/bifrost/issues/6419.
 * A body without any filter data passes, on both APIs: the floor judges what the upstream reports
 * (github-models and openai-compatible upstreams report nothing). Input is upstream-controlled JSON;
 * unknown shapes are ignored. Throws RouterError `content_policy_violation` (403) naming the category
 * and where it was found.
 */
export function verifyContentSafety(policy: Policy, body: unknown): void {
  if (!body || typeof body !== "object") return;
  const b = body as { prompt_filter_results?: unknown; prompt_annotations?: unknown; choices?: unknown; type?: unknown; response?: unknown; error?: unknown; code?: unknown; object?: unknown };
  // prompt_annotations: the same results under their name in the 2023 preview api-versions
  for (const field of ["prompt_filter_results", "prompt_annotations"] as const) {
    const results = b[field];
    if (Array.isArray(results)) results.forEach((p: { content_filter_results?: FilterResults } | null, i) => checkResults(policy, p?.content_filter_results, `${field}[${i}]`));
  }
  if (Array.isArray(b.choices)) {
    b.choices.forEach((c: { content_filter_results?: FilterResults; finish_reason?: unknown } | null, i) => {
      checkResults(policy, c?.content_filter_results, `choices[${i}]`);
      if (c?.finish_reason === "content_filter") throw refusal(`choices[${i}]: the upstream stopped the answer (finish_reason content_filter)`);
    });
  }
  if (b.type === "error") {
    const code = errorCode(b.error) ?? (typeof b.code === "string" ? b.code : undefined);
    if (code !== undefined && FILTER_ERROR_CODES.has(code)) throw refusal(`the upstream stopped the stream (error ${code})`);
  }
  if (typeof b.type === "string" && b.type.startsWith("response.") && b.response && typeof b.response === "object") {
    checkResponse(policy, b.response, "response.", true);
  } else {
    checkResponse(policy, b, "", b.object === "response");
  }
}

/** Whether the policy sets a floor beyond the upstream's own `filtered` flags: any category level, or `requirePromptShields`. */
export function hasContentSafetyFloor(policy: Policy): boolean {
  if (!policy) return false;
  return policy.requirePromptShields === true || Object.keys(CATEGORIES).some(field => policy[field as keyof typeof CATEGORIES] !== undefined);
}

/**
 * A Responses API response object: a whole answer, or the `response` of a stream event (`prefix` is
 * its path in messages). Its `error` is judged only on a response object (`isResponse`), never on a
 * chat chunk.
 */
function checkResponse(policy: Policy, response: object, prefix: string, isResponse: boolean): void {
  const r = response as { content_filters?: unknown; incomplete_details?: unknown; error?: unknown };
  if (Array.isArray(r.content_filters)) {
    r.content_filters.forEach((f: { blocked?: unknown; source_type?: unknown; content_filter_results?: FilterResults } | null, i) => {
      if (!f || typeof f !== "object") return;
      // source_type is upstream text that ends up in the agent's error message: keep it short
      const where = `${prefix}content_filters[${i}]${typeof f.source_type === "string" ? ` (${f.source_type.slice(0, 32)})` : ""}`;
      checkResults(policy, f.content_filter_results, where);
      if (f.blocked === true) throw refusal(`${where}: blocked by the upstream`);
    });
  }
  const reason = (r.incomplete_details as { reason?: unknown } | null | undefined)?.reason;
  if (reason === "content_filter") throw refusal(`${prefix}incomplete_details: the upstream stopped the answer (content_filter)`);
  const code = errorCode(r.error);
  if (isResponse && code !== undefined && FILTER_ERROR_CODES.has(code)) throw refusal(`${prefix}error: the upstream stopped the answer (${code})`);
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

function checkResults(policy: Policy, results: FilterResults | undefined, where: string): void {
  if (!results || typeof results !== "object") return;
  // any result the upstream filtered, whatever its kind: protected_material_text/_code, profanity,
  // custom_blocklists, and kinds added after this was written (their keys are upstream text: kept short)
  for (const [key, r] of Object.entries(results)) {
    if (r && typeof r === "object" && r.filtered === true) throw refusal(`${where}: ${key.slice(0, 40)} was filtered by the upstream`);
  }
  // the filter failed to judge this content (Azure: {"error":{"code":"content_filter_error",…}}): under a floor it is not judged, so refused
  if (results.error && typeof results.error === "object" && hasContentSafetyFloor(policy)) throw refusal(`${where}: the upstream's content filter failed to judge it`);
  for (const [field, key] of Object.entries(CATEGORIES) as [keyof typeof CATEGORIES, string][]) {
    const r = results[key];
    if (!r || typeof r !== "object") continue;
    const limit = policy?.[field];
    const found = normaliseSeverity(r.severity);
    if (limit !== undefined && found !== undefined && SEVERITIES.indexOf(found) > SEVERITIES.indexOf(limit)) {
      throw refusal(`${where}: ${key} severity ${found} is above the policy's ${limit}`);
    }
  }
  for (const key of SHIELDS) {
    const r = results[key];
    if (r && typeof r === "object" && policy?.requirePromptShields && r.detected === true) {
      throw refusal(`${where}: ${key} detected`);
    }
  }
}

function normaliseSeverity(s: unknown): Severity | undefined {
  if (typeof s !== "string") return undefined;
  return SEVERITIES.find(v => v.toLowerCase() === s.toLowerCase());
}

function refusal(message: string): RouterError {
  return new RouterError("content_policy_violation", `content safety: ${message}`);
}
