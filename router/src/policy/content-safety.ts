import { RouterError } from "../errors/router-error";
import { SEVERITIES, type InferencePolicySpec, type Severity } from "../config/profile";

/** InferencePolicy contentSafety category → Azure filter result key. */
const CATEGORIES = { hate: "hate", selfHarm: "self_harm", sexual: "sexual", violence: "violence" } as const;

/** Azure jailbreak / indirect-attack ("Prompt Shields") result keys. */
const SHIELDS = ["jailbreak", "indirect_attack"] as const;

type FilterResults = Record<string, { filtered?: boolean; severity?: string; detected?: boolean } | undefined>;

/**
 * Checks an upstream body (or one stream chunk) against the content-safety floor (DESIGN §6):
 * `prompt_filter_results[].content_filter_results` (chat/completions) and each `choices[].content_filter_results`.
 * A category whose `severity` is above the policy's level (Safe < Low < Medium < High), or any result
 * the upstream marked `filtered`, is refused. With `requirePromptShields`, a detected jailbreak or
 * indirect attack is refused too. Input is upstream-controlled JSON; unknown shapes are ignored.
 * Throws RouterError `content_policy_violation` (403) naming the category and where it was found.
 */
export function verifyContentSafety(policy: InferencePolicySpec["contentSafety"], body: unknown): void {
  if (!body || typeof body !== "object") return;
  const b = body as { prompt_filter_results?: unknown; choices?: unknown };
  if (Array.isArray(b.prompt_filter_results)) {
    b.prompt_filter_results.forEach((p: { content_filter_results?: FilterResults }, i) => checkResults(policy, p?.content_filter_results, `prompt_filter_results[${i}]`));
  }
  if (Array.isArray(b.choices)) {
    b.choices.forEach((c: { content_filter_results?: FilterResults }, i) => checkResults(policy, c?.content_filter_results, `choices[${i}]`));
  }
}

function checkResults(policy: InferencePolicySpec["contentSafety"], results: FilterResults | undefined, where: string): void {
  if (!results || typeof results !== "object") return;
  for (const [field, key] of Object.entries(CATEGORIES) as [keyof typeof CATEGORIES, string][]) {
    const r = results[key];
    if (!r || typeof r !== "object") continue;
    if (r.filtered === true) throw refusal(`${where}: ${key} was filtered by the upstream`);
    const limit = policy?.[field];
    const found = normaliseSeverity(r.severity);
    if (limit !== undefined && found !== undefined && SEVERITIES.indexOf(found) > SEVERITIES.indexOf(limit)) {
      throw refusal(`${where}: ${key} severity ${found} is above the policy's ${limit}`);
    }
  }
  for (const key of SHIELDS) {
    const r = results[key];
    if (r && typeof r === "object" && (r.filtered === true || (policy?.requirePromptShields && r.detected === true))) {
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
