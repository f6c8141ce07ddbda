/**
 * The kars controller's RBAC (manifests/rbac) on a real apiserver. Every e2e spec already runs the
 * controller as the ServiceAccount those manifests make (stack.ts controllerIdentity), so what it
 * needs is shown by the other specs passing; this one shows what it is refused, as
 * `kubectl auth can-i` with the controller's own credentials answers it.
 */
import { controllerKubeconfig } from "./stack";
import { kubectl } from "./kubectl";
import { e2e, eventually, sandboxYaml } from "./helpers";

const { stack, k } = e2e();
const asController = kubectl(stack.cluster.kubectlBin, controllerKubeconfig(stack.dir));
const canI = (args: string[]) => asController(["auth", "can-i", ...args]).stdout.trim();

/** `args` as the controller, a server-side dry run (admission runs in full, nothing is stored): refused by `policy` with `message`. */
function refusedByPolicy(args: string[], stdin: string | undefined, policy: string, message: string): void {
  const r = asController([...args, "--dry-run=server"], stdin);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(`ValidatingAdmissionPolicy '${policy}'`);
  expect(r.stderr).toContain(message);
}

it("the controller authenticates as pepr-system/kars-controller, not as the cluster admin", () => {
  expect(asController.ok(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])).toBe("system:serviceaccount:pepr-system:kars-controller");
});

describe("what reconcile and admission need", () => {
  it.each([
    [["watch", "karssandboxes.kars.azure.com", "-A"]],
    [["patch", "karssandboxes.kars.azure.com", "--subresource=status", "-n", "any"]],
    [["patch", "karssandboxes.kars.azure.com", "-n", "any"]], // its finalizer (RBAC cannot narrow a patch to one field)
    [["list", "inferencepolicies.kars.azure.com", "-n", "any"]],
    [["watch", "karsimagepolicies.kars.azure.com"]],
    [["create", "namespaces"]],
    [["delete", "namespaces"]],
    [["patch", "deployments.apps", "-n", "kars-any"]],
    [["patch", "networkpolicies.networking.k8s.io", "-n", "kars-any"]],
    [["patch", "configmaps", "-n", "kars-any"]],
    [["patch", "serviceaccounts", "-n", "kars-any"]],
    [["create", "events", "-n", "any"]],
    [["patch", "peprstores.pepr.dev", "-n", "pepr-system"]],
  ])("can %j", args => {
    expect(canI(args)).toBe("yes");
  });
});

describe("what it is refused", () => {
  it.each([
    ["read a Secret anywhere", ["get", "secrets", "-A"]],
    ["list Secrets in a sandbox namespace", ["list", "secrets", "-n", "kars-any"]],
    ["create a Pod directly", ["create", "pods", "-n", "kars-any"]],
    ["exec into a Pod", ["create", "pods", "--subresource=exec", "-n", "kars-any"]],
    ["mint ServiceAccount tokens", ["create", "serviceaccounts", "--subresource=token", "-n", "kars-any"]],
    ["grant itself more (ClusterRoleBindings)", ["create", "clusterrolebindings"]],
    ["bind a ClusterRole", ["bind", "clusterroles"]],
    ["escalate a Role", ["escalate", "roles", "-n", "kars-any"]],
    ["create RoleBindings", ["create", "rolebindings", "-n", "kars-any"]],
    ["impersonate users", ["impersonate", "users"]],
    ["change the webhooks", ["patch", "mutatingwebhookconfigurations"]],
    ["delete the ValidatingAdmissionPolicies", ["delete", "validatingadmissionpolicies"]],
    ["change CRDs", ["patch", "customresourcedefinitions"]],
    ["delete a KarsSandbox", ["delete", "karssandboxes.kars.azure.com", "-n", "any"]],
    ["replace a KarsSandbox (update)", ["update", "karssandboxes.kars.azure.com", "-n", "any"]],
    ["replace a KarsSandbox's status (update)", ["update", "karssandboxes.kars.azure.com", "--subresource=status", "-n", "any"]],
    ["write a Deployment's scale", ["patch", "deployments.apps", "--subresource=scale", "-n", "kars-any"]],
    ["write InferencePolicies", ["patch", "inferencepolicies.kars.azure.com", "-n", "any"]],
    ["write KarsImagePolicies (it only reads which images must be signed)", ["patch", "karsimagepolicies.kars.azure.com"]],
    ["touch Pepr's store outside pepr-system", ["patch", "peprstores.pepr.dev", "-n", "default"]],
    ["change nodes", ["patch", "nodes"]],
    ["create DaemonSets", ["create", "daemonsets.apps", "-n", "kars-any"]],
  ])("cannot %s", (_what, args) => {
    expect(canI(args)).toBe("no");
  });
});

