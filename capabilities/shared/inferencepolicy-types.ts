/**
 * TypeScript shape of an InferencePolicy as stored by the apiserver, mirroring
 * `inferencepolicy-crd.ts` field for field (DESIGN §3; `tenantTokenBudget` is a kars addition).
 * Every token count is in tokens; windows are UTC calendar hour/day/month.
 */

/** Content-safety severity, lowest first. */
export type SeverityLevel = "Safe" | "Low" | "Medium" | "High";

/** `spec.tokenBudget`: per-sandbox limits (tokens); an absent field is unlimited. */
export interface PolicyTokenBudget {
  perRequestTokens?: number;
  hourlyTokens?: number;
  dailyTokens?: number;
  monthlyTokens?: number;
}

/** `spec.tenantTokenBudget` (kars addition): limits of the whole namespace (tokens). */
export interface TenantTokenBudget {
  hourlyTokens?: number;
  dailyTokens?: number;
  monthlyTokens?: number;
}

/**
 * A model in `spec.modelPreference`: a model name (DESIGN §3), or the original kars' object form
 * `{provider, deployment}`. Not checked by the apiserver (see inferencepolicy-crd.ts): `unknown`.
 */
export type ModelRef = unknown;

/** `spec` of an InferencePolicy. */
export interface InferencePolicySpec {
  appliesTo?: { sandboxName?: string; sandboxMatchLabels?: Record<string, string>; action?: "chat" | "responses" | "embeddings" | "image" | "*" };
  tokenBudget?: PolicyTokenBudget;
  contentSafety?: { hate?: SeverityLevel; selfHarm?: SeverityLevel; sexual?: SeverityLevel; violence?: SeverityLevel; requirePromptShields?: boolean };
  modelPreference?: { primary: ModelRef; fallback?: ModelRef[] };
  tenantTokenBudget?: TenantTokenBudget;
}

/** An InferencePolicy object (metadata trimmed to what kars reads). */
export interface InferencePolicy {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; generation?: number; deletionTimestamp?: string };
  spec: InferencePolicySpec;
}
