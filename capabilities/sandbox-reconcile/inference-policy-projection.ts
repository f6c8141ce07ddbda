/**
 * The InferencePolicy a KarsSandbox names (`spec.inferenceRef.name`, in the sandbox's namespace),
 * projected into its router's `profile.inferencePolicy` (DESIGN §3, §6 "Router configuration
 * directory"; shape: router/schemas/profile.schema.json `inferencePolicySpec`). Pure.
 *
 * Fail closed: when the policy is missing, does not apply to this sandbox (`appliesTo`), or names a
 * model in a shape or of a name the router cannot use, the projection is `REFUSE_ALL_POLICY` (a
 * token budget of 0 in every window: the router refuses every model call with 429
 * `token_budget_exceeded`) and `PolicyLoaded=False` says why. A missing policy never means an
 * unlimited budget.
 */
import { Reason } from "../shared/constants";
import type { InferencePolicy, InferencePolicySpec, ModelRef, TenantTokenBudget } from "../shared/inferencepolicy-types";
import type { KarsSandbox } from "../shared/karssandbox-types";
import type { UpstreamConfig } from "./config";
import { tenantBudgetFor } from "./tenant-budget";

/** `profile.inferencePolicy` as the router validates it (model names resolved to upstream names). */
export interface ProfileInferencePolicy {
  appliesTo?: InferencePolicySpec["appliesTo"];
  tokenBudget?: { perRequestTokens?: number; hourlyTokens?: number; dailyTokens?: number; monthlyTokens?: number };
  contentSafety?: InferencePolicySpec["contentSafety"];
  modelPreference?: { primary: string; fallback?: string[] };
}

/** The `PolicyLoaded` condition's content: True when the named policy was projected as written. */
export interface PolicyLoad {
  status: "True" | "False";
  reason: string;
  message: string;
}

/** What a sandbox's router gets when its policy cannot be loaded: 0 tokens per hour, day and month. */
export const REFUSE_ALL_POLICY: Readonly<ProfileInferencePolicy> = Object.freeze({
  tokenBudget: Object.freeze({ hourlyTokens: 0, dailyTokens: 0, monthlyTokens: 0 }),
});

/** A policy projection: the profile field and the condition that explains it. */
export interface PolicyProjection {
  inferencePolicy: ProfileInferencePolicy;
  policyLoaded: PolicyLoad;
}

const refuse = (reason: string, message: string): PolicyProjection => ({
  inferencePolicy: { tokenBudget: { ...REFUSE_ALL_POLICY.tokenBudget } },
  policyLoaded: { status: "False", reason, message: `${message}; until then its router refuses every model call (token budget 0)` },
});

/** Every profile.json field that comes from InferencePolicies, and the condition about them. */
export interface InferenceProjection extends PolicyProjection {
  /** `profile.tenantTokenBudget`: this sandbox's share of the tenant budget (tenant-budget.ts); absent = none declared. */
  tenantTokenBudget?: TenantTokenBudget;
}

/**
 * `(policies, sandboxes) → profile fields` for `sb`: `policies` and `sandboxes` are the
 * InferencePolicies and KarsSandboxes listed in `sb`'s namespace. Never throws.
 */
export function inferenceProjection(
  sb: KarsSandbox,
  policies: readonly InferencePolicy[],
  sandboxes: readonly KarsSandbox[],
  upstreams: readonly UpstreamConfig[],
): InferenceProjection {
  const own = policies.find(p => p.metadata.namespace === sb.metadata.namespace && p.metadata.name === sb.spec.inferenceRef.name);
  const out: InferenceProjection = projectInferencePolicy(sb, own, upstreams);
  const tenant = tenantBudgetFor(sb, policies, sandboxes);
  if (tenant) out.tenantTokenBudget = tenant;
  return out;
}

/**
 * Projects `policy` (the InferencePolicy `sb.spec.inferenceRef.name` in `sb`'s namespace, or
 * undefined when it does not exist) for `sb`'s router. `upstreams` are the reconciler's configured
 * model upstreams: `{provider, deployment}` model references are resolved to an upstream's `name`,
 * and when any upstream is configured every model the policy names must be one of them. Never throws.
 */