describe("what policies/vap/kars-controller-scope.yaml refuses it, inside the apiserver, though RBAC allows it", () => {
  beforeAll(() => {
    for (const ns of ["rbac-tests", "kars-not-mine"]) if (k(["get", "namespace", ns]).code !== 0) k.ok(["create", "namespace", ns]);
  });
  it.each([
    ["a ConfigMap in default", ["create", "configmap", "x", "-n", "default", "--from-literal=a=b"], "the kars controller may write configmaps only in sandbox namespaces (labelled kars.azure.com/role=sandbox), not in namespace default"],
    ["a Deployment in kube-system", ["create", "deployment", "x", "-n", "kube-system", "--image=registry.k8s.io/pause:3.10"], "the kars controller may write deployments only in sandbox namespaces (labelled kars.azure.com/role=sandbox), not in namespace kube-system"],
    ["a ServiceAccount in kube-system", ["create", "serviceaccount", "x", "-n", "kube-system"], "may write serviceaccounts only in sandbox namespaces"],
    ["deleting a namespace that is not a sandbox's", ["delete", "namespace", "rbac-tests"], "the kars controller may change or delete only sandbox namespaces (kars-*, labelled kars.azure.com/role=sandbox), not namespace rbac-tests"],
    ["deleting a kars-* namespace without the sandbox label", ["delete", "namespace", "kars-not-mine"], "not namespace kars-not-mine"],
    ["labelling a kars-* namespace as a sandbox (taking it over)", ["label", "namespace", "kars-not-mine", "kars.azure.com/role=sandbox"], "the kars controller may change or delete only sandbox namespaces (kars-*, labelled kars.azure.com/role=sandbox), not namespace kars-not-mine"],
    ["a namespace that is not a sandbox's", ["create", "namespace", "not-a-sandbox"], "the kars controller may write only sandbox namespaces (kars-*, labelled kars.azure.com/role=sandbox), not namespace not-a-sandbox"],
    ["labelling default as a sandbox", ["label", "namespace", "default", "kars.azure.com/role=sandbox"], "the kars controller may write only sandbox namespaces (kars-*, labelled kars.azure.com/role=sandbox), not namespace default"],
  ])("%s", (_what, args, message) => {
    refusedByPolicy(args, undefined, "kars-controller-scope", message);
  });

  it("the same writes by the cluster admin are not its business", () => {
    expect(k(["create", "configmap", "x", "-n", "default", "--from-literal=a=b", "--dry-run=server"]).code).toBe(0);
  });
});

