/**
 * `kars demo [--keep]` (DESIGN §0): the main job. With no KUBECONFIG it starts the local control
 * plane; installs CRDs and webhooks; runs the kars controller; applies manifests/examples/; shows
 * each sandbox's status and children, the admitted pod as stored by the apiserver, and one refused
 * privileged pod with kubectl's exact message; then runs one sandbox's inference router and sends it a
 * chat request through the OpenAI SDK. Then it stops everything, or with --keep prints
 * `KUBECONFIG=<path>` and stays up until SIGINT/SIGTERM.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import type { V1Pod } from "@kubernetes/client-node";
import type { KarsSandbox } from "../capabilities/shared/karssandbox-types";
import { kubectl, type Kubectl } from "../tests/e2e-kind/kubectl";
import { eventually } from "../tests/e2e-kind/local/processes";
import { showRouter } from "./demo-router";
import { startStack, stopStack, unregisterWebhooks, type Stack } from "../tests/e2e-kind/stack";

const repo = join(__dirname, "..");
const say = (s = ""): void => console.log(s);
const heading = (s: string): void => say(`\n== ${s} ==`);

function podSummary(pod: V1Pod): Record<string, unknown> {
  const c = (x: NonNullable<V1Pod["spec"]>["containers"][number]) => ({ name: x.name, image: x.image, securityContext: x.securityContext });
  return {
    metadata: { name: pod.metadata?.name, namespace: pod.metadata?.namespace },
    spec: {
      securityContext: pod.spec?.securityContext,
      automountServiceAccountToken: pod.spec?.automountServiceAccountToken,
      initContainers: (pod.spec?.initContainers ?? []).map(c),
      containers: (pod.spec?.containers ?? []).map(c),
      volumes: (pod.spec?.volumes ?? []).map(v => v.name),
    },
  };
}

async function showSandboxes(k: Kubectl): Promise<void> {
  const list = k.json<{ items: KarsSandbox[] }>(["get", "karssandboxes", "-n", "kars-system"])!.items;
  // Wait for each sandbox to settle (Ready, Suspended or Failed at its generation); after 60 s show
  // whatever state it is in, since a real cluster may be slow to pull images.
  const current = (): KarsSandbox[] => k.json<{ items: KarsSandbox[] }>(["get", "karssandboxes", "-n", "kars-system"])!.items;
  const isSettled = (s: KarsSandbox): boolean =>
    s.status?.observedGeneration === s.metadata.generation && ["Ready", "Suspended", "Failed"].includes(s.status?.phase ?? "");
  const settled = await eventually("every sandbox's status", () => {
    const items = current();
    return items.length === list.length && items.every(isSettled) ? items : undefined;
  }, 60_000).catch(() => current());
  heading("KarsSandboxes (kubectl get karssandboxes -n kars-system -o wide)");
  say(k.ok(["get", "karssandboxes", "-n", "kars-system", "-o", "wide"]).trimEnd());
  heading("InferencePolicies (kubectl get inferencepolicies -n kars-system -o wide)");
  say(k.ok(["get", "inferencepolicies", "-n", "kars-system", "-o", "wide"]).trimEnd());
  for (const sb of settled) {
    const ns = sb.status?.namespace ?? `kars-${sb.metadata.name}`;
    heading(`sandbox ${sb.metadata.name}: status`);
    for (const c of sb.status?.conditions ?? []) say(`  ${c.type}=${c.status} (${c.reason}): ${c.message}`);
    heading(`sandbox ${sb.metadata.name}: children in namespace ${ns}`);
    say(k.ok(["get", "namespace,serviceaccount,networkpolicy,configmap,deployment", "-n", ns, "-l", `kars.azure.com/sandbox=${sb.metadata.name}`, "--show-labels=false"]).trimEnd());
  }
}

async function showAdmittedPod(k: Kubectl): Promise<void> {
  const ns = "kars-research-agent";
  const pod = await eventually("the agent pod", () => k.json<{ items: V1Pod[] }>(["get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=kars-agent"])?.items[0], 60_000);
  heading(`admitted pod ${ns}/${pod.metadata?.name}, as stored by the apiserver (security-relevant fields)`);
  say(stringify(podSummary(pod)).trimEnd());
}

function showRefusedPod(k: Kubectl): void {
  const manifest = `apiVersion: v1
kind: Pod
metadata:
  name: privileged-shell
  namespace: kars-research-agent
spec:
  containers:
  - name: shell
    image: busybox
    securityContext:
      privileged: true
      runAsUser: 0
`;
  heading("kubectl apply of a privileged pod into kars-research-agent");
  const r = k(["apply", "-f", "-"], manifest);
  say(manifest.trimEnd());
  say(`$ kubectl apply -f -   (the manifest above on stdin; exit code ${r.code})`);
  say((r.stderr || r.stdout).trimEnd());
}

/** Entry point: returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const keep = args.includes("--keep");
  const unknown = args.filter(a => a !== "--keep");
  if (unknown.length) {
    console.error(`kars demo: unknown argument ${unknown[0]}\nusage: kars demo [--keep]`);
    return 2;
  }
  const provider = process.env.KUBECONFIG ? "kubeconfig" : "local";
  const dir = mkdtempSync(join(tmpdir(), "kars-demo-"));
  say(`kars demo: ${provider === "local" ? "starting the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler on 127.0.0.1)" : `using the cluster of KUBECONFIG=${process.env.KUBECONFIG}`}`);
  const t0 = Date.now();
  let stack: Stack | undefined;
  const stop = async (): Promise<void> => {
    if (!stack) return;
    const s = stack;
    stack = undefined;
    if (s.cluster.provider === "kubeconfig") {
      // Someone else's cluster: remove what the demo added while the controller can still finalize
      // the sandboxes, then the webhooks that would point at a stopped process. CRDs stay.
      const k = kubectl(s.cluster.kubectlBin, s.cluster.kubeconfig);
      k(["delete", "-f", join(repo, "manifests", "examples"), "--ignore-not-found", "--wait", "--timeout", "120s"]);
      await stopStack(s);
      unregisterWebhooks(k);
    } else {
      await stopStack(s);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    stack = await startStack(provider, dir);
    say(`cluster, CRDs, kars controller and webhooks ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const k = kubectl(stack.cluster.kubectlBin, stack.cluster.kubeconfig);
    heading("kubectl apply -f manifests/examples/");
    say(k.ok(["apply", "-f", join(repo, "manifests", "examples")]).trimEnd());
    await showSandboxes(k);
    await showAdmittedPod(k);
    showRefusedPod(k);
    await showRouter(k, "research-agent", dir);
    if (keep) {
      say(`\nkars demo is up; stop it with Ctrl-C. kubectl --kubeconfig ${stack.cluster.kubeconfig} get karssandboxes -A`);
      say(`KUBECONFIG=${stack.cluster.kubeconfig}`);
      await new Promise<void>(resolve => {
        // A pending promise alone does not keep Node's event loop alive: hold it open until a signal.
        const hold = setInterval(() => undefined, 60_000);
        const done = (): void => {
          clearInterval(hold);
          resolve();
        };
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      });
    }
    return 0;
  } finally {
    await stop();
    say("kars demo: stopped everything it started");
  }
}
