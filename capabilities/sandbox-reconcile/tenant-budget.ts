/**
 * The tenant token budget (kars addition: `InferencePolicy.spec.tenantTokenBudget`), split among the
 * tenant's KarsSandboxes so that it holds across all of their routers. Tenant = the KarsSandbox's
 * namespace. Pure.
 *
 * Each router only knows its own spend, so the reconciler gives each sandbox's router a static share:
 * `profile.tenantTokenBudget = floor(total / N)` per UTC window, N = every KarsSandbox object in the
 * namespace. Suspended sandboxes count (resuming one then changes no sibling's share mid-window) and
 * so do terminating ones until they are gone (their router may still run until the namespace is).
 * When several InferencePolicies of the namespace declare a tenant budget, the smallest value per
 * window wins (fail closed).
 *
 * What this guarantees, per window: whenever every router runs the share computed from the current
 * N, the shares sum to at most the total, so tenant spend ≤ total. What it does not: a share that
 * changes mid-window is not reconciled with spend already made. When N grows, siblings that spent up
 * to their old share keep that spend and a new sandbox starts with a fresh share; when N shrinks,
 * the departed sandbox's spend is forgotten and the others' shares grow. Spend in a window is then
 * bounded by the sum, over the sandboxes that existed in that window, of the largest share each held
 * in it: after one change of N, at most the total plus one share. A router also keeps its old share
 * until the kubelet refreshes the projected ConfigMap (up to about a minute).
 */
import type { InferencePolicy, TenantTokenBudget } from "../shared/inferencepolicy-types";
import type { KarsSandbox } from "../shared/karssandbox-types";

const WINDOWS = ["hourlyTokens", "dailyTokens", "monthlyTokens"] as const;

/**
 * The tenant total per window (tokens): the smallest `spec.tenantTokenBudget` value per window among
 * `policies` (all of one namespace); undefined when none declares one (tenant spend is then recorded
 * by each router, not limited). A window none of them limits stays absent (unlimited).
 */
export function tenantBudgetTotal(policies: readonly InferencePolicy[]): TenantTokenBudget | undefined {
  let total: TenantTokenBudget | undefined;
  for (const p of policies) {
    const b = p.spec.tenantTokenBudget;
    if (!b) continue;
    total ??= {};
    for (const w of WINDOWS) {
      const v = b[w];
      if (v !== undefined) total[w] = Math.min(total[w] ?? Infinity, v);
    }
  }
  return total;
}

/** The sandboxes a tenant budget is split among: every KarsSandbox of the namespace, terminating included. */
export function sandboxesSharingTenantBudget(sandboxes: readonly KarsSandbox[], namespace: string): number {
  return sandboxes.filter(s => s.metadata.namespace === namespace).length;
}

/** `floor(total / n)` per window (tokens). `n` below 1 is taken as 1. */
export function tenantBudgetShare(total: TenantTokenBudget, n: number): TenantTokenBudget {
  const d = Math.max(1, Math.floor(n));
  const share: TenantTokenBudget = {};
  for (const w of WINDOWS) {
    const v = total[w];
    if (v !== undefined) share[w] = Math.floor(v / d);
  }
  return share;
}

/**
 * `profile.tenantTokenBudget` of sandbox `sb`: its share of the tenant total declared by `policies`
 * (the InferencePolicies of `sb`'s namespace) among `sandboxes` (the KarsSandboxes listed there,
 * including `sb`; `sb` counts even if the list predates it). Undefined when no tenant budget is declared.
 */
export function tenantBudgetFor(sb: KarsSandbox, policies: readonly InferencePolicy[], sandboxes: readonly KarsSandbox[]): TenantTokenBudget | undefined {
  const total = tenantBudgetTotal(policies.filter(p => p.metadata.namespace === sb.metadata.namespace));
  if (!total) return undefined;
  const listed = sandboxes.some(s => s.metadata.namespace === sb.metadata.namespace && s.metadata.name === sb.metadata.name);
  return tenantBudgetShare(total, sandboxesSharingTenantBudget(sandboxes, sb.metadata.namespace) + (listed ? 0 : 1));
}

/**
 * The KarsSandboxes (names, of `policy`'s namespace) to re-reconcile after `policy` was created,
 * edited or deleted: those naming it in `spec.inferenceRef`, and every one of them when it declares
 * a tenant budget (every share changes). An edit that removes a tenant budget reaches the siblings
 * at the next resync; until then they keep the smaller share (fail closed).
 */
export function sandboxesToRequeue(policy: InferencePolicy, sandboxes: readonly KarsSandbox[]): string[] {
  const ns = sandboxes.filter(s => s.metadata.namespace === policy.metadata.namespace);
  const hit = policy.spec?.tenantTokenBudget ? ns : ns.filter(s => s.spec.inferenceRef?.name === policy.metadata.name);
  return hit.map(s => s.metadata.name);
}
