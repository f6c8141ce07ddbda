import Ajv, { type ErrorObject } from "ajv";
import { createHash } from "node:crypto";
import { parse as parseYaml } from "yaml";
import toolPolicySchema from "../../schemas/toolpolicy.schema.json";
import { describeSchemaError } from "../config/profile";
import { RouterError } from "../errors/router-error";

/** One PolicyEngine rule (DESIGN §6 toolpolicy.yaml). Action patterns may end in `*` (prefix match). */
export interface PolicyRule {
  name: string;
  type: "capability" | "approval" | "rate_limit";
  allowed_actions?: string[];
  denied_actions?: string[];
  actions?: string[];
  priority: number;
  max_calls?: number;
  /** Seconds. */
  window?: number;
}

/** A parsed toolpolicy.yaml: rules sorted by priority, highest first, plus the digest of its bytes. */
export interface PolicyProfile {
  version: string;
  agent?: string;
  policies: readonly PolicyRule[];
  digest: string;
}

/** Decision for one action: which rule decided (null = no rule matched, allowed). */
export interface PolicyDecision {
  allowed: boolean;
  rule: string | null;
  reason: string;
}

const validate = new Ajv({ allErrors: true, strict: false }).compile<ToolPolicyDocument>(toolPolicySchema);

/** toolpolicy.yaml as router/schemas/toolpolicy.schema.json accepts it. */
interface ToolPolicyDocument {
  version: string | number;
  agent?: string;
  policies: (Omit<PolicyRule, "priority"> & { priority?: number })[];
}

/**
 * Parses toolpolicy.yaml (`version`, `agent`, `policies[{name, type, allowed_actions | denied_actions |
 * actions, priority, max_calls, window}]`) against router/schemas/toolpolicy.schema.json: unknown or
 * misspelt fields, values of the wrong type, a rule without the fields its type needs (capability:
 * allowed_actions or denied_actions; approval: actions; rate_limit: actions and max_calls) or with
 * another type's, two rules of one name, NaN or infinite numbers, action patterns that never match
 * (a `*` not at the end, leading or trailing space, control characters), duplicate keys and `%YAML`
 * directives (YAML 1.2 only) are errors — each would otherwise quietly allow what the author meant to
 * deny or limit. Throws Error naming every bad field by path
 * (`toolpolicy.yaml: policies[1].denied_action: …`).
 */