export function projectInferencePolicy(sb: KarsSandbox, policy: InferencePolicy | undefined, upstreams: readonly UpstreamConfig[]): PolicyProjection {
  const ref = `InferencePolicy ${sb.metadata.namespace}/${sb.spec.inferenceRef.name}`;
  if (!policy) return refuse(Reason.InferencePolicyNotFound, `${ref} (spec.inferenceRef.name) does not exist: create it`);
  const mismatch = appliesToMismatch(sb, policy.spec.appliesTo);
  if (mismatch) return refuse(Reason.InferencePolicyMismatch, `${ref}: ${mismatch}: fix spec.appliesTo or spec.inferenceRef.name`);
  const out: ProfileInferencePolicy = {};
  const { appliesTo, tokenBudget, contentSafety, modelPreference } = policy.spec;
  if (appliesTo) out.appliesTo = structuredClone(appliesTo);
  if (tokenBudget) out.tokenBudget = { ...tokenBudget };
  if (contentSafety) out.contentSafety = { ...contentSafety };
  if (modelPreference) {
    const refs: [string, ModelRef][] = [["spec.modelPreference.primary", modelPreference.primary], ...(modelPreference.fallback ?? []).map((m, i): [string, ModelRef] => [`spec.modelPreference.fallback[${i}]`, m])];
    const names: string[] = [];
    for (const [path, m] of refs) {
      const r = resolveModel(m, upstreams);
      if ("problem" in r) return refuse(r.reason, `${ref}: ${path}: ${r.problem}`);
      names.push(r.name);
    }
    out.modelPreference = { primary: names[0]!, fallback: names.slice(1) };
  }
  return {
    inferencePolicy: out,
    policyLoaded: { status: "True", reason: Reason.PolicyLoaded, message: `${ref} (generation ${policy.metadata.generation ?? 0}) is projected into the router profile` },
  };
}

/** Why `appliesTo` does not cover `sb`, or undefined when it does (absent fields match everything). */
export function appliesToMismatch(sb: KarsSandbox, appliesTo: InferencePolicySpec["appliesTo"]): string | undefined {
  if (appliesTo?.sandboxName !== undefined && appliesTo.sandboxName !== sb.metadata.name) {
    return `spec.appliesTo.sandboxName is ${JSON.stringify(appliesTo.sandboxName)}, not this sandbox (${JSON.stringify(sb.metadata.name)})`;
  }
  for (const [k, v] of Object.entries(appliesTo?.sandboxMatchLabels ?? {})) {
    if (sb.metadata.labels?.[k] !== v) return `spec.appliesTo.sandboxMatchLabels wants label ${k}=${v}, which this sandbox does not carry`;
  }
  return undefined;
}

/**
 * A model reference → the router upstream name. A string is a name; the original's object form
 * `{provider?, deployment}` names the upstream whose `deployment` (default: its `name`) and, when
 * given, `provider` match, else the deployment itself. With upstreams configured, a name none of
 * them serves is a problem (the router would refuse the whole profile and keep an older one).
 */
export function resolveModel(m: ModelRef, upstreams: readonly UpstreamConfig[]): { name: string } | { reason: string; problem: string } {
  let name: string;
  if (typeof m === "string" && m !== "") {
    name = m;
  } else if (m && typeof m === "object" && !Array.isArray(m) && typeof (m as { deployment?: unknown }).deployment === "string" && (m as { deployment: string }).deployment !== "") {
    const { deployment, provider } = m as { deployment: string; provider?: unknown };
    const u = upstreams.find(x => (x.deployment ?? x.name) === deployment && (provider === undefined || x.provider === provider));
    name = u?.name ?? deployment;
  } else {
    return { reason: Reason.InvalidInferencePolicy, problem: `must be a model name or an object {provider, deployment}, found ${JSON.stringify(m)}` };
  }
  if (upstreams.length > 0 && !upstreams.some(u => u.name === name)) {
    return { reason: Reason.ModelNotServed, problem: `model ${JSON.stringify(name)} is not one of the configured upstreams (${upstreams.map(u => u.name).join(", ")})` };
  }
  return { name };
}