describe("what the shape policies refuse it in a sandbox namespace, as a stolen token would try (red-team helper-29)", () => {
  const SANDBOX_NS = "kars-rbac-probe";
  beforeAll(() => {
    if (k(["get", "namespace", "rbac-tests"]).code !== 0) k.ok(["create", "namespace", "rbac-tests"]);
    // a sandbox and its namespace, as the controller makes them
    k.ok(["apply", "-f", "-"], sandboxYaml("rbac-probe", "rbac-tests", "runtime:\n  kind: Hermes\ninferenceRef:\n  name: p"));
    return eventually("the probe sandbox's namespace", () => k(["get", "namespace", SANDBOX_NS]).code === 0);
  });
  afterAll(() => {
    k(["delete", "karssandbox", "-n", "rbac-tests", "rbac-probe", "--wait=false"]);
  });

  const allowed = (args: string[], stdin?: string) => {
    const r = asController([...args, "--dry-run=server"], stdin);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  };

  it("a privileged, host-access Deployment", () => {
    const dep = {
      apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "backdoor", namespace: SANDBOX_NS },
      spec: {
        selector: { matchLabels: { a: "b" } },
        template: {
          metadata: { labels: { a: "b" } },
          spec: {
            serviceAccountName: "agent", automountServiceAccountToken: false, hostNetwork: true,
            volumes: [{ name: "root", hostPath: { path: "/" } }],
            containers: [{ name: "agent", image: "evil.example/x", securityContext: { privileged: true }, volumeMounts: [{ name: "root", mountPath: "/host" }] }],
          },
        },
      },
    };
    refusedByPolicy(["create", "-f", "-"], JSON.stringify(dep), "kars-controller-deployments", "may write only the agent Deployment's shape");
    // its own Deployment, given such a template
    const patch = { spec: { template: { spec: { hostNetwork: true, containers: [{ name: "agent", securityContext: { privileged: true, allowPrivilegeEscalation: true } }] } } } };
    refusedByPolicy(["patch", "deployment", "agent", "-n", SANDBOX_NS, "--type=strategic", "-p", JSON.stringify(patch)], undefined, "kars-controller-deployments", "may write only the agent Deployment's shape");
  });

  it("a NetworkPolicy opening all egress", () => {
    const np = { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "kars-sandbox", namespace: SANDBOX_NS }, spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"], egress: [{}] } };
    refusedByPolicy(["apply", "--server-side", "--force-conflicts", "--field-manager", "x", "-f", "-"], JSON.stringify(np), "kars-controller-networkpolicies", "may write only the sandbox NetworkPolicy kars-sandbox");
  });

  it("another ConfigMap, or a ServiceAccount with a token", () => {
    refusedByPolicy(["create", "configmap", "other", "-n", SANDBOX_NS, "--from-literal=a=b"], undefined, "kars-controller-serviceaccounts-configmaps", "may write only the ConfigMap kars-router-profile");
    refusedByPolicy(["create", "serviceaccount", "other", "-n", SANDBOX_NS], undefined, "kars-controller-serviceaccounts-configmaps", "may write only the ServiceAccount agent");
  });

  it("foreign labels or a finalizer on a sandbox namespace, or the seccomp installer's namespace name", () => {
    refusedByPolicy(["label", "namespace", SANDBOX_NS, "pod-security.kubernetes.io/enforce=privileged"], undefined, "kars-controller-namespaces", "may set only kars' own labels and annotation on a sandbox namespace");
    refusedByPolicy(["patch", "namespace", SANDBOX_NS, "--type=merge", "-p", JSON.stringify({ metadata: { finalizers: ["evil.example/hold"] } })], undefined, "kars-controller-namespaces", "no ownerReferences or finalizers");
    // what someone else put there and this request leaves alone does not stop the controller
    k.ok(["label", "namespace", SANDBOX_NS, "team=platform", "--overwrite"]);
    allowed(["label", "namespace", SANDBOX_NS, "kars.azure.com/isolation=enhanced", "--overwrite"]);
    const ns = { apiVersion: "v1", kind: "Namespace", metadata: { name: "kars-node-setup", labels: { "kars.azure.com/role": "sandbox", "kars.azure.com/sandbox": "node-setup", "kars.azure.com/sandbox-namespace": "rbac-tests" } } };
    if (k(["get", "namespace", "kars-node-setup"]).code !== 0) {
      refusedByPolicy(["create", "-f", "-"], JSON.stringify(ns), "kars-controller-namespaces", "is not kars-node-setup");
    } else {
      refusedByPolicy(["delete", "namespace", "kars-node-setup"], undefined, "kars-controller-scope", "may change or delete only sandbox namespaces");
    }
  });

  it("a KarsSandbox's spec, owners or another finalizer; its own finalizer stays its to set", () => {
    refusedByPolicy(["patch", "karssandbox", "-n", "rbac-tests", "rbac-probe", "--type=merge", "-p", JSON.stringify({ spec: { runtime: { kind: "BYO", byo: { image: "evil.example/backdoor:latest" } } } })], undefined, "kars-controller-karssandboxes", "may change only its finalizer kars.azure.com/cleanup on a KarsSandbox");
    refusedByPolicy(["patch", "karssandbox", "-n", "rbac-tests", "rbac-probe", "--type=merge", "-p", JSON.stringify({ metadata: { ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "gone", uid: "00000000-0000-0000-0000-000000000001" }] } })], undefined, "kars-controller-karssandboxes", "may change only its finalizer");
    refusedByPolicy(["patch", "karssandbox", "-n", "rbac-tests", "rbac-probe", "--type=json", "-p", JSON.stringify([{ op: "add", path: "/metadata/finalizers/-", value: "evil.example/never" }])], undefined, "kars-controller-karssandboxes", "may change only its finalizer");
    allowed(["patch", "karssandbox", "-n", "rbac-tests", "rbac-probe", "--type=merge", "-p", JSON.stringify({ metadata: { finalizers: null } })]);
  });

  it("an Event about anything but a KarsSandbox", () => {
    const event = (kind: string, apiVersion: string) => JSON.stringify({
      apiVersion: "v1", kind: "Event", metadata: { name: `probe.${kind.toLowerCase()}`, namespace: "kube-system" },
      involvedObject: { kind, apiVersion, name: "x", namespace: "kube-system" }, reason: "Probe", message: "m", type: "Normal",
    });
    refusedByPolicy(["create", "-f", "-"], event("Pod", "v1"), "kars-controller-events", "may record events only about KarsSandboxes");
    allowed(["create", "-f", "-"], event("KarsSandbox", "kars.azure.com/v1alpha1"));
  });
});
