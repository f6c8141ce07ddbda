import type { KubernetesObject, V1Deployment } from "@kubernetes/client-node";
import type { InferencePolicy } from "../shared/inferencepolicy-types";
import type { KarsSandbox, KarsSandboxStatus } from "../shared/karssandbox-types";
import { parseReconcileConfig } from "./config";
import type { KubeApi } from "./kube-api";
import { observeDeployment, SandboxController } from "./sandbox-controller";

/** In-memory apiserver: objects by "apiVersion/kind/namespace/name". */
class FakeApi implements KubeApi {
  objects = new Map<string, KubernetesObject & Record<string, unknown>>();
  applied: string[] = [];
  failApply = 0;
  key = (apiVersion: string, kind: string, name: string, ns = "") => `${apiVersion}/${kind}/${ns}/${name}`;
  async apply(o: KubernetesObject) {
    if (this.failApply > 0) {
      this.failApply--;
      throw new Error("apply refused: conflict");
    }
    this.applied.push(`${o.kind}/${o.metadata!.name}`);
    const k = this.key(o.apiVersion!, o.kind!, o.metadata!.name!, o.metadata!.namespace);
    const before = this.objects.get(k) as { spec?: unknown; metadata?: { generation?: number } } | undefined;
    const generation = (before?.metadata?.generation ?? 0) + (JSON.stringify(before?.spec) === JSON.stringify((o as { spec?: unknown }).spec) ? 0 : 1);
    const stored = structuredClone(o) as KubernetesObject & Record<string, unknown>;
    const uid = (before?.metadata as { uid?: string } | undefined)?.uid ?? `uid-${++this.rv}`;
    stored.metadata = { ...stored.metadata, uid, resourceVersion: String(++this.rv), generation };
    this.objects.set(k, stored);
    return { uid, resourceVersion: stored.metadata!.resourceVersion, generation };
  }
  async get<T extends object>(apiVersion: string, kind: string, name: string, ns?: string) {
    return structuredClone(this.objects.get(this.key(apiVersion, kind, name, ns))) as T | undefined;
  }
  async delete(apiVersion: string, kind: string, name: string, ns?: string) {
    this.objects.delete(this.key(apiVersion, kind, name, ns));
    if (kind === "Namespace") for (const k of [...this.objects.keys()]) if (k.split("/").at(-2) === name) this.objects.delete(k);
  }
  /** resourceVersions, as the apiserver hands them out: one counter for every write. */
  rv = 100;
  async patchStatus(sb: KarsSandbox, status: KarsSandboxStatus) {
    const o = this.objects.get(this.key("kars.azure.com/v1alpha1", "KarsSandbox", sb.metadata.name, sb.metadata.namespace))!;
    o.status = status;
    o.metadata!.resourceVersion = String(++this.rv);
    return this.written(o);
  }
  written(o: KubernetesObject) {
    const m = o.metadata!;
    return { resourceVersion: m.resourceVersion, generation: m.generation, labels: m.labels, deletionTimestamp: m.deletionTimestamp as string | undefined };
  }
  async setFinalizers(sb: KarsSandbox, finalizers: string[]) {
    const k = this.key("kars.azure.com/v1alpha1", "KarsSandbox", sb.metadata.name, sb.metadata.namespace);
    const o = this.objects.get(k)!;
    o.metadata!.finalizers = finalizers;
    if (o.metadata!.deletionTimestamp && finalizers.length === 0) this.objects.delete(k);
    o.metadata!.resourceVersion = String(++this.rv);
    return this.written(o);
  }
  events: string[] = [];
  async recordEvent(sb: KarsSandbox, type: string, reason: string) {
    this.events.push(`${sb.metadata.name} ${type} ${reason}`);
  }
  async listSandboxes(ns?: string) {
    return structuredClone([...this.objects.values()].filter(o => o.kind === "KarsSandbox" && (ns === undefined || o.metadata!.namespace === ns))) as unknown as KarsSandbox[];
  }
  async listInferencePolicies(ns: string) {
    return structuredClone([...this.objects.values()].filter(o => o.kind === "InferencePolicy" && o.metadata!.namespace === ns)) as unknown as InferencePolicy[];
  }
  putPolicy(name: string, spec: InferencePolicy["spec"]) {
    this.objects.set(this.key("kars.azure.com/v1alpha1", "InferencePolicy", name, "team"), { apiVersion: "kars.azure.com/v1alpha1", kind: "InferencePolicy", metadata: { name, namespace: "team", generation: 1 }, spec } as never);
  }
  profile(name: string) {
    const cm = this.objects.get(this.key("v1", "ConfigMap", "kars-router-profile", `kars-${name}`)) as { data?: Record<string, string> } | undefined;
    return cm?.data?.["profile.json"] ? JSON.parse(cm.data["profile.json"]) : undefined;
  }
  sandbox = (name: string) => this.objects.get(this.key("kars.azure.com/v1alpha1", "KarsSandbox", name, "team")) as unknown as KarsSandbox | undefined;
  put(sb: Partial<KarsSandbox["spec"]>, name = "demo") {
    this.objects.set(this.key("kars.azure.com/v1alpha1", "KarsSandbox", name, "team"), {
      apiVersion: "kars.azure.com/v1alpha1", kind: "KarsSandbox",
      metadata: { name, namespace: "team", generation: 1 },
      spec: { runtime: { kind: "Hermes" }, inferenceRef: { name: "p" }, ...sb },
    } as never);
  }
}

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const cfg = parseReconcileConfig({});
const setup = () => {
  const api = new FakeApi();
  const c = new SandboxController(api, cfg, quiet, { now: () => new Date("2026-11-30T00:00:00Z") });
  return { api, c };
};
const settle = async (c: SandboxController) => {
  for (let i = 0; i < 5; i++) {
    await c.idle();
    await new Promise(r => setTimeout(r, 5));
  }
};

