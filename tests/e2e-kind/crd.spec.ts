/**
 * The KarsSandbox CRD on a real apiserver (issue 2, DESIGN §3): malformed objects are refused with a
 * field path before any controller sees them; the original kars examples apply as written.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { e2e, eventually, sandboxYaml } from "./helpers";

const { k } = e2e();
const apply = (yaml: string) => k(["apply", "--dry-run=server", "-f", "-"], yaml);

beforeAll(() => {
  k.ok(["create", "namespace", "crd-tests"]);
});

describe("a malformed KarsSandbox is refused by the apiserver with a field path", () => {
  it.each([
    ["BYO without its block", "runtime:\n  kind: BYO\ninferenceRef:\n  name: p", "spec.runtime.byo: Required value: runtime.kind BYO requires spec.runtime.byo"],
    ["a sibling block of another kind", "runtime:\n  kind: OpenAIAgents\n  openclaw: {}\ninferenceRef:\n  name: p", "spec.runtime.openclaw: Forbidden: spec.runtime.openclaw is only allowed when runtime.kind is OpenClaw"],
    ["an unknown runtime kind", "runtime:\n  kind: Shell\ninferenceRef:\n  name: p", "spec.runtime.kind: Unsupported value: \"Shell\""],
    ["no inferenceRef", "runtime:\n  kind: Hermes", "spec.inferenceRef: Required value"],
    ["a reserved env prefix", "runtime:\n  kind: BYO\n  byo:\n    image: x\n    env:\n    - name: AZURE_CLIENT_ID\n      value: x\ninferenceRef:\n  name: p", "spec.runtime.byo.env: Invalid value"],
    ["a writable root filesystem", "runtime:\n  kind: Hermes\nsandbox:\n  readOnlyRootFilesystem: false\ninferenceRef:\n  name: p", "spec.sandbox.readOnlyRootFilesystem: Invalid value: false: must be true (kars sandbox posture)"],
    ["a system directory as writable path", "runtime:\n  kind: Hermes\nsandbox:\n  writablePaths: [/etc]\ninferenceRef:\n  name: p", "writable paths must not be system paths"],
    ["a trust threshold above 1000", "runtime:\n  kind: Hermes\ngovernance:\n  trustThreshold: 2000\ninferenceRef:\n  name: p", "spec.governance.trustThreshold: Invalid value: 2000"],
    ["an unknown isolation", "runtime:\n  kind: Hermes\nsandbox:\n  isolation: none\ninferenceRef:\n  name: p", "spec.sandbox.isolation: Unsupported value: \"none\""],
  ])("%s", (_t, spec, message) => {
    const r = apply(sandboxYaml("bad", "crd-tests", spec));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it("applies defaults to the sandbox posture", () => {
    const out = JSON.parse(k.ok(["apply", "--dry-run=server", "-o", "json", "-f", "-"], sandboxYaml("defaults", "crd-tests", "runtime:\n  kind: Hermes\ninferenceRef:\n  name: p")));
    expect(out.spec.sandbox).toEqual({ isolation: "enhanced", seccompProfile: "kars-strict", readOnlyRootFilesystem: true, runAsNonRoot: true, allowPrivilegeEscalation: false, writablePaths: ["/sandbox", "/tmp"] });
    expect(out.spec.networkPolicy).toEqual({ defaultDeny: true, egressMode: "Learn" });
  });
});

describe("a malformed InferencePolicy is refused by the apiserver with a field path", () => {
  const policy = (spec: string) => `apiVersion: kars.azure.com/v1alpha1
kind: InferencePolicy
metadata:
  name: bad
  namespace: crd-tests
spec:
${spec.replace(/^/gm, "  ")}
`;
  it.each([
    ["daily below hourly", "tokenBudget: {hourlyTokens: 10, dailyTokens: 5}", "spec.tokenBudget.dailyTokens: Invalid value: dailyTokens must be >= hourlyTokens"],
    ["monthly below daily", "tokenBudget: {dailyTokens: 10, monthlyTokens: 5}", "spec.tokenBudget.monthlyTokens: Invalid value: monthlyTokens must be >= dailyTokens"],
    ["monthly below perRequest", "tokenBudget: {perRequestTokens: 100, monthlyTokens: 50}", "spec.tokenBudget.monthlyTokens: Invalid value: monthlyTokens must be >= perRequestTokens"],
    ["a zero perRequest", "tokenBudget: {perRequestTokens: 0}", "spec.tokenBudget.perRequestTokens: Invalid value: 0"],
    ["a negative budget", "tokenBudget: {hourlyTokens: -1}", "spec.tokenBudget.hourlyTokens: Invalid value: -1"],
    ["an unknown severity", "contentSafety: {hate: Extreme}", 'spec.contentSafety.hate: Unsupported value: "Extreme"'],
    ["an unknown action", "appliesTo: {action: shell}", 'spec.appliesTo.action: Unsupported value: "shell"'],
    ["both sandboxName and sandboxMatchLabels", "appliesTo: {sandboxName: a, sandboxMatchLabels: {tier: gold}}", "spec.appliesTo.sandboxMatchLabels: Forbidden: set sandboxName or sandboxMatchLabels, not both"],
    ["a model preference without primary", "modelPreference: {fallback: [a]}", "spec.modelPreference.primary: Required value"],
    ["an empty tenant budget", "tenantTokenBudget: {}", "spec.tenantTokenBudget: Invalid value"],
    ["a tenant daily below hourly", "tenantTokenBudget: {hourlyTokens: 100, dailyTokens: 10}", "spec.tenantTokenBudget.dailyTokens: Invalid value: dailyTokens must be >= hourlyTokens"],
  ])("%s", (_t, spec, message) => {
    const r = apply(policy(spec));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it("is refused on update too (an edit that breaks the budget ordering)", () => {
    k.ok(["apply", "-f", "-"], policy("tokenBudget: {hourlyTokens: 10, dailyTokens: 20}"));
    const r = k(["patch", "inferencepolicy", "-n", "crd-tests", "bad", "--type", "merge", "-p", JSON.stringify({ spec: { tokenBudget: { dailyTokens: 5 } } })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.tokenBudget.dailyTokens: Invalid value: dailyTokens must be >= hourlyTokens");
    k.ok(["delete", "inferencepolicy", "-n", "crd-tests", "bad"]);
  });

  it("is served with the short name ip and a well-formed one is accepted", () => {
    const r = apply(policy("tokenBudget: {perRequestTokens: 10, hourlyTokens: 10, dailyTokens: 10, monthlyTokens: 10}\ntenantTokenBudget: {dailyTokens: 5}\nmodelPreference: {primary: gpt-4.1, fallback: [small]}"));
    expect(r.code).toBe(0);
    expect(k(["get", "ip", "-n", "crd-tests"]).code).toBe(0);
  });
});

describe("the original kars examples (../shared/conformance/kars-examples)", () => {
  const dir = join(__dirname, "..", "..", "..", "shared", "conformance", "kars-examples");
  const ofKind = (kind: string) =>
    readdirSync(dir).flatMap(f =>
      parseAllDocuments(readFileSync(join(dir, f), "utf8"))
        .map(d => d.toJSON() as { kind?: string; metadata?: { name: string; namespace?: string } } | null)
        .filter(d => d?.kind === kind)
        .map(d => [`${f}: ${d!.metadata!.name}`, d!] as const),
    );
  const sandboxes = ofKind("KarsSandbox");

  const policies = ofKind("InferencePolicy");

  beforeAll(() => {
    for (const ns of new Set([...sandboxes, ...policies].map(([, d]) => d.metadata!.namespace ?? "default"))) k(["create", "namespace", ns]);
  });

  it.each(policies)("InferencePolicy %s is accepted as written (--dry-run=server)", (_n, doc) => {
    const r = apply(JSON.stringify(doc));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("has KarsSandbox objects to check", () => {
    expect(sandboxes.length).toBeGreaterThanOrEqual(10);
  });

  it.each(sandboxes)("%s is accepted as written (--dry-run=server)", (_n, doc) => {
    const r = apply(JSON.stringify(doc));
    expect(r.stderr.split("\n").filter(l => l && !l.startsWith("Warning: "))).toEqual([]);
    expect(r.code).toBe(0);
  });

  it("fields kars keeps but does not act on are named in a kubectl warning", () => {
    const [, basic] = sandboxes.find(([n]) => n.startsWith("basic-agent_clawsandbox.yaml"))!;
    const r = apply(JSON.stringify(basic));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Warning: spec.azureServices: kept but not acted on by kars");
  });

  it("kinds kars does not serve fail with kubectl's ordinary message", () => {
    const memory = parseAllDocuments(readFileSync(join(dir, "full-stack-demo_demo.yaml"), "utf8")).map(d => d.toJSON()).find(d => d?.kind === "KarsMemory");
    const r = apply(JSON.stringify(memory));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no matches for kind "KarsMemory" in version "kars.azure.com/v1alpha1"');
  });

  it("two of them reconcile to their children", async () => {
    const pick = sandboxes.filter(([n]) => /maf-quickstart|hermes-quickstart/.test(n));
    expect(pick).toHaveLength(2);
    for (const [, doc] of policies.filter(([n]) => /maf-quickstart|hermes-quickstart/.test(n))) k.ok(["apply", "-f", "-"], JSON.stringify(doc));
    for (const [, doc] of pick) k.ok(["apply", "-f", "-"], JSON.stringify(doc));
    for (const [, doc] of pick) {
      const name = doc.metadata!.name;
      await eventually(`${name} reconciled`, () => {
        const sb = k.json<{ metadata: { generation: number }; status?: { phase?: string; observedGeneration?: number } }>(["get", "karssandbox", "-n", doc.metadata!.namespace!, name]);
        return sb?.status?.observedGeneration === sb?.metadata.generation && sb?.status?.phase !== "Failed" && sb?.status?.phase !== undefined;
      }, 90_000);
      expect(k(["get", "deployment", "-n", `kars-${name}`, "agent"]).code).toBe(0);
      // Their InferencePolicy names the model the original way ({provider, deployment}); the router gets its name.
      const profile = await eventually(`${name}'s policy projected`, () => {
        const s = k.json<{ status?: { conditions?: { type: string; status: string }[] } }>(["get", "karssandbox", "-n", doc.metadata!.namespace!, name]);
        if (!s?.status?.conditions?.some(c => c.type === "PolicyLoaded" && c.status === "True")) return undefined;
        return JSON.parse(k.json<{ data: Record<string, string> }>(["get", "configmap", "-n", `kars-${name}`, "kars-router-profile"])!.data["profile.json"]!) as { inferencePolicy: unknown };
      }, 30_000);
      expect(profile.inferencePolicy).toMatchObject({ tokenBudget: { dailyTokens: 500000, perRequestTokens: 128000 }, modelPreference: { primary: "gpt-4.1", fallback: [] } });
    }
  });
});
