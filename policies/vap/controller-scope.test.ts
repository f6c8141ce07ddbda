// policies/vap/kars-controller-scope.yaml restates, in CEL, facts the reconciler's code owns; these
// keep the two equal (the e2e suite shows the controller's real objects pass the policies).
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { NON_PUBLIC_V4, NON_PUBLIC_V6 } from "../../capabilities/sandbox-reconcile/desired-children";

interface Policy {
  kind: string;
  metadata: { name: string };
  spec: { policyName?: string; matchConditions?: { expression: string }[]; variables?: { name: string; expression: string }[]; failurePolicy?: string };
}
const docs = parseAllDocuments(fs.readFileSync(path.join(__dirname, "kars-controller-scope.yaml"), "utf8")).map(d => d.toJSON() as Policy);
const policies = docs.filter(d => d.kind === "ValidatingAdmissionPolicy");

/** A CEL list of string literals, e.g. `['a', 'b']`, as an array. */
const celStrings = (expr: string): string[] => JSON.parse(expr.replace(/'/g, '"')) as string[];

describe("kars-controller-scope.yaml", () => {
  it("states the same non-public ranges as the NetworkPolicy the reconciler writes", () => {
    const vars = Object.fromEntries(policies.find(p => p.metadata.name === "kars-controller-networkpolicies")!.spec.variables!.map(v => [v.name, v.expression]));
    expect(celStrings(vars.nonPublicV4)).toEqual(NON_PUBLIC_V4);
    expect(celStrings(vars.nonPublicV6)).toEqual(NON_PUBLIC_V6);
  });

  it("binds every policy, fails closed, and matches the controller's ServiceAccount (manifests/rbac) in each", () => {
    const rbac = fs.readFileSync(path.join(__dirname, "../../manifests/rbac/kars-controller.yaml"), "utf8");
    expect(rbac).toMatch(/kind: ServiceAccount\nmetadata:\n  name: kars-controller\n  namespace: pepr-system/);
    const bound = docs.filter(d => d.kind === "ValidatingAdmissionPolicyBinding").map(b => b.spec.policyName);
    expect(bound.sort()).toEqual(policies.map(p => p.metadata.name).sort());
    for (const p of policies) {
      expect(p.spec.failurePolicy).toBe("Fail");
      expect(p.spec.matchConditions![0]).toEqual(expect.objectContaining({ expression: "request.userInfo.username == 'system:serviceaccount:pepr-system:kars-controller'" }));
    }
  });
});
