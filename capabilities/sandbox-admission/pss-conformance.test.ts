/**
 * Kubernetes Pod Security Standards fixtures (../shared/conformance/pss, from pod-security-admission's
 * testdata) run through kars' mutate + validate as sandbox pods. See that folder's README.
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { V1Pod } from "@kubernetes/client-node";
import { DEFAULT_ADMISSION_CONFIG as cfg, type SandboxContext } from "./config";
import { hardenSandboxPod } from "./harden-pod";
import { postureViolations } from "./posture-violations";

const root = join(__dirname, "..", "..", "..", "shared", "conformance", "pss");
const fixtures = (level: string, verdict: string): [string, V1Pod][] => {
  const dir = join(root, level, verdict);
  if (!existsSync(dir)) throw new Error(`conformance fixtures missing: ${dir} (expected ../shared beside the repo)`);
  return readdirSync(dir).filter(f => f.endsWith(".yaml")).map(f => [`${level}/${verdict}/${f}`, parse(readFileSync(join(dir, f), "utf8")) as V1Pod]);
};
const standard: SandboxContext = { sandbox: "pss", isolation: "standard", writablePaths: ["/sandbox", "/tmp"] };
const enhanced: SandboxContext = { ...standard, isolation: "enhanced" };
const admit = (pod: V1Pod, ctx: SandboxContext) => postureViolations(hardenSandboxPod(pod, ctx, cfg), ctx, cfg);

/**
 * Restricted "fail" fixtures whose only fault is a field left unset. kars' mutating step sets unset
 * fields to the hardened value (DESIGN §4), so these are admitted *hardened*; the row names the field
 * mutation set. A value the user set explicitly is never rewritten: every other fail fixture is denied.
 */
const HARDENED_BY_MUTATION: Record<string, [(p: V1Pod) => unknown, unknown]> = {
  "restricted/fail/runasnonroot0.yaml": [p => p.spec!.securityContext!.runAsNonRoot, true],
  "restricted/fail/seccompprofile_restricted0.yaml": [p => p.spec!.securityContext!.seccompProfile!.type, "RuntimeDefault"],
  "restricted/fail/seccompprofile_restricted2.yaml": [p => p.spec!.securityContext!.seccompProfile!.type, "RuntimeDefault"],
  "restricted/fail/seccompprofile_restricted3.yaml": [p => p.spec!.securityContext!.seccompProfile!.type, "RuntimeDefault"],
  "restricted/fail/capabilities_restricted0.yaml": [p => p.spec!.containers[0]!.securityContext!.capabilities!.drop, ["ALL"]],
  "restricted/fail/capabilities_restricted1.yaml": [p => p.spec!.initContainers![1]!.securityContext!.capabilities!.drop, ["ALL"]],
  "restricted/fail/allowprivilegeescalation2.yaml": [p => p.spec!.containers[0]!.securityContext!.allowPrivilegeEscalation, false],
};

/** Restricted "pass" fixtures that break a kars rule beyond PSS: the path kars names, and the rule. */
const KARS_BEYOND_PSS: Record<string, [string, string]> = {
  // DESIGN §4: no added capabilities except the egress guard's exact NET_ADMIN/NET_RAW.
  "restricted/pass/capabilities_restricted0.yaml": ["spec.containers[0].securityContext.capabilities.add[0]", "no added capabilities"],
  // DESIGN §2/§4: seccomp per isolation; standard means RuntimeDefault, not an arbitrary Localhost profile.
  "restricted/pass/seccompprofile_restricted1.yaml": ["spec.securityContext.seccompProfile", "seccomp per isolation"],
  "restricted/pass/seccompprofile_restricted2.yaml": ["spec.initContainers[1].securityContext.seccompProfile", "seccomp per isolation"],
};

describe("PSS fail fixtures are denied as sandbox pods, naming the field", () => {
  const rows = [...fixtures("baseline", "fail"), ...fixtures("restricted", "fail")].filter(([n]) => !(n in HARDENED_BY_MUTATION));
  it.each(rows)("%s", (_name, pod) => {
    const vs = admit(pod, standard);
    expect(vs.length).toBeGreaterThan(0);
    for (const v of vs) expect(v.path).toMatch(/^(spec|metadata)\./);
  });
});

describe("PSS restricted fail fixtures with only unset fields are admitted hardened", () => {
  it.each(Object.entries(HARDENED_BY_MUTATION))("%s", (name, [field, want]) => {
    const pod = fixtures("restricted", "fail").find(([n]) => n === name)![1];
    const hardened = hardenSandboxPod(pod, standard, cfg);
    expect(postureViolations(hardened, standard, cfg)).toEqual([]);
    expect(field(hardened)).toEqual(want);
  });
});

describe("PSS restricted pass fixtures are admitted once mutated", () => {
  it.each(fixtures("restricted", "pass").filter(([n]) => !(n in KARS_BEYOND_PSS)))("%s (isolation standard)", (_name, pod) => {
    expect(admit(pod, standard)).toEqual([]);
  });
  it.each(Object.entries(KARS_BEYOND_PSS))("%s is denied by kars naming the field", (name, [path]) => {
    const pod = fixtures("restricted", "pass").find(([n]) => n === name)![1];
    expect(admit(pod, standard).map(v => v.path)).toContain(path);
  });
  // kars rule beyond PSS: isolation=enhanced requires Localhost kars-strict, so a fixture that sets
  // RuntimeDefault explicitly is denied there with that rule named.
  it.each(fixtures("restricted", "pass").filter(([, p]) => p.spec?.securityContext?.seccompProfile?.type === "RuntimeDefault"))(
    "%s is denied under isolation enhanced (seccomp per isolation)", (_name, pod) => {
      expect(admit(pod, enhanced).map(v => v.path)).toContain("spec.securityContext.seccompProfile");
    });
});