export function parsePolicyProfile(text: string): PolicyProfile {
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true }) as unknown;
  } catch (err) {
    throw new Error(`toolpolicy.yaml: (root): not YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  // YAML 1.1 (a %YAML 1.1 directive) reads 010 as 8 and 1:00 as 60: a priority would not be what it says
  if (/^%YAML/m.test(text)) throw new Error("toolpolicy.yaml: (root): %YAML directives are not accepted (YAML 1.2 only)");
  if (!validate(doc)) throw new Error(`toolpolicy.yaml: ${[...new Set((validate.errors ?? []).flatMap(ruleProblem))].join("; ")}`);
  const seen = new Set<string>();
  const problems = doc.policies.flatMap((r, i) => [
    ...(seen.has(r.name) ? [`policies[${i}].name: duplicate rule name ${JSON.stringify(r.name)}`] : (seen.add(r.name), [])),
    // JSON Schema's "number" admits NaN and ±Infinity (YAML .nan, .inf): NaN would scramble the priority order
    ...(["priority", "window"] as const).filter(f => r[f] !== undefined && !Number.isFinite(r[f])).map(f => `policies[${i}].${f}: must be a finite number`),
  ]);
  if (problems.length > 0) throw new Error(`toolpolicy.yaml: ${problems.join("; ")}`);
  const policies: PolicyRule[] = doc.policies.map(r => ({ ...r, priority: r.priority ?? 0 }));
  policies.sort((a, b) => b.priority - a.priority);
  return Object.freeze({
    version: String(doc.version),
    agent: doc.agent,
    policies: Object.freeze(policies),
    digest: `sha256:${createHash("sha256").update(text).digest("hex")}`,
  });
}

/**
 * A profile that denies every action, its one rule named for why (so every denial says it, without
 * the parse error): what the router enforces while toolpolicy.yaml exists but no version of it has parsed
 * (config-dir.ts). Fail closed: a policy that cannot be read is not an empty one. Digest `invalid`.
 */
export function denyAllPolicyProfile(): PolicyProfile {
  // the parse error stays in /readyz and the log: it may quote the file, which is not the agent's to read
  const rule: PolicyRule = { name: "no valid toolpolicy.yaml yet (the router's /readyz says why)", type: "capability", denied_actions: ["*"], priority: Number.MAX_SAFE_INTEGER };
  return Object.freeze({ version: "invalid", policies: Object.freeze([rule]), digest: "invalid" });
}

/** The fields each rule type takes besides name, type and priority (toolpolicy.schema.json's allOf). */
const RULE_FIELDS = "capability: allowed_actions and/or denied_actions; approval: actions; rate_limit: actions, max_calls, window";

/** A schema error as the author should read it: the rule-type conditions in words, the rest as ajv says. */
function ruleProblem(e: ErrorObject): string[] {
  if (e.keyword === "if") return [];
  const at = describeSchemaError(e).split(": ")[0];
  if (e.keyword === "not") return [`${at}: has a field its type does not take (${RULE_FIELDS})`];
  if (e.keyword === "anyOf") return [`${at}: a capability rule needs allowed_actions or denied_actions`];
  if (e.keyword === "pattern") return [`${at}: an action pattern is exact, or a prefix ending in * (no * elsewhere, no leading or trailing space, no control character)`];
  if (e.keyword === "required" && /^policies\[\d+\]$/.test(at) && ["allowed_actions", "denied_actions"].includes(String((e.params as { missingProperty?: string }).missingProperty))) return [];
  return [describeSchemaError(e)];
}

/** Whether an action (`inference:chat_completions:gpt-4o`) matches a pattern (`inference:*`, exact, or `*`). */
export function actionMatches(pattern: string, action: string): boolean {
  return pattern.endsWith("*") ? action.startsWith(pattern.slice(0, -1)) : pattern === action;
}

/**
 * Evaluates an action against the rules, highest priority first, first match wins (DESIGN §6):
 * capability → denied_actions match denies, allowed_actions match allows; approval → an action needing
 * human approval is denied on the inference path (no approver is in the loop); rate_limit → allowed
 * until `max_calls` within `window` seconds (counts in `calls`, keyed by rule name; times in ms).
 * No matching rule → allowed.
 */
export function evaluateAction(profile: PolicyProfile | null, action: string, nowMs: number, calls: Map<string, number[]>): PolicyDecision {
  if (!profile) return { allowed: true, rule: null, reason: "no policy profile" };
  for (const rule of profile.policies) {
    if (rule.type === "capability") {
      if (rule.denied_actions?.some(p => actionMatches(p, action))) return { allowed: false, rule: rule.name, reason: `denied by ${rule.name}` };
      if (rule.allowed_actions?.some(p => actionMatches(p, action))) return { allowed: true, rule: rule.name, reason: `allowed by ${rule.name}` };
    } else if (rule.actions?.some(p => actionMatches(p, action))) {
      if (rule.type === "approval") return { allowed: false, rule: rule.name, reason: `${rule.name} requires human approval` };
      const windowMs = (rule.window ?? 60) * 1000;
      const recent = (calls.get(rule.name) ?? []).filter(t => t > nowMs - windowMs);
      if (rule.max_calls !== undefined && recent.length >= rule.max_calls) {
        calls.set(rule.name, recent);
        return { allowed: false, rule: rule.name, reason: `${rule.name}: ${rule.max_calls} calls per ${rule.window ?? 60}s reached` };
      }
      recent.push(nowMs);
      calls.set(rule.name, recent);
      return { allowed: true, rule: rule.name, reason: `within ${rule.name}` };
    }
  }
  return { allowed: true, rule: null, reason: "no rule matched" };
}

/** evaluateAction that throws RouterError `policy_denied` (403) when the action is denied. */
export function verifyActionAllowed(profile: PolicyProfile | null, action: string, nowMs: number, calls: Map<string, number[]>): PolicyDecision {
  const d = evaluateAction(profile, action, nowMs, calls);
  if (!d.allowed) throw new RouterError("policy_denied", `action ${action} ${d.reason}`);
  return d;
}
