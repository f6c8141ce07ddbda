/**
 * The one schema source of the InferencePolicy CRD (DESIGN §3; short name `ip`). `npm run gen:crds`
 * renders it to `manifests/crds/kars.azure.com_inferencepolicies.yaml`; a unit test fails when the
 * YAML is stale.
 *
 * Structural OpenAPI v3 plus CEL `x-kubernetes-validations`, so that a malformed object is refused
 * by the apiserver with a field path. One exception: `modelPreference.primary` / `fallback[]` accept
 * either a model name (DESIGN §3, what the router's profile.json wants) or the original kars'
 * `{provider, deployment}` object, so that manifests written for the original apply as written. A
 * structural schema cannot say "string or object" and CEL cannot type-check such a node, so the
 * reconciler checks its shape (`PolicyLoaded=False`, reason `InvalidInferencePolicy`).
 *
 * `tenantTokenBudget` is a kars addition (DESIGN is silent on where a tenant budget is declared):
 * the token budget of the whole tenant (the namespace), split by the reconciler among the
 * namespace's KarsSandboxes (see `sandbox-reconcile/tenant-budget.ts`).
 */
import { GROUP } from "./constants";

type Schema = Record<string, unknown>;

/** Values of `spec.appliesTo.action` (DESIGN §3). */
export const INFERENCE_ACTIONS = ["chat", "responses", "embeddings", "image", "*"] as const;

/** Content-safety severities, lowest first (Azure AI content filtering). */
export const SEVERITY_LEVELS = ["Safe", "Low", "Medium", "High"] as const;

const tokens = (description: string, minimum = 0): Schema => ({ type: "integer", format: "int64", minimum, maximum: 1e15, description });

/** CEL for "a ≥ b when both are set", rendered with a message naming both fields. */
const atLeast = (a: string, b: string): Schema => ({
  rule: `!has(self.${a}) || !has(self.${b}) || self.${a} >= self.${b}`,
  message: `${a} must be >= ${b}`,
  fieldPath: `.${a}`,
  reason: "FieldValueInvalid",
});

const tokenBudget: Schema = {
  type: "object",
  description: "Token limits of this sandbox (tokens). An absent field is unlimited. Windows are UTC calendar hour, day and month.",
  properties: {
    perRequestTokens: tokens("most tokens (prompt estimate + completion allowance) one request may reserve", 1),
    hourlyTokens: tokens("tokens per UTC hour"),
    dailyTokens: tokens("tokens per UTC day"),
    monthlyTokens: tokens("tokens per UTC calendar month"),
  },
  "x-kubernetes-validations": [
    atLeast("monthlyTokens", "dailyTokens"),
    atLeast("dailyTokens", "hourlyTokens"),
    atLeast("monthlyTokens", "hourlyTokens"),
    atLeast("monthlyTokens", "perRequestTokens"),
  ],
};

const tenantTokenBudget: Schema = {
  type: "object",
  description:
    "kars addition: the token budget of the whole tenant (this namespace), per UTC hour, day and month. The reconciler gives each KarsSandbox " +
    "of the namespace floor(total / N) per window (N = the namespace's KarsSandboxes, suspended and terminating ones included), so the sum " +
    "of the routers' shares never exceeds the total. When several InferencePolicies of a namespace declare one, the smallest value per window wins.",
  minProperties: 1,
  properties: {
    hourlyTokens: tokens("tenant tokens per UTC hour"),
    dailyTokens: tokens("tenant tokens per UTC day"),
    monthlyTokens: tokens("tenant tokens per UTC calendar month"),
  },
  "x-kubernetes-validations": [atLeast("monthlyTokens", "dailyTokens"), atLeast("dailyTokens", "hourlyTokens"), atLeast("monthlyTokens", "hourlyTokens")],
};

const severity = (category: string): Schema => ({
  type: "string",
  enum: [...SEVERITY_LEVELS],
  description: `highest ${category} severity tolerated in the upstream's content-filter results; anything above is refused (content_policy_violation)`,
});

const modelRef = (description: string): Schema => ({
  description: `${description}: a model name (the router upstream's name), or the original kars' object {provider, deployment}`,
  "x-kubernetes-preserve-unknown-fields": true,
});

const spec: Schema = {
  type: "object",
  properties: {
    appliesTo: {
      type: "object",
      description: "Which sandboxes and which API this policy is for. A KarsSandbox names its policy in spec.inferenceRef; a policy whose appliesTo does not match that sandbox is not loaded (fail closed).",
      properties: {
        sandboxName: { type: "string", minLength: 1, maxLength: 253, description: "the KarsSandbox this policy is for" },
        sandboxMatchLabels: {
          type: "object",
          maxProperties: 32,
          additionalProperties: { type: "string", maxLength: 63 },
          description: "labels the KarsSandbox must carry",
        },
        action: { type: "string", enum: [...INFERENCE_ACTIONS], description: "the only API the router serves under this policy (* = every API)" },
      },
      "x-kubernetes-validations": [
        { rule: "!(has(self.sandboxName) && has(self.sandboxMatchLabels))", message: "set sandboxName or sandboxMatchLabels, not both", reason: "FieldValueForbidden", fieldPath: ".sandboxMatchLabels" },
      ],
    },
    tokenBudget,
    contentSafety: {
      type: "object",
      description: "Content-safety floor the router enforces on upstream filter results (DESIGN §6).",
      properties: {
        hate: severity("hate"),
        selfHarm: severity("self-harm"),
        sexual: severity("sexual"),
        violence: severity("violence"),
        requirePromptShields: { type: "boolean", description: "refuse answers whose upstream did not run Prompt Shields" },
      },
    },
    modelPreference: {
      type: "object",
      required: ["primary"],
      description: "The models an agent may use: primary first, then fallback in order (on 429/5xx).",
      properties: {
        primary: modelRef("the preferred model"),
        fallback: { type: "array", maxItems: 16, items: modelRef("a fallback model") },
      },
    },
    tenantTokenBudget,
  },
};

/** The InferencePolicy CustomResourceDefinition object (apiextensions.k8s.io/v1). */
export function inferencePolicyCrd(): Schema {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `inferencepolicies.${GROUP}` },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: { kind: "InferencePolicy", listKind: "InferencePolicyList", plural: "inferencepolicies", singular: "inferencepolicy", shortNames: ["ip"], categories: ["kars"] },
      versions: [
        {
          name: "v1alpha1",
          served: true,
          storage: true,
          additionalPrinterColumns: [
            { name: "Sandbox", type: "string", jsonPath: ".spec.appliesTo.sandboxName" },
            { name: "Daily", type: "integer", jsonPath: ".spec.tokenBudget.dailyTokens" },
            { name: "Tenant-Daily", type: "integer", jsonPath: ".spec.tenantTokenBudget.dailyTokens", priority: 1 },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: "Inference limits of KarsSandboxes (DESIGN §3): token budgets, content-safety floor, model preference; plus the tenant's token budget (kars addition).",
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec,
              },
            },
          },
        },
      ],
    },
  };
}
