import { createHash } from "node:crypto";
import { parse as parseYaml } from "yaml";
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

/**
 * Parses toolpolicy.yaml (`version`, `agent`, `policies[{name, type, allowed_actions | denied_actions |
 * actions, priority, max_calls, window}]`). Throws Error naming the bad field by path.
 */
export function parsePolicyProfile(text: string): PolicyProfile {
  const doc = parseYaml(text) as unknown;
  if (!doc || typeof doc !== "object") throw new Error("toolpolicy.yaml: (root): must be a mapping");
  const d = doc as Record<string, unknown>;
  if (typeof d.version !== "string" && typeof d.version !== "number") throw new Error("toolpolicy.yaml: version: required");
  if (!Array.isArray(d.policies)) throw new Error("toolpolicy.yaml: policies: must be a list");
  const policies = d.policies.map((p: unknown, i: number) => parseRule(p, `policies[${i}]`));
  policies.sort((a, b) => b.priority - a.priority);
  return Object.freeze({
    version: String(d.version),
    agent: typeof d.agent === "string" ? d.agent : undefined,
    policies: Object.freeze(policies),
    digest: `sha256:${createHash("sha256").update(text).digest("hex")}`,
  });
}

function parseRule(p: unknown, path: string): PolicyRule {
  if (!p || typeof p !== "object") throw new Error(`toolpolicy.yaml: ${path}: must be a mapping`);
  const r = p as Record<string, unknown>;
  if (typeof r.name !== "string") throw new Error(`toolpolicy.yaml: ${path}.name: required string`);
  if (r.type !== "capability" && r.type !== "approval" && r.type !== "rate_limit") throw new Error(`toolpolicy.yaml: ${path}.type: must be capability, approval or rate_limit`);
  for (const f of ["allowed_actions", "denied_actions", "actions"]) {
    if (r[f] !== undefined && !(Array.isArray(r[f]) && (r[f] as unknown[]).every(a => typeof a === "string"))) throw new Error(`toolpolicy.yaml: ${path}.${f}: must be a list of strings`);
  }
  return {
    name: r.name,
    type: r.type,
    allowed_actions: r.allowed_actions as string[] | undefined,
    denied_actions: r.denied_actions as string[] | undefined,
    actions: r.actions as string[] | undefined,
    priority: typeof r.priority === "number" ? r.priority : 0,
    max_calls: typeof r.max_calls === "number" ? r.max_calls : undefined,
    window: typeof r.window === "number" ? r.window : undefined,
  };
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
