import type { V1Namespace } from "@kubernetes/client-node";
import type { KarsSandboxSpec } from "../shared/karssandbox-types";
import { ignoredFieldWarnings } from "./ignored-fields";
import { isSandboxNamespace, sandboxContextFromNamespace } from "./sandbox-context";

const ns = (labels: Record<string, string>, annotations: Record<string, string> = {}): V1Namespace => ({ metadata: { name: "kars-x", labels, annotations } });

describe("sandboxContextFromNamespace", () => {
  it.each([
    ["reads isolation and writable paths", ns({ "kars.azure.com/isolation": "standard", "kars.azure.com/sandbox": "x" }, { "kars.azure.com/writable-paths": '["/data"]' }), { sandbox: "x", isolation: "standard", writablePaths: ["/data"] }],
    ["an unknown isolation fails closed to enhanced", ns({ "kars.azure.com/isolation": "none" }), { sandbox: "kars-x", isolation: "enhanced", writablePaths: ["/sandbox", "/tmp"] }],
    ["malformed writable paths keep the defaults", ns({}, { "kars.azure.com/writable-paths": "{not json" }), { sandbox: "kars-x", isolation: "enhanced", writablePaths: ["/sandbox", "/tmp"] }],
    ["the root filesystem is never a writable path", ns({}, { "kars.azure.com/writable-paths": '["/"]' }), { sandbox: "kars-x", isolation: "enhanced", writablePaths: ["/sandbox", "/tmp"] }],
    ["nor is // or a system directory", ns({}, { "kars.azure.com/writable-paths": '["//","/etc","/sandbox"]' }), { sandbox: "kars-x", isolation: "enhanced", writablePaths: ["/sandbox", "/tmp"] }],
    ["paths are normalised", ns({}, { "kars.azure.com/writable-paths": '["/data//x/", "/work/./y"]' }), { sandbox: "kars-x", isolation: "enhanced", writablePaths: ["/data/x", "/work/y"] }],
  ])("%s", (_t, n, want) => {
    expect(sandboxContextFromNamespace(n)).toEqual(want);
  });
  it.each([
    [ns({ "kars.azure.com/role": "sandbox" }), true],
    [ns({ "kars.azure.com/role": "other" }), false],
    [undefined, false],
  ])("isSandboxNamespace(%j) = %s", (n, want) => {
    expect(isSandboxNamespace(n)).toBe(want);
  });
});

describe("ignoredFieldWarnings", () => {
  const base: KarsSandboxSpec = { runtime: { kind: "Hermes" }, inferenceRef: { name: "p" } };
  it.each([
    ["none for a kars-native spec", base, []],
    ["azureServices", { ...base, azureServices: [{ service: "ai-foundry" }] }, ["spec.azureServices: kept but not acted on by kars"]],
    ["several, in a stable order", { ...base, pythonVersion: "3.12", agent: {}, governance: { registryMode: "x" } as KarsSandboxSpec["governance"] }, [
      "spec.agent: kept but not acted on by kars", "spec.pythonVersion: kept but not acted on by kars", "spec.governance.registryMode: kept but not acted on by kars",
    ]],
    ["undefined spec", undefined, []],
  ])("%s", (_t, spec, want) => {
    expect(ignoredFieldWarnings(spec as KarsSandboxSpec | undefined)).toEqual(want);
  });
});
