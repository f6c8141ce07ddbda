import type { InferencePolicy } from "../shared/inferencepolicy-types";
import type { KarsSandbox } from "../shared/karssandbox-types";
import type { UpstreamConfig } from "./config";
import { inferenceProjection, projectInferencePolicy, REFUSE_ALL_POLICY, resolveModel } from "./inference-policy-projection";

const sb = (labels: Record<string, string> = {}): KarsSandbox => ({
  metadata: { name: "demo", namespace: "team", labels },
  spec: { runtime: { kind: "Hermes" }, inferenceRef: { name: "p" } },
});
const policy = (spec: InferencePolicy["spec"], name = "p"): InferencePolicy => ({ metadata: { name, namespace: "team", generation: 4 }, spec });
const upstreams: UpstreamConfig[] = [
  { name: "gpt-4.1", provider: "azure-openai", endpoint: "https://a.example", deployment: "gpt-41-prod" },
  { name: "small", provider: "foundry", endpoint: "https://f.example" },
];

describe("projectInferencePolicy", () => {
  it("projects tokenBudget, contentSafety, appliesTo and modelPreference as the router's profile wants them", () => {
    const p = policy({
      appliesTo: { sandboxName: "demo", action: "chat" },
      tokenBudget: { perRequestTokens: 100, hourlyTokens: 1000 },
      contentSafety: { hate: "Low", requirePromptShields: true },
      modelPreference: { primary: { provider: "azure-openai", deployment: "gpt-41-prod" }, fallback: ["small"] },
      tenantTokenBudget: { dailyTokens: 5 },
    });
    const out = projectInferencePolicy(sb(), p, upstreams);
    expect(out.inferencePolicy).toEqual({
      appliesTo: { sandboxName: "demo", action: "chat" },
      tokenBudget: { perRequestTokens: 100, hourlyTokens: 1000 },
      contentSafety: { hate: "Low", requirePromptShields: true },
      modelPreference: { primary: "gpt-4.1", fallback: ["small"] },
    });
    expect(out.policyLoaded).toEqual({ status: "True", reason: "PolicyLoaded", message: "InferencePolicy team/p (generation 4) is projected into the router profile" });
  });

  it.each([
    ["a missing policy", undefined, [], "InferencePolicyNotFound", "InferencePolicy team/p (spec.inferenceRef.name) does not exist: create it"],
    ["a policy for another sandbox", policy({ appliesTo: { sandboxName: "other" } }), [], "InferencePolicyMismatch", 'spec.appliesTo.sandboxName is "other", not this sandbox ("demo")'],
    ["a policy whose labels the sandbox lacks", policy({ appliesTo: { sandboxMatchLabels: { tier: "gold" } } }), [], "InferencePolicyMismatch", "wants label tier=gold"],
    ["a model reference of the wrong shape", policy({ modelPreference: { primary: 42 } }), [], "InvalidInferencePolicy", "spec.modelPreference.primary: must be a model name or an object {provider, deployment}, found 42"],
    ["an object without a deployment", policy({ modelPreference: { primary: { provider: "azure-openai" } } }), [], "InvalidInferencePolicy", "spec.modelPreference.primary: must be a model name"],
    ["a fallback no upstream serves", policy({ modelPreference: { primary: "gpt-4.1", fallback: ["gpt-5"] } }), upstreams, "ModelNotServed", 'spec.modelPreference.fallback[0]: model "gpt-5" is not one of the configured upstreams (gpt-4.1, small)'],
  ] as const)("fails closed on %s: zero budget and PolicyLoaded=False", (_t, p, ups, reason, message) => {
    const out = projectInferencePolicy(sb(), p, ups);
    expect(out.inferencePolicy).toEqual(REFUSE_ALL_POLICY);
    expect(out.policyLoaded).toMatchObject({ status: "False", reason, message: expect.stringContaining(message) });
    expect(out.policyLoaded.message).toMatch(/refuses every model call \(token budget 0\)$/);
  });

  it("a policy matched by labels is loaded", () => {
    expect(projectInferencePolicy(sb({ tier: "gold" }), policy({ appliesTo: { sandboxMatchLabels: { tier: "gold" } } }), []).policyLoaded.status).toBe("True");
  });

  it("an empty policy is loaded and limits nothing", () => {
    expect(projectInferencePolicy(sb(), policy({}), [])).toMatchObject({ inferencePolicy: {}, policyLoaded: { status: "True" } });
  });
});

describe("resolveModel", () => {
  it.each([
    ["a name is kept", "small", upstreams, { name: "small" }],
    ["{provider, deployment} names the upstream with that deployment", { provider: "azure-openai", deployment: "gpt-41-prod" }, upstreams, { name: "gpt-4.1" }],
    ["an upstream without deployment is matched by its name", { deployment: "small" }, upstreams, { name: "small" }],
    ["a provider that differs does not match", { provider: "foundry", deployment: "gpt-41-prod" }, upstreams, { reason: "ModelNotServed" }],
    ["without configured upstreams the deployment is the name", { provider: "azure-openai", deployment: "gpt-4.1" }, [], { name: "gpt-4.1" }],
    ["an empty name is refused", "", [], { reason: "InvalidInferencePolicy" }],
    ["an array is refused", ["a"], [], { reason: "InvalidInferencePolicy" }],
  ] as const)("%s", (_t, m, ups, want) => {
    expect(resolveModel(m, ups)).toMatchObject(want);
  });
});

describe("inferenceProjection", () => {
  it("finds the sandbox's own policy by spec.inferenceRef.name and adds its tenant share", () => {
    const out = inferenceProjection(sb(), [policy({ tokenBudget: { dailyTokens: 1 } }, "q"), policy({ tokenBudget: { dailyTokens: 2 }, tenantTokenBudget: { dailyTokens: 11 } })], [sb(), { ...sb(), metadata: { name: "x", namespace: "team" } }], []);
    expect(out).toEqual({
      inferencePolicy: { tokenBudget: { dailyTokens: 2 } },
      policyLoaded: expect.objectContaining({ status: "True" }),
      tenantTokenBudget: { dailyTokens: 5 },
    });
  });

  it("a sandbox without its own policy still gets (and is counted in) the tenant split", () => {
    const out = inferenceProjection(sb(), [policy({ tenantTokenBudget: { dailyTokens: 10 } }, "q")], [sb()], []);
    expect(out.policyLoaded.reason).toBe("InferencePolicyNotFound");
    expect(out.tenantTokenBudget).toEqual({ dailyTokens: 10 });
  });
});