describe("SandboxController", () => {

  it("adds the finalizer, applies the children in order, and writes status for the generation", async () => {
    const { api, c } = setup();
    api.putPolicy("p", {});
    api.put({});
    c.enqueue("team", "demo");
    await settle(c);
    expect(api.sandbox("demo")!.metadata.finalizers).toEqual(["kars.azure.com/cleanup"]);
    expect(api.applied).toEqual(["Namespace/kars-demo", "ServiceAccount/agent", "NetworkPolicy/kars-sandbox", "ConfigMap/kars-router-profile", "Deployment/agent"]);
    expect(api.sandbox("demo")!.status).toMatchObject({ phase: "Provisioning", observedGeneration: 1, namespace: "kars-demo" });
    c.stop();
  });

  it("takes the events of its own finalizer and status writes for its own, and nobody else's", async () => {
    const { api, c } = setup();
    api.putPolicy("p", {});
    api.put({});
    const rv = () => (api.sandbox("demo")!.metadata as { resourceVersion?: string }).resourceVersion;
    expect(c.isOwnWrite("team", "demo", rv())).toBe(false);
    c.enqueue("team", "demo");
    await settle(c);
    // one pass: finalizer, children and status (no second pass for the finalizer's own event)
    expect(api.applied.filter(x => x.startsWith("Deployment/"))).toHaveLength(1);
    const written = rv();
    expect(c.isOwnWrite("team", "demo", written)).toBe(true);
    expect(c.isOwnWrite("team", "other", written)).toBe(false);
    expect(c.isOwnWrite("team", "demo", undefined)).toBe(false);
    api.sandbox("demo")!.metadata.labels = { team: "x" }; // someone else's write: a new resourceVersion
    (api.sandbox("demo")!.metadata as { resourceVersion?: string }).resourceVersion = String(++api.rv);
    expect(c.isOwnWrite("team", "demo", rv())).toBe(false);
    c.stop();
  });

  it("applies a child again only when it or the desired children changed", async () => {
    const { api, c } = setup();
    api.putPolicy("p", {});
    api.put({});
    const pass = async () => {
      api.applied = [];
      c.enqueue("team", "demo");
      await settle(c);
      return [...api.applied];
    };
    expect(await pass()).toHaveLength(5);
    expect(await pass()).toEqual([]); // nothing changed: nothing applied
    // the Deployment's rollout writes its status: a new resourceVersion, the same generation
    const dep = api.objects.get(api.key("apps/v1", "Deployment", "agent", "kars-demo"))!;
    dep.metadata!.resourceVersion = String(++api.rv);
    dep.status = { availableReplicas: 1, observedGeneration: 1 };
    expect(await pass()).toEqual([]);
    // someone edits the NetworkPolicy: only it is put back
    const np = api.objects.get(api.key("networking.k8s.io/v1", "NetworkPolicy", "kars-sandbox", "kars-demo"))!;
    (np as { spec: { egress: unknown[] } }).spec.egress = [{}];
    np.metadata!.resourceVersion = String(++api.rv);
    expect(await pass()).toEqual(["NetworkPolicy/kars-sandbox"]);
    // someone changes the Deployment's spec (generation moves), or deletes the ServiceAccount
    dep.metadata!.generation = (dep.metadata!.generation ?? 0) + 1;
    dep.metadata!.resourceVersion = String(++api.rv);
    await api.delete("v1", "ServiceAccount", "agent", "kars-demo");
    expect(await pass()).toEqual(["ServiceAccount/agent", "Deployment/agent"]);
    // someone deletes the Deployment and makes it again, kars' labels copied, at the same generation
    const copy = structuredClone(api.objects.get(api.key("apps/v1", "Deployment", "agent", "kars-demo"))!);
    copy.metadata = { ...copy.metadata, uid: "someone-elses", resourceVersion: String(++api.rv) };
    api.objects.set(api.key("apps/v1", "Deployment", "agent", "kars-demo"), copy);
    expect(await pass()).toEqual(["Deployment/agent"]);
    // the sandbox's spec changes: every child is applied
    api.sandbox("demo")!.spec.suspended = true;
    api.sandbox("demo")!.metadata.generation = 2;
    expect(await pass()).toHaveLength(5);
    c.stop();
  });

  it.each([
    ["its spec", (o: KarsSandbox) => void (o.metadata.generation = 2)],
    ["its labels", (o: KarsSandbox) => void (o.metadata.labels = { team: "b" })],
    ["its deletion", (o: KarsSandbox) => void (o.metadata.deletionTimestamp = "2026-12-01T00:00:00Z")],
  ])("does not take its status write for its own when %s changed between the pass's read and that write", async (_what, change) => {
    const { api, c } = setup();
    api.putPolicy("p", {});
    api.put({});
    const patch = api.patchStatus.bind(api);
    api.patchStatus = async (sb, status) => {
      change(api.sandbox("demo")!); // someone else's write lands first (no precondition on status)
      return patch(sb, status);
    };
    c.enqueue("team", "demo");
    await c.idle();
    expect(c.isOwnWrite("team", "demo", (api.sandbox("demo")!.metadata as { resourceVersion?: string }).resourceVersion)).toBe(false);
    c.stop();
  });

  it("stalls a BYO sandbox with an unsupported contract and creates no Deployment", async () => {
    const { api, c } = setup();
    api.put({ runtime: { kind: "BYO", byo: { image: "x", contractVersion: "v999" } } });
    c.enqueue("team", "demo");
    await settle(c);
    expect(api.applied).toEqual([]);
    expect(api.sandbox("demo")!.status!.conditions!.find(x => x.type === "Stalled")).toMatchObject({ status: "True", reason: "ByoContractUnsupported" });
    expect(api.events).toEqual(["demo Warning ByoContractUnsupported"]);
    c.enqueue("team", "demo");
    await settle(c);
    expect(api.events).toHaveLength(1);
    c.stop();
  });

  it("refuses to take over a namespace that belongs to another sandbox", async () => {
    const { api, c } = setup();
    api.objects.set(api.key("v1", "Namespace", "kars-demo"), { apiVersion: "v1", kind: "Namespace", metadata: { name: "kars-demo", labels: { "kars.azure.com/sandbox": "demo", "kars.azure.com/sandbox-namespace": "other-team" } } } as never);
    api.put({});
    c.enqueue("team", "demo");
    await settle(c);
    expect(api.applied).toEqual([]);
    expect(api.sandbox("demo")!.status!.conditions!.find(x => x.type === "Stalled")).toMatchObject({ status: "True", reason: "NamespaceConflict" });
    c.stop();
  });

  it("deletes the namespace on deletion, then releases the finalizer", async () => {
    const { api, c } = setup();
    api.put({});
    c.enqueue("team", "demo");
    await settle(c);
    api.sandbox("demo")!.metadata.deletionTimestamp = "2026-11-30T00:00:01Z";
    c.enqueue("team", "demo");
    await settle(c);
    expect(await api.get("v1", "Namespace", "kars-demo")).toBeUndefined();
    c.enqueue("team", "demo");
    await settle(c);
    expect(api.sandbox("demo")).toBeUndefined();
    c.stop();
  });

  it("retries a failed apply and records ApplyFailed meanwhile", async () => {
    const { api, c } = setup();
    api.put({ runtime: { kind: "Hermes" } });
    api.sandbox("demo")!.metadata.finalizers = ["kars.azure.com/cleanup"];
    api.failApply = 1;
    c.enqueue("team", "demo");
    await settle(c);
    expect(api.sandbox("demo")!.status!.conditions!.find(x => x.type === "Ready")).toMatchObject({ status: "False", reason: "ApplyFailed" });
    c.stop();
  });
});

