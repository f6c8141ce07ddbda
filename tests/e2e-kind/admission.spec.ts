/**
 * What a kubectl user sees from sandbox admission on a real apiserver (issue 2, DESIGN §4): the
 * refusal names the field and the rule; namespaces outside the sandbox scope are untouched, even
 * while kars is down; sandbox namespaces fail closed while kars is down.
 */
import { e2e, eventually, restartController, stopController } from "./helpers";

const { stack, k } = e2e();

const privilegedPod = (ns: string, name = "priv") => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  containers:
  - name: shell
    image: busybox
    securityContext:
      privileged: true
`;

beforeAll(async () => {
  k.ok(["apply", "-f", "-"], `apiVersion: v1
kind: Namespace
metadata:
  name: kars-adm-sandbox
  labels:
    kars.azure.com/role: sandbox
    kars.azure.com/sandbox: adm
    kars.azure.com/isolation: standard
---
apiVersion: v1
kind: Namespace
metadata:
  name: plain-apps
`);
  await eventually("default ServiceAccounts", () => k(["get", "sa", "default", "-n", "plain-apps"]).code === 0 && k(["get", "sa", "default", "-n", "kars-adm-sandbox"]).code === 0);
});

describe("kubectl apply of a privileged pod", () => {
  it("into a sandbox namespace fails; stderr names the field path and the rule", () => {
    const r = k(["apply", "-f", "-"], privilegedPod("kars-adm-sandbox"));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("admission webhook \"pods.sandbox.validate.kars.azure.com\" denied the request");
    expect(r.stderr).toContain("spec.containers[0].securityContext.privileged: must be false (kars sandbox posture)");
  });

  it("names every violation in one message", () => {
    const r = k(["run", "multi", "-n", "kars-adm-sandbox", "--image", "busybox", "--overrides",
      JSON.stringify({ spec: { hostNetwork: true, containers: [{ name: "multi", image: "busybox", securityContext: { privileged: true, runAsUser: 0, readOnlyRootFilesystem: false } }] } })]);
    expect(r.code).not.toBe(0);
    for (const s of [
      "spec.hostNetwork: must be false",
      "spec.containers[0].securityContext.privileged: must be false",
      "spec.containers[0].securityContext.runAsUser: must not be 0 (root)",
      "spec.containers[0].securityContext.readOnlyRootFilesystem: must be true",
    ]) expect(r.stderr).toContain(s);
  });

  it("into an unlabelled namespace is admitted untouched", () => {
    k.ok(["apply", "-f", "-"], privilegedPod("plain-apps"));
    const pod = k.json<{ spec: { initContainers?: unknown[]; containers: { name: string }[] } }>(["get", "pod", "-n", "plain-apps", "priv"])!;
    expect(pod.spec.initContainers).toBeUndefined();
    expect(pod.spec.containers.map(c => c.name)).toEqual(["shell"]);
  });

  it("a plain hardened-enough pod in the sandbox namespace is admitted with the guards injected", () => {
    k.ok(["run", "ok", "-n", "kars-adm-sandbox", "--image", "busybox"]);
    const pod = k.json<{ spec: { initContainers: { name: string }[]; containers: { name: string }[] } }>(["get", "pod", "-n", "kars-adm-sandbox", "ok"])!;
    expect(pod.spec.initContainers[0]!.name).toBe("egress-guard");
    expect(pod.spec.containers.map(c => c.name)).toEqual(["ok", "inference-router"]);
  });

  it("a container named like the router but with another spec is refused", () => {
    const r = k(["run", "fake", "-n", "kars-adm-sandbox", "--image", "busybox", "--overrides",
      JSON.stringify({ spec: { containers: [{ name: "inference-router", image: "evil.example/router" }] } })]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.containers[0].name: inference-router is reserved for the injected router and this container differs from it (kars reserved container)");
  });
});

describe("exec, attach, port-forward and the apiserver's pod proxy", () => {
  it("are refused in a sandbox namespace by the in-apiserver policy, naming the rule", async () => {
    await eventually("pod ok", () => k(["get", "pod", "-n", "kars-adm-sandbox", "ok"]).code === 0);
    for (const args of [["exec", "-n", "kars-adm-sandbox", "ok", "-c", "ok", "--", "id"], ["attach", "-n", "kars-adm-sandbox", "ok", "-c", "ok"]]) {
      const r = k(args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/pods\/(exec|attach) is not allowed in a kars sandbox namespace \(kars sandbox posture\)/);
    }
    // the apiserver's proxy to a pod's ports would go around the NetworkPolicy's ingress deny
    const proxy = k(["get", "--raw", "/api/v1/namespaces/kars-adm-sandbox/pods/ok:8080/proxy/"]);
    expect(proxy.code).not.toBe(0);
    expect(proxy.stderr).toContain("pods/proxy is not allowed in a kars sandbox namespace (kars sandbox posture)");
  });

  it("are not refused by kars in an unlabelled namespace", () => {
    const r = k(["exec", "-n", "plain-apps", "priv", "--", "id"]);
    expect(r.stderr).not.toContain("kars sandbox");
  });
});

describe("with the kars process stopped", () => {
  beforeAll(async () => {
    await stopController(stack);
  });
  afterAll(async () => {
    await restartController(stack);
  });

  it("pods in unlabelled namespaces still create", () => {
    k.ok(["run", "while-down", "-n", "plain-apps", "--image", "busybox"]);
    expect(k.json(["get", "pod", "-n", "plain-apps", "while-down"])).toBeDefined();
  });

  it("pods in sandbox namespaces are refused (fail closed)", () => {
    const r = k(["run", "while-down", "-n", "kars-adm-sandbox", "--image", "busybox"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/failed calling webhook "pods\.sandbox\.(mutate|validate)\.kars\.azure\.com"/);
  });
});

describe("after kars restarts", () => {
  it("sandbox pods are admitted again", async () => {
    await eventually("admission back", () => k(["run", "after-restart", "-n", "kars-adm-sandbox", "--image", "busybox"]).code === 0, 30_000);
  });
});
