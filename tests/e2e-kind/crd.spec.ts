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

describe("the original kars examples (../shared/conformance/kars-examples)", () => {
  const dir = join(__dirname, "..", "..", "..", "shared", "conformance", "kars-examples");
  const sandboxes = readdirSync(dir).flatMap(f =>
    parseAllDocuments(readFileSync(join(dir, f), "utf8"))
      .map(d => d.toJSON() as { kind?: string; metadata?: { name: string; namespace?: string } } | null)
      .filter(d => d?.kind === "KarsSandbox")
      .map(d => [`${f}: ${d!.metadata!.name}`, d!] as const),
  );

  beforeAll(() => {
    for (const ns of new Set(sandboxes.map(([, d]) => d.metadata!.namespace ?? "default"))) k(["create", "namespace", ns]);
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
    for (const [, doc] of pick) k.ok(["apply", "-f", "-"], JSON.stringify(doc));
    for (const [, doc] of pick) {
      const name = doc.metadata!.name;
      await eventually(`${name} reconciled`, () => {
        const sb = k.json<{ metadata: { generation: number }; status?: { phase?: string; observedGeneration?: number } }>(["get", "karssandbox", "-n", doc.metadata!.namespace!, name]);
        return sb?.status?.observedGeneration === sb?.metadata.generation && sb?.status?.phase !== "Failed" && sb?.status?.phase !== undefined;
      }, 90_000);
      expect(k(["get", "deployment", "-n", `kars-${name}`, "agent"]).code).toBe(0);
      expect(k(["get", "configmap", "-n", `kars-${name}`, "kars-router-profile"]).code).toBe(0);
    }
  });
});