describe("SandboxController: InferencePolicy and the tenant budget", () => {
  it("projects the named policy and splits the tenant budget; a third sandbox re-projects its siblings, a deletion gives the share back", async () => {
    const { api, c } = setup();
    api.putPolicy("p", { tokenBudget: { dailyTokens: 1000 }, tenantTokenBudget: { hourlyTokens: 1000, dailyTokens: 9000 } });
    api.put({}, "a");
    api.put({}, "b");
    c.enqueue("team", "a");
    c.enqueue("team", "b");
    await settle(c);
    expect(api.profile("a")).toMatchObject({ inferencePolicy: { tokenBudget: { dailyTokens: 1000 } }, tenantTokenBudget: { hourlyTokens: 500, dailyTokens: 4500 } });
    expect(api.profile("b").tenantTokenBudget).toEqual({ hourlyTokens: 500, dailyTokens: 4500 });
    expect(api.sandbox("a")!.status!.conditions!.find(x => x.type === "PolicyLoaded")).toMatchObject({ status: "True", reason: "PolicyLoaded" });

    api.put({}, "c");
    c.enqueue("team", "c"); // only the new one: its first reconcile re-queues its siblings
    await settle(c);
    for (const n of ["a", "b", "c"]) expect(api.profile(n).tenantTokenBudget).toEqual({ hourlyTokens: 333, dailyTokens: 3000 });

    api.sandbox("c")!.metadata.deletionTimestamp = "2026-11-30T00:00:01Z";
    c.enqueue("team", "c");
    await settle(c);
    // Terminating: still counted until it is gone (its router may still run).
    expect(api.profile("a").tenantTokenBudget).toEqual({ hourlyTokens: 333, dailyTokens: 3000 });
    c.enqueue("team", "c");
    await settle(c);
    expect(api.sandbox("c")).toBeUndefined();
    c.enqueue("team", "c"); // the watch's deletion event
    await settle(c);
    expect(api.profile("a").tenantTokenBudget).toEqual({ hourlyTokens: 500, dailyTokens: 4500 });
    c.stop();
  });

  it.each([
    ["no policy declares a tenant budget: siblings are neither listed nor re-reconciled", { tokenBudget: { dailyTokens: 1000 } }, 0, 1],
    ["a tenant budget: each new sandbox lists and re-reconciles its siblings", { tenantTokenBudget: { dailyTokens: 9000 } }, 2, 3],
  ])("%s", async (_what, spec: InferencePolicy["spec"], listsPerNew: number, reconcilesPerNew: number) => {
    const { api, c } = setup();
    api.putPolicy("p", spec);
    let lists = 0;
    const list = api.listSandboxes.bind(api);
    api.listSandboxes = async (ns?: string) => (lists++, list(ns));
    for (const n of ["a", "b"]) {
      api.put({}, n);
      c.enqueue("team", n);
      await settle(c);
    }
    api.applied = [];
    lists = 0;
    api.put({}, "c");
    c.enqueue("team", "c");
    await settle(c);
    // per reconcile: a list for the split (tenant budget only); per new sandbox: one more for its siblings
    expect(lists).toBe(listsPerNew === 0 ? 0 : reconcilesPerNew + 1);
    expect(api.applied.filter(x => x.startsWith("Deployment/"))).toHaveLength(reconcilesPerNew);
    expect(api.profile("c").tenantTokenBudget).toEqual(spec.tenantTokenBudget ? { dailyTokens: 3000 } : undefined);
    c.stop();
  });

  it("a missing policy fails closed: zero budget, PolicyLoaded=False, a Warning Event; creating it re-projects the sandbox", async () => {
    const { api, c } = setup();
    api.put({}, "a");
    c.enqueue("team", "a");
    await settle(c);
    expect(api.profile("a").inferencePolicy).toEqual({ tokenBudget: { hourlyTokens: 0, dailyTokens: 0, monthlyTokens: 0 } });
    expect(api.sandbox("a")!.status).toMatchObject({ phase: "Pending" });
    expect(api.sandbox("a")!.status!.conditions!.find(x => x.type === "PolicyLoaded")).toMatchObject({ status: "False", reason: "InferencePolicyNotFound" });
    expect(api.events).toEqual(["a Warning InferencePolicyNotFound"]);
    api.putPolicy("p", { tokenBudget: { hourlyTokens: 10 } });
    await c.enqueueForPolicy({ metadata: { name: "p", namespace: "team" }, spec: { tokenBudget: { hourlyTokens: 10 } } });
    await settle(c);
    expect(api.profile("a").inferencePolicy).toEqual({ tokenBudget: { hourlyTokens: 10 } });
    expect(api.sandbox("a")!.status!.conditions!.find(x => x.type === "PolicyLoaded")).toMatchObject({ status: "True" });
    c.stop();
  });
});

describe("observeDeployment", () => {
  const dep = (status: V1Deployment["status"], generation = 1): V1Deployment => ({ metadata: { generation }, status });
  it.each([
    ["missing", undefined, { kind: "applied", deploymentReady: false }],
    ["available", dep({ availableReplicas: 1, observedGeneration: 1 }), { kind: "applied", deploymentReady: true }],
    ["available but for an older generation", dep({ availableReplicas: 1, observedGeneration: 1 }, 2), { kind: "applied", deploymentReady: false }],
    ["pods refused by admission", dep({ conditions: [{ type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: 'admission webhook "x" denied the request: spec.hostPID: must be false' }] }), { kind: "admissionDenied", message: expect.stringContaining("spec.hostPID: must be false") }],
    ["a quota failure is not an admission denial", dep({ conditions: [{ type: "ReplicaFailure", status: "True", reason: "FailedCreate", message: "exceeded quota" }] }), { kind: "applied", deploymentReady: false }],
  ])("%s", (_t, d, want) => {
    expect(observeDeployment(d, false, "kars-demo")).toMatchObject(want);
  });
});
