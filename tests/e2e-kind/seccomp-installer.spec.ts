/**
 * `kubectl apply -k manifests/seccomp` on a real apiserver (the stack's install step, as in the demo):
 * the kars-strict profile goes into a ConfigMap byte for byte, and the installer DaemonSet puts a pod
 * on every Linux node, tainted ones included, with the kubelet's seccomp directory as its only host path. (What the install step does
 * on a node, and what the profile does to programs, is tests/integration/seccomp-profile.spec.ts.)
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1DaemonSet, V1Node, V1Pod } from "@kubernetes/client-node";
import { KARS_STRICT_LOCALHOST_PROFILE } from "../../capabilities/sandbox-admission/seccomp";
import { e2e, eventually } from "./helpers";

const { k } = e2e();
const DIR = join(__dirname, "../../manifests/seccomp");
const NS = "kars-node-setup";

beforeAll(() => {
  k.ok(["apply", "--server-side", "--field-manager", "kars-install", "-k", DIR]); // as installed: nothing changes
});

it("stores kars-strict.json unchanged in the ConfigMap the DaemonSet mounts", () => {
  const ds = k.json<V1DaemonSet>(["get", "daemonset", "-n", NS, "kars-seccomp-installer"])!;
  const cmName = ds.spec!.template.spec!.volumes!.find(v => v.name === "profiles")!.configMap!.name!;
  expect(cmName).toMatch(/^kars-seccomp-profiles-[a-z0-9]+$/); // the content hash: a changed profile rolls the DaemonSet
  const cm = k.json<{ data: Record<string, string> }>(["get", "configmap", "-n", NS, cmName])!;
  expect(cm.data).toEqual({ "kars-strict.json": readFileSync(join(DIR, "kars-strict.json"), "utf8") });
});

it("installs into the directory the kubelet reads Localhost profiles from, with nothing else of the host", () => {
  const spec = k.json<V1DaemonSet>(["get", "daemonset", "-n", NS, "kars-seccomp-installer"])!.spec!.template.spec!;
  const hostPaths = spec.volumes!.filter(v => v.hostPath).map(v => v.hostPath!.path);
  expect(hostPaths).toEqual([join("/var/lib/kubelet/seccomp", KARS_STRICT_LOCALHOST_PROFILE, "..")]);
  expect(spec.automountServiceAccountToken).toBe(false);
  for (const c of [...spec.initContainers!, ...spec.containers]) {
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
  }
});

it("schedules one installer pod on every Linux node", async () => {
  const nodes = k.json<{ items: V1Node[] }>(["get", "nodes", "-l", "kubernetes.io/os=linux"])!.items.map(n => n.metadata!.name!).sort();
  expect(nodes.length).toBeGreaterThan(0);
  await eventually("a DaemonSet pod per node", () => {
    const ds = k.json<V1DaemonSet>(["get", "daemonset", "-n", NS, "kars-seccomp-installer"]);
    return ds?.status?.desiredNumberScheduled === nodes.length && ds.status.currentNumberScheduled === nodes.length;
  });
  const pods = await eventually("the installer pods", () => {
    const items = k.json<{ items: V1Pod[] }>(["get", "pods", "-n", NS, "-l", "app.kubernetes.io/name=kars-seccomp-installer"])!.items;
    return items.length === nodes.length && items.every(p => p.spec?.nodeName) ? items : undefined;
  });
  expect(pods.map(p => p.spec!.nodeName).sort()).toEqual(nodes);
});
