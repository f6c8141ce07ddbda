/**
 * The kars controller's RBAC (manifests/rbac) on a real apiserver. Every e2e spec already runs the
 * controller as the ServiceAccount those manifests make (stack.ts controllerIdentity), so what it
 * needs is shown by the other specs passing; this one shows what it is refused, as
 * `kubectl auth can-i` with the controller's own credentials answers it.
 */
import { controllerKubeconfig } from "./stack";
import { kubectl } from "./kubectl";
import { e2e } from "./helpers";

const { stack, k } = e2e();
const asController = kubectl(stack.cluster.kubectlBin, controllerKubeconfig(stack.dir));
const canI = (args: string[]) => asController(["auth", "can-i", ...args]).stdout.trim();

it("the controller authenticates as pepr-system/kars-controller, not as the cluster admin", () => {
  expect(asController.ok(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"])).toBe("system:serviceaccount:pepr-system:kars-controller");
});

describe("what reconcile and admission need", () => {
  it.each([
    [["watch", "karssandboxes.kars.azure.com", "-A"]],
    [["patch", "karssandboxes.kars.azure.com", "--subresource=status", "-n", "any"]],
    [["patch", "karssandboxes.kars.azure.com", "-n", "any"]], // its finalizer (RBAC cannot narrow a patch to one field)
    [["list", "inferencepolicies.kars.azure.com", "-n", "any"]],
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
  // server-side dry runs: admission runs in full, nothing is stored
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
    const r = asController([...args, "--dry-run=server"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("ValidatingAdmissionPolicy 'kars-controller-scope'");
    expect(r.stderr).toContain(message);
  });

  it("the same writes by the cluster admin are not its business", () => {
    expect(k(["create", "configmap", "x", "-n", "default", "--from-literal=a=b", "--dry-run=server"]).code).toBe(0);
  });
});
