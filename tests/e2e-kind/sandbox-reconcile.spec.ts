/**
 * A user applies KarsSandboxes with kubectl; kars reconciles them into children and status, and the
 * sandbox's pods are admitted hardened, with the guards injected (issue 2, DESIGN §5, §2).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import type { KarsSandbox } from "../../capabilities/shared/karssandbox-types";
import { e2e, eventually, sandboxYaml } from "./helpers";

const { stack, k } = e2e();
// The local provider's kwok node runs pods to Running, so the sandbox becomes Ready; on kind the
// placeholder runtime images cannot be pulled, so the sandbox stays Provisioning (Reconciling=True).
const expectedPhase = stack.cluster.provider === "local" ? "Ready" : "Provisioning";
const examples = join(__dirname, "..", "..", "manifests", "examples");
type Obj = { metadata: { name: string; labels?: Record<string, string>; generation?: number; deletionTimestamp?: string }; [k: string]: unknown };

const sandbox = (ns: string, name: string) => k.json<KarsSandbox>(["get", "karssandbox", "-n", ns, name]);
const settled = (ns: string, name: string, phase: string) =>
  eventually(`${ns}/${name} phase ${phase} at its generation`, () => {
    const sb = sandbox(ns, name);
    return sb?.status?.phase === phase && sb.status.observedGeneration === sb.metadata.generation ? sb : undefined;
  }, 90_000);

beforeAll(() => {
  k.ok(["apply", "-f", join(examples, "00-namespace.yaml")]);
});

describe("an example KarsSandbox applied with kubectl", () => {
  beforeAll(() => {
    k.ok(["apply", "-f", join(examples, "01-inference-policies.yaml")]);
    k.ok(["apply", "-f", join(examples, "openai-agents.yaml")]);
  });

  it(`reaches phase ${expectedPhase} with observedGeneration = generation and kstatus conditions`, async () => {
    const sb = await settled("kars-system", "research-agent", expectedPhase);
    expect(sb.status!.conditions!.find(c => c.type === "Ready")!.status).toBe(expectedPhase === "Ready" ? "True" : "False");
    const types = sb.status!.conditions!.map(c => c.type);
    expect(types).toEqual(expect.arrayContaining(["Ready", "Reconciling", "Stalled"]));
    expect(sb.status!.conditions!.find(c => c.type === "Stalled")!.status).toBe("False");
    expect(sb.status!.namespace).toBe("kars-research-agent");
    expect(sb.metadata.finalizers).toContain("kars.azure.com/cleanup");
    expect(k.ok(["get", "karssandbox", "-n", "kars-system", "research-agent"])).toMatch(new RegExp(`research-agent\\s+OpenAIAgents\\s+${expectedPhase}\\s+${expectedPhase === "Ready" ? "True" : "False"}`));
  });

  const condition = (type: string) => sandbox("kars-system", "research-agent")!.status!.conditions!.find(c => c.type === type);

  it("creates every child with the sandbox labels and the locked-down fields", () => {
    const ns = k.json<Obj>(["get", "namespace", "kars-research-agent"])!;
    expect(ns.metadata.labels).toMatchObject({ "kars.azure.com/role": "sandbox", "kars.azure.com/sandbox": "research-agent", "kars.azure.com/isolation": "enhanced" });
    const sa = k.json<Obj & { automountServiceAccountToken?: boolean }>(["get", "serviceaccount", "-n", "kars-research-agent", "agent"])!;
    expect(sa.automountServiceAccountToken).toBe(false);
    const np = k.json<Obj & { spec: { policyTypes: string[]; egress: { ports: { port: number }[] }[] } }>(["get", "networkpolicy", "-n", "kars-research-agent", "kars-sandbox"])!;
    expect(np.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(np.spec.egress[0]!.ports.map(p => p.port)).toEqual([53, 53]);
    const cm = k.json<Obj & { data: Record<string, string> }>(["get", "configmap", "-n", "kars-research-agent", "kars-router-profile"])!;
    expect(JSON.parse(cm.data["profile.json"]!)).toMatchObject({ sandbox: "research-agent", tenant: "kars-system", egressMode: "Strict", allowedEndpoints: [{ host: "api.github.com", port: 443 }, { host: "pypi.org", port: 443 }] });
    // The example InferencePolicy research-agent-inference, as the router reads it.
    expect(JSON.parse(cm.data["profile.json"]!).inferencePolicy).toEqual({
      appliesTo: { sandboxName: "research-agent", action: "*" },
      tokenBudget: { perRequestTokens: 4000, hourlyTokens: 50000, dailyTokens: 200000, monthlyTokens: 2000000 },
      contentSafety: { hate: "Low", selfHarm: "Low", sexual: "Low", violence: "Low", requirePromptShields: false },
      modelPreference: { primary: "gpt-4.1", fallback: [] },
    });
    expect(condition("PolicyLoaded")).toMatchObject({ status: "True", reason: "PolicyLoaded" });
    const dep = k.json<Obj & { spec: { replicas: number; template: { spec: { containers: { image: string }[] } } } }>(["get", "deployment", "-n", "kars-research-agent", "agent"])!;
    expect(dep.spec.replicas).toBe(1);
    expect(dep.spec.template.spec.containers[0]!.image).toBe("ghcr.io/azure/kars/runtime-openai-agents:0.1.0");
    for (const o of [ns, sa, np, cm, dep]) expect(o.metadata.labels).toMatchObject({ "kars.azure.com/sandbox": "research-agent", "kars.azure.com/sandbox-namespace": "kars-system" });
  });

  it("the pod the ReplicaSet controller creates is stored with egress-guard first, the router sidecar, hardened", async () => {
    const pod = await eventually("the agent pod", () => k.json<{ items: V1Pod[] }>(["get", "pods", "-n", "kars-research-agent", "-l", "app.kubernetes.io/name=kars-agent"])?.items[0], 60_000);
    expect(pod.spec!.initContainers![0]!.name).toBe("egress-guard");
    expect(pod.spec!.initContainers![0]!.securityContext).toMatchObject({ runAsUser: 0, capabilities: { add: ["NET_ADMIN", "NET_RAW"], drop: ["ALL"] }, readOnlyRootFilesystem: true });
    expect(pod.spec!.containers.map(c => c.name)).toEqual(["agent", "inference-router"]);
    expect(pod.spec!.containers[1]!.securityContext).toMatchObject({ runAsUser: 1001, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(pod.spec!.securityContext).toMatchObject({ runAsNonRoot: true, fsGroup: 1000, seccompProfile: { type: "Localhost", localhostProfile: "profiles/kars-strict.json" } });
    expect(pod.spec!.containers[0]!.volumeMounts!.map(m => m.mountPath)).toEqual(expect.arrayContaining(["/sandbox", "/tmp"]));
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
  });

  it("settles: with nothing changing, no child and not the sandbox is written again (no reconcile loop against the apiserver)", async () => {
    const versions = () =>
      [["karssandbox", "-n", "kars-system", "research-agent"], ["namespace", "kars-research-agent"], ["serviceaccount", "-n", "kars-research-agent", "agent"],
        ["networkpolicy", "-n", "kars-research-agent", "kars-sandbox"], ["configmap", "-n", "kars-research-agent", "kars-router-profile"], ["deployment", "-n", "kars-research-agent", "agent"]]
        .map(args => `${args.at(-1)} ${k.ok(["get", ...args, "-o", "jsonpath={.metadata.resourceVersion}"])}`);
    // the Deployment's status settles once its pod runs; from then on every version must stay
    await eventually("the agent Deployment available", () => k.json<{ status?: { availableReplicas?: number } }>(["get", "deployment", "-n", "kars-research-agent", "agent"])?.status?.availableReplicas === (expectedPhase === "Ready" ? 1 : undefined), 60_000);
    await new Promise(r => setTimeout(r, 1000));
    const before = versions();
    await new Promise(r => setTimeout(r, 5000)); // several resyncs' worth of watch events, were there a loop
    expect(versions()).toEqual(before);
  });

  it("corrects drift at once: a lowered isolation label and a deleted NetworkPolicy come back", async () => {
    k.ok(["label", "namespace", "kars-research-agent", "kars.azure.com/isolation=standard", "--overwrite"]);
    k.ok(["delete", "networkpolicy", "-n", "kars-research-agent", "kars-sandbox"]);
    await eventually("isolation label restored", () => k.json<Obj>(["get", "namespace", "kars-research-agent"])?.metadata.labels?.["kars.azure.com/isolation"] === "enhanced", 30_000);
    await eventually("NetworkPolicy recreated", () => k(["get", "networkpolicy", "-n", "kars-research-agent", "kars-sandbox"]).code === 0, 30_000);
  });

  it("editing the spec updates the children (suspend → replicas 0; endpoints → router profile)", async () => {
    const patch = JSON.stringify({ spec: { suspended: true, networkPolicy: { allowedEndpoints: [{ host: "example.org", port: 8443 }] } } });
    k.ok(["patch", "karssandbox", "-n", "kars-system", "research-agent", "--type", "merge", "-p", patch]);
    await eventually("replicas 0", () => k.json<{ spec: { replicas: number } }>(["get", "deployment", "-n", "kars-research-agent", "agent"])?.spec.replicas === 0);
    await eventually("profile updated", () => {
      const cm = k.json<{ data: Record<string, string> }>(["get", "configmap", "-n", "kars-research-agent", "kars-router-profile"]);
      return JSON.parse(cm!.data["profile.json"]!).allowedEndpoints[0]?.host === "example.org";
    });
    const np = k.json<{ spec: { egress: { ports: { port: number }[] }[] } }>(["get", "networkpolicy", "-n", "kars-research-agent", "kars-sandbox"])!;
    expect(np.spec.egress[1]!.ports.map(p => p.port)).toEqual([443, 8443]);
    await settled("kars-system", "research-agent", "Suspended");
  });

  it("deleting the KarsSandbox removes its children and then the object", async () => {
    k.ok(["delete", "karssandbox", "-n", "kars-system", "research-agent", "--wait=false"]);
    await eventually("namespace gone", () => k(["get", "namespace", "kars-research-agent"]).code !== 0, 120_000);
    await eventually("KarsSandbox gone", () => sandbox("kars-system", "research-agent") === undefined, 30_000);
  });
});

describe("InferencePolicy → router profile, and a tenant budget split across a namespace's sandboxes", () => {
  const ns = "tenant-split";
  const profile = (name: string) => {
    const cm = k.json<{ data: Record<string, string> }>(["get", "configmap", "-n", `kars-${name}`, "kars-router-profile"]);
    return cm?.data["profile.json"] ? (JSON.parse(cm.data["profile.json"]) as { inferencePolicy: Record<string, unknown>; tenantTokenBudget?: Record<string, number> }) : undefined;
  };
  const policy = (tenantHourly: number) => `apiVersion: kars.azure.com/v1alpha1
kind: InferencePolicy
metadata:
  name: shared
  namespace: ${ns}
spec:
  tokenBudget: {perRequestTokens: 1000, hourlyTokens: 7000, dailyTokens: 70000}
  tenantTokenBudget: {hourlyTokens: ${tenantHourly}, dailyTokens: 100001}
`;
  const split = (name: string) => sandboxYaml(name, ns, "runtime:\n  kind: Hermes\ninferenceRef:\n  name: shared");

  beforeAll(() => {
    k.ok(["create", "namespace", ns]);
    k.ok(["apply", "-f", "-"], policy(10001));
  });

  it("two sandboxes each get the policy's budget and floor(total / 2) of the tenant budget", async () => {
    k.ok(["apply", "-f", "-"], split("split-a") + "---\n" + split("split-b"));
    for (const name of ["split-a", "split-b"]) {
      const p = await eventually(`${name}'s profile with a share of 2`, () => {
        const p = profile(name);
        return p?.tenantTokenBudget?.hourlyTokens === 5000 ? p : undefined;
      }, 60_000);
      expect(p.inferencePolicy).toEqual({ tokenBudget: { perRequestTokens: 1000, hourlyTokens: 7000, dailyTokens: 70000 } });
      expect(p.tenantTokenBudget).toEqual({ hourlyTokens: 5000, dailyTokens: 50000 });
    }
  });

  it("editing the InferencePolicy re-projects both profiles", async () => {
    k.ok(["apply", "-f", "-"], policy(3001));
    for (const name of ["split-a", "split-b"]) {
      await eventually(`${name}'s share of the new total`, () => profile(name)?.tenantTokenBudget?.hourlyTokens === 1500, 30_000);
    }
  });

  it("deleting one sandbox gives the whole tenant budget to the other", async () => {
    k.ok(["delete", "karssandbox", "-n", ns, "split-b", "--wait=false"]);
    await eventually("split-b gone", () => sandbox(ns, "split-b") === undefined, 120_000);
    await eventually("split-a's share of 1", () => profile("split-a")?.tenantTokenBudget?.hourlyTokens === 3001, 30_000);
  });

  it("a sandbox whose InferencePolicy does not exist fails closed: PolicyLoaded=False, a zero budget, phase Pending", async () => {
    k.ok(["apply", "-f", "-"], sandboxYaml("no-policy", ns, "runtime:\n  kind: Hermes\ninferenceRef:\n  name: missing"));
    const s = await eventually("no-policy reconciled", () => {
      const s = sandbox(ns, "no-policy");
      return s?.status?.conditions?.some(c => c.type === "PolicyLoaded") ? s : undefined;
    }, 60_000);
    expect(s.status!.phase).toBe("Pending");
    expect(s.status!.conditions!.find(c => c.type === "PolicyLoaded")).toMatchObject({
      status: "False",
      reason: "InferencePolicyNotFound",
      message: `InferencePolicy ${ns}/missing (spec.inferenceRef.name) does not exist: create it; until then its router refuses every model call (token budget 0)`,
    });
    expect(profile("no-policy")!.inferencePolicy).toEqual({ tokenBudget: { hourlyTokens: 0, dailyTokens: 0, monthlyTokens: 0 } });
    // It still counts in the tenant split.
    await eventually("split-a's share of 2 again", () => profile("split-a")?.tenantTokenBudget?.hourlyTokens === 1500, 30_000);
  });

  afterAll(() => {
    k(["delete", "karssandbox", "-n", ns, "--all", "--wait=false"]);
  });
});

describe("BYO strict mode", () => {
  it("an unsupported contract stalls the sandbox with the reason, and no Deployment is created", async () => {
    const file = join(__dirname, "..", "..", "..", "shared", "conformance", "kars-examples", "byo-quickstart_k8s_clawsandbox-strict-demo.yaml");
    const docs = readFileSync(file, "utf8").split(/^---$/m).filter(d => /kind:\s*KarsSandbox/.test(d));
    k.ok(["apply", "-f", "-"], docs.join("\n---\n"));
    const sb = await settled("kars-system", "byo-strict-demo", "Failed");
    const stalled = sb.status!.conditions!.find(c => c.type === "Stalled")!;
    expect(stalled).toMatchObject({ status: "True", reason: "ByoContractUnsupported" });
    expect(stalled.message).toContain("spec.runtime.byo.contractVersion: v999");
    expect(k(["get", "deployment", "-n", "kars-byo-strict-demo", "agent"]).code).not.toBe(0);
    const events = await eventually("a Warning Event", () => {
      const out = k.ok(["get", "events", "-n", "kars-system", "--field-selector", "involvedObject.name=byo-strict-demo,type=Warning"]);
      return out.includes("ByoContractUnsupported") ? out : undefined;
    }, 30_000);
    expect(events).toContain("spec.runtime.byo.contractVersion: v999");
    k.ok(["delete", "karssandbox", "-n", "kars-system", "byo-strict-demo"]);
  });
});

describe("a sandbox whose pods admission refuses", () => {
  it("reports AdmissionDenied with the webhook's message (Ready=False, Stalled=True)", async () => {
    // kars' own template is always hardened, so the refusal comes from a container someone else adds
    // to the Deployment (as a careless GitOps patch or a compromised CI would): its pods are refused.
    k.ok(["apply", "-f", "-"], sandboxYaml("denied-agent", "kars-system", `runtime:
  kind: BYO
  byo:
    image: ghcr.io/example/agent@sha256:${"c".repeat(64)}
inferenceRef:
  name: p
sandbox:
  isolation: standard`));
    await eventually("namespace", () => k(["get", "namespace", "kars-denied-agent"]).code === 0);
    k.ok(["patch", "deployment", "-n", "kars-denied-agent", "agent", "--type", "json", "-p",
      JSON.stringify([{ op: "add", path: "/spec/template/spec/containers/-", value: { name: "miner", image: "busybox", securityContext: { privileged: true } } }])]);
    const sb = await eventually("AdmissionDenied", () => {
      const s = sandbox("kars-system", "denied-agent");
      return s?.status?.conditions?.find(c => c.type === "AdmissionDenied" && c.status === "True") ? s : undefined;
    }, 90_000);
    const denied = sb.status!.conditions!.find(c => c.type === "AdmissionDenied")!;
    expect(denied.message).toContain("securityContext.privileged: must be false (kars sandbox posture)");
    expect(sb.status!.conditions!.find(c => c.type === "Stalled")!.status).toBe("True");
    k.ok(["delete", "karssandbox", "-n", "kars-system", "denied-agent", "--wait=false"]);
  });
});
