import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv";
import type { KarsSandbox } from "../shared/karssandbox-types";
import { parseReconcileConfig } from "./config";
import { desiredChildren as desiredChildrenWith, routerProfile } from "./desired-children";
import { inferenceProjection } from "./inference-policy-projection";
import type { InferencePolicy } from "../shared/inferencepolicy-types";
import { sandboxStatus } from "./sandbox-status";
import { specProblem } from "./spec-problems";

const cfg = parseReconcileConfig({});
const sb = (spec: Partial<KarsSandbox["spec"]> = {}, meta: Partial<KarsSandbox["metadata"]> = {}): KarsSandbox => ({
  metadata: { name: "demo", namespace: "team-a", generation: 3, ...meta },
  spec: { runtime: { kind: "OpenAIAgents" }, inferenceRef: { name: "p" }, ...spec },
});

// Children of a sandbox whose InferencePolicy does not exist (the projection refuses inference).
const desiredChildren = (s: KarsSandbox, c: typeof cfg) => desiredChildrenWith(s, c, inferenceProjection(s, [], [s], c.upstreams));

describe("desiredChildren", () => {
  it("names and labels every child after the sandbox", () => {
    const ch = desiredChildren(sb(), cfg);
    for (const o of Object.values(ch)) {
      expect(o.metadata!.labels).toMatchObject({ "kars.azure.com/sandbox": "demo", "kars.azure.com/sandbox-namespace": "team-a" });
    }
    expect(ch.namespace.metadata!.name).toBe("kars-demo");
    expect(ch.namespace.metadata!.labels).toMatchObject({ "kars.azure.com/role": "sandbox", "kars.azure.com/isolation": "enhanced" });
    expect(ch.deployment.metadata!.namespace).toBe("kars-demo");
  });

  // The apiserver stores an empty list (or an empty env value list, args, …) as absent: a server-side
  // apply that sends one changes the stored object every time, bumps its generation, and its watch
  // event queues the next reconcile, forever (an idle demo sandbox ran ~10 reconciles a second).
  it.each([
    ["the defaults", sb()],
    ["BYO with no command, args or endpoints", sb({ runtime: { kind: "BYO", byo: { image: "me/byo@sha256:" + "b".repeat(64), command: [], args: [], env: [] } }, networkPolicy: { allowedEndpoints: [] } })],
    ["BYO with an env var without a value", sb({ runtime: { kind: "BYO", byo: { image: "me/byo@sha256:" + "b".repeat(64), env: [{ name: "EMPTY" }, { name: "BLANK", value: "" }] } } })],
    ["Strict with no endpoints", sb({ networkPolicy: { egressMode: "Strict", allowedEndpoints: [] } })],
  ])("sends no empty list or string in any child's Kubernetes fields (%s), so a second apply changes nothing", (_t, s) => {
    const emptyLists: string[] = [];
    const walk = (v: unknown, at: string): void => {
      if (v === "") emptyLists.push(at);
      if (Array.isArray(v)) {
        if (v.length === 0) emptyLists.push(at);
        v.forEach((x, i) => walk(x, `${at}[${i}]`));
      } else if (v && typeof v === "object") for (const [key, x] of Object.entries(v)) walk(x, `${at}.${key}`);
    };
    const ch = desiredChildren(s, cfg);
    for (const [name, child] of Object.entries(ch)) walk(name === "routerProfile" ? { ...child, data: undefined } : child, name); // profile.json is one string
    expect(emptyLists).toEqual([]);
  });

  it("never automounts a ServiceAccount token", () => {
    const ch = desiredChildren(sb(), cfg);
    expect(ch.serviceAccount.automountServiceAccountToken).toBe(false);
    expect(ch.deployment.spec!.template.spec!.automountServiceAccountToken).toBe(false);
  });

  it.each([
    [false, 1],
    [true, 0],
  ])("suspended=%s gives replicas %i", (suspended, replicas) => {
    expect(desiredChildren(sb({ suspended }), cfg).deployment.spec!.replicas).toBe(replicas);
  });

  it.each([
    ["OpenAIAgents default image", sb(), "ghcr.io/azure/kars/runtime-openai-agents:0.1.0"],
    ["agentCode.oci image", sb({ runtime: { kind: "OpenAIAgents", openaiAgents: { agentCode: { oci: { image: "me/app:1" } } } } }), "me/app:1"],
    ["BYO image", sb({ runtime: { kind: "BYO", byo: { image: "me/byo@sha256:" + "b".repeat(64), args: ["--x"] } } }), "me/byo@sha256:" + "b".repeat(64)],
  ])("agent image: %s", (_t, s, image) => {
    expect(desiredChildren(s, cfg).deployment.spec!.template.spec!.containers[0]!.image).toBe(image);
  });

  it.each<[string, "Strict" | "Learn" | undefined, number[]]>([
    ["Strict: 443 and the ports endpoints name", "Strict", [443, 8443]],
    ["Learn: plain HTTP on 80 too, which the proxy forwards to any public host in Learn", "Learn", [80, 443, 8443]],
    ["no mode is Learn", undefined, [80, 443, 8443]],
  ])("network policy ports, %s", (_t, egressMode, ports) => {
    const np = desiredChildren(sb({ networkPolicy: { ...(egressMode ? { egressMode } : {}), allowedEndpoints: [{ host: "a.example", port: 8443 }] } }), cfg).networkPolicy.spec!;
    expect(np.egress![1]!.ports!.map(p => p.port)).toEqual(ports);
  });

  it("network policy: default deny, DNS, public 443 except private ranges, extra endpoint ports", () => {
    const np = desiredChildren(sb({ networkPolicy: { egressMode: "Strict", allowedEndpoints: [{ host: "a.example", port: 8443 }] } }), cfg).networkPolicy.spec!;
    expect(np.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(np.ingress).toBeUndefined(); // policyTypes Ingress with no rules: all ingress denied
    expect(np.egress![0]!.ports).toEqual([{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }]);
    expect(np.egress![1]!.to![0]!.ipBlock!.except).toEqual(expect.arrayContaining(["10.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10"]));
    expect(np.egress![1]!.ports!.map(p => p.port)).toEqual([443, 8443]);
  });

  const schema = JSON.parse(readFileSync(join(__dirname, "..", "..", "router", "schemas", "profile.schema.json"), "utf8"));
  const validate = new Ajv({ strict: false, useDefaults: false }).compile(schema);
  const withUpstream = parseReconcileConfig({ KARS_UPSTREAMS: JSON.stringify([{ name: "gpt-4.1", provider: "azure-openai", endpoint: "https://aoai.example.com", deployment: "gpt-41-prod" }]) });
  const policy = (name: string, spec: InferencePolicy["spec"]): InferencePolicy => ({ metadata: { name, namespace: "team-a", generation: 2 }, spec });
  const research = policy("p", {
    appliesTo: { sandboxName: "demo", action: "chat" },
    tokenBudget: { perRequestTokens: 4000, hourlyTokens: 50_000, dailyTokens: 200_000, monthlyTokens: 2_000_000 },
    contentSafety: { hate: "Low", selfHarm: "Low", sexual: "Low", violence: "Low", requirePromptShields: true },
    modelPreference: { primary: { provider: "azure-openai", deployment: "gpt-41-prod" } },
    tenantTokenBudget: { hourlyTokens: 100_001, dailyTokens: 300_000 },
  });
  const other = { ...sb({}, { name: "other" }) };

  it.each([
    ["a loaded policy with a tenant split of 2", [research], [sb(), other]],
    ["a missing policy (refuses inference)", [], [sb()]],
    ["a policy that names another sandbox (refuses inference)", [policy("p", { appliesTo: { sandboxName: "x" } })], [sb()]],
  ] as const)("writes a router profile that the router's JSON Schema accepts: %s", (_t, policies, sandboxes) => {
    const s = sb({ networkPolicy: { egressMode: "Strict", allowedEndpoints: [{ host: "github.com" }] } });
    const profile = routerProfile(s, withUpstream, inferenceProjection(s, policies, sandboxes, withUpstream.upstreams));
    expect(validate(profile) ? [] : validate.errors).toEqual([]);
    expect(profile).toMatchObject({ sandbox: "demo", tenant: "team-a", egressMode: "Strict", allowedEndpoints: [{ host: "github.com", port: 443 }] });
  });

  it.each([
    ["Strict, unset: refused (fail closed)", { egressMode: "Strict" as const }, "Refuse"],
    ["Learn, unset: allowed", { egressMode: "Learn" as const }, "Allow"],
    ["no networkPolicy (Learn): allowed", undefined, "Allow"],
    ["Strict, set to Allow", { egressMode: "Strict" as const, encryptedClientHello: "Allow" as const }, "Allow"],
  ])("writes the Encrypted Client Hello policy resolved: %s", (_t, networkPolicy, expected) => {
    const s = sb(networkPolicy ? { networkPolicy } : {});
    const profile = routerProfile(s, withUpstream, inferenceProjection(s, [research], [s], withUpstream.upstreams));
    expect(validate(profile) ? [] : validate.errors).toEqual([]);
    expect(profile.encryptedClientHello).toBe(expected);
  });

  it("projects the InferencePolicy's spec and the sandbox's tenant share into profile.json", () => {
    const profile = JSON.parse(desiredChildrenWith(sb(), withUpstream, inferenceProjection(sb(), [research], [sb(), other], withUpstream.upstreams)).routerProfile.data!["profile.json"]!);
    expect(profile.inferencePolicy).toEqual({
      appliesTo: { sandboxName: "demo", action: "chat" },
      tokenBudget: { perRequestTokens: 4000, hourlyTokens: 50_000, dailyTokens: 200_000, monthlyTokens: 2_000_000 },
      contentSafety: { hate: "Low", selfHarm: "Low", sexual: "Low", violence: "Low", requirePromptShields: true },
      modelPreference: { primary: "gpt-4.1", fallback: [] },
    });
    expect(profile.tenantTokenBudget).toEqual({ hourlyTokens: 50_000, dailyTokens: 150_000 });
  });

  it("a sandbox whose policy is missing gets a profile with a zero budget and no tenant share field when none is declared", () => {
    const profile = routerProfile(sb(), cfg, inferenceProjection(sb(), [], [sb()], []));
    expect(profile.inferencePolicy).toEqual({ tokenBudget: { hourlyTokens: 0, dailyTokens: 0, monthlyTokens: 0 } });
    expect(profile).not.toHaveProperty("tenantTokenBudget");
  });
});

describe("specProblem", () => {
  it.each([
    ["a host with a port in it", "api.example.com:443", /^spec\.networkPolicy\.allowedEndpoints\[1\]\.host: not a valid host .*a port goes in port/],
    ["a wildcard IP", "*.10.0.0.1", /^spec\.networkPolicy\.allowedEndpoints\[1\]\.host: a wildcard needs a domain name/],
  ])("stalls a sandbox whose allowlist names %s (the router would refuse its profile)", (_t, host, message) => {
    const problem = specProblem(sb({ networkPolicy: { egressMode: "Strict", allowedEndpoints: [{ host: "ok.example" }, { host }] } }), cfg);
    expect(problem?.reason).toBe("InvalidSpec");
    expect(problem?.message).toMatch(message);
  });

  it("accepts the allowlist hosts the router accepts", () => {
    expect(specProblem(sb({ networkPolicy: { egressMode: "Strict", allowedEndpoints: [{ host: "*.Example.com" }, { host: "10.0.0.1", port: 8443 }, { host: "2001:db8::1" }, { host: "bücher.example" }] } }), cfg)).toBeUndefined();
  });

  it.each([
    ["BYO v1", { kind: "BYO", byo: { image: "x", contractVersion: "v1" } }, undefined],
    ["BYO v999 under strict mode", { kind: "BYO", byo: { image: "x", contractVersion: "v999" } }, "ByoContractUnsupported"],
    ["OpenClaw", { kind: "OpenClaw" }, undefined],
  ] as const)("%s → %s", (_t, runtime, reason) => {
    expect(specProblem(sb({ runtime: runtime as KarsSandbox["spec"]["runtime"] }), cfg)?.reason).toBe(reason);
  });
  it("names the field and the fix", () => {
    expect(specProblem(sb({ runtime: { kind: "BYO", byo: { image: "x", contractVersion: "v999" } } }), cfg)?.message).toMatch(/^spec\.runtime\.byo\.contractVersion: v999 is not a supported BYO runtime contract/);
  });
  it("lets v999 through when strict mode is off", () => {
    expect(specProblem(sb({ runtime: { kind: "BYO", byo: { image: "x", contractVersion: "v999" } } }), parseReconcileConfig({ KARS_BYO_STRICT: "false" }))).toBeUndefined();
  });
});

describe("parseReconcileConfig", () => {
  it.each([
    [{ KARS_BYO_STRICT: "yes" }, "KARS_BYO_STRICT: must be true or false"],
    [{ KARS_UPSTREAMS: "{" }, "KARS_UPSTREAMS: must be a JSON array"],
    [{ KARS_UPSTREAMS: "{}" }, "KARS_UPSTREAMS: must be a JSON array"],
    [{ KARS_RESYNC_SECONDS: "-1" }, "KARS_RESYNC_SECONDS: must be a positive number"],
  ])("refuses %j", (env, msg) => {
    expect(() => parseReconcileConfig(env)).toThrow(msg);
  });

  // each of these would have been written into every sandbox's profile.json, which every router then refused at start (helper-22)
  const up = (extra: Record<string, unknown>) => JSON.stringify([{ name: "m", provider: "openai-compatible", endpoint: "https://llm.example/v1", apiKeyFile: "key", ...extra }]);
  it.each<[string, string, RegExp]>([
    ["an API-key provider without apiKeyFile", JSON.stringify([{ name: "m", provider: "github-models", endpoint: "https://models.github.ai/inference" }]), /^KARS_UPSTREAMS: upstreams\[0\]\.apiKeyFile: required for provider github-models/],
    ["an unknown provider", up({ provider: "openai" }), /^KARS_UPSTREAMS: upstreams\[0\]\.provider: must be equal to one of the allowed values/],
    ["an endpoint without a scheme", up({ endpoint: "aoai.example.com" }), /^KARS_UPSTREAMS: upstreams\[0\]\.endpoint: must match pattern/],
    ["a field the router does not know", up({ apiKey: "sk-inline" }), /^KARS_UPSTREAMS: upstreams\[0\]: must NOT have additional properties \(apiKey\)/],
    ["two upstreams of one name", JSON.stringify([...JSON.parse(up({})), ...JSON.parse(up({}))]), /^KARS_UPSTREAMS: upstreams\[1\]\.name: duplicate upstream name/],
    ["null", "[null]", /^KARS_UPSTREAMS: upstreams\[0\]: must be object/],
    ["Azure OpenAI over plain http off this machine", JSON.stringify([{ name: "m", provider: "azure-openai", endpoint: "http://aoai.example.com" }]), /^KARS_UPSTREAMS: upstreams\[0\]\.endpoint: provider azure-openai sends Entra tokens or api-keys, so it needs https:\/\//],
  ])("refuses KARS_UPSTREAMS with %s, naming the field (as the router would refuse the profile)", (_t, value, msg) => {
    expect(() => parseReconcileConfig({ KARS_UPSTREAMS: value })).toThrow(msg);
  });

  it.each([
    ["Azure OpenAI over https", [{ name: "m", provider: "azure-openai", endpoint: "https://aoai.example.com", deployment: "d" }]],
    ["Azure OpenAI over http to loopback (tests, the demo)", [{ name: "m", provider: "azure-openai", endpoint: "http://127.0.0.1:8080", deployment: "d" }]],
    ["an in-cluster OpenAI-compatible server over http", [{ name: "m", provider: "openai-compatible", endpoint: "http://vllm.models.svc:8000/v1", apiKeyFile: "key" }]],
    ["none", []],
  ])("accepts KARS_UPSTREAMS with %s", (_t, value) => {
    expect(parseReconcileConfig({ KARS_UPSTREAMS: JSON.stringify(value) }).upstreams).toEqual(value);
  });
});

describe("sandboxStatus", () => {
  const now = new Date("2026-11-30T12:00:00.000Z");
  const cond = (s: ReturnType<typeof sandboxStatus>, t: string) => s.conditions!.find(c => c.type === t)!;
  it.each([
    ["ready", { kind: "applied", deploymentReady: true, suspended: false, namespace: "kars-demo" }, "Ready", "True", "False", "False"],
    ["progressing", { kind: "applied", deploymentReady: false, suspended: false, namespace: "kars-demo" }, "Provisioning", "False", "True", "False"],
    ["suspended", { kind: "applied", deploymentReady: false, suspended: true, namespace: "kars-demo" }, "Suspended", "True", "False", "False"],
    ["stalled", { kind: "stalled", reason: "ByoContractUnsupported", message: "m" }, "Failed", "False", "False", "True"],
    ["apply failed", { kind: "applyFailed", message: "boom" }, "Pending", "False", "True", "False"],
    ["admission denied", { kind: "admissionDenied", message: "spec.x: y", namespace: "kars-demo" }, "Failed", "False", "False", "True"],
  ] as const)("%s → phase %s, Ready=%s Reconciling=%s Stalled=%s", (_t, obs, phase, ready, reconciling, stalled) => {
    const s = sandboxStatus(sb(), obs, now);
    expect(s.phase).toBe(phase);
    expect(s.observedGeneration).toBe(3);
    expect([cond(s, "Ready").status, cond(s, "Reconciling").status, cond(s, "Stalled").status]).toEqual([ready, reconciling, stalled]);
  });
  it("a policy that could not be loaded keeps the sandbox Pending with its reason, and PolicyLoaded=False", () => {
    const policy = { status: "False", reason: "InferencePolicyNotFound", message: "InferencePolicy team-a/p (spec.inferenceRef.name) does not exist: create it" } as const;
    const s = sandboxStatus(sb(), { kind: "applied", deploymentReady: true, suspended: false, namespace: "kars-demo", policy }, now);
    expect(s.phase).toBe("Pending");
    expect([cond(s, "Ready").status, cond(s, "Ready").reason, cond(s, "Reconciling").status, cond(s, "Stalled").status]).toEqual(["False", "InferencePolicyNotFound", "True", "False"]);
    expect(cond(s, "PolicyLoaded")).toMatchObject({ status: "False", reason: "InferencePolicyNotFound", message: expect.stringContaining("does not exist") });
  });
  it("a loaded policy adds PolicyLoaded=True and leaves the rest as without one", () => {
    const s = sandboxStatus(sb(), { kind: "applied", deploymentReady: true, suspended: false, namespace: "kars-demo", policy: { status: "True", reason: "PolicyLoaded", message: "m" } }, now);
    expect([s.phase, cond(s, "Ready").status, cond(s, "PolicyLoaded").status]).toEqual(["Ready", "True", "True"]);
  });
  it("keeps lastTransitionTime when a condition's status does not change", () => {
    const first = sandboxStatus(sb(), { kind: "applied", deploymentReady: true, suspended: false, namespace: "n" }, now);
    const later = sandboxStatus({ ...sb(), status: first }, { kind: "applied", deploymentReady: true, suspended: false, namespace: "n" }, new Date("2026-12-01T00:00:00Z"));
    expect(cond(later, "Ready").lastTransitionTime).toBe("2026-11-30T12:00:00Z");
  });
  it("surfaces an admission denial as AdmissionDenied with the webhook's message", () => {
    const s = sandboxStatus(sb(), { kind: "admissionDenied", message: "spec.containers[0].securityContext.privileged: must be false (kars sandbox posture)", namespace: "kars-demo" }, now);
    expect(cond(s, "AdmissionDenied")).toMatchObject({ status: "True", message: expect.stringContaining("privileged: must be false") });
  });
});
