import type { Profile } from "../config/profile";
import type { PolicyProfile } from "../policy/policy-engine";
import type { BudgetScope } from "../budget/ledger";

/** The router's current configuration: the last good profile.json and toolpolicy.yaml (hot-reloaded). */
export interface RuntimeConfig {
  profile: Readonly<Profile>;
  /** `sha256:<hex>` of profile.json's bytes. */
  profileDigest: string;
  /** Parsed toolpolicy.yaml, or null when the file is absent. */
  toolPolicy: PolicyProfile | null;
}

/**
 * Budget scopes of a profile: the sandbox (InferencePolicy tokenBudget) and its tenant (DESIGN §6).
 * The same (frozen) array for the same profile object, so the request path does not rebuild it.
 */
export function budgetScopes(profile: Readonly<Profile>): readonly BudgetScope[] {
  let scopes = scopeCache.get(profile);
  if (!scopes) {
    scopes = Object.freeze([
      { key: `sandbox:${profile.sandbox}`, limits: profile.inferencePolicy.tokenBudget ?? {}, exceededCode: "token_budget_exceeded" },
      { key: `tenant:${profile.tenant}`, limits: profile.tenantTokenBudget ?? {}, exceededCode: "budget_exceeded" },
    ] satisfies BudgetScope[]);
    scopeCache.set(profile, scopes);
  }
  return scopes;
}
const scopeCache = new WeakMap<object, readonly BudgetScope[]>();
